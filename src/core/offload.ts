/**
 * The engine's side of the kernel fast path (datapath/tun/fastpath.ts). The engine decides which
 * connections the kernel may forward without it, and when it must stop (offload-policy.ts); the
 * port (implemented by the data path, datapath/tun/offloader.ts) carries that out and reports what
 * the kernel forwarded.
 *
 * Contract, which keeps IPVS's state machine exact:
 *   - masqueraded, direct-routing and tunnelled connections are offered;
 *   - only connections whose next packets cannot change their state are offered: TCP in
 *     ESTABLISHED (the fast path hands SYN, FIN and RST up; every other segment leaves
 *     ESTABLISHED as it is) and UDP; never templates or one-packet connections;
 *   - an entry is withdrawn before anything that depends on it: its state changes, it expires,
 *     or the configuration changes (a deleted or unavailable server must stop receiving);
 *   - the port must have stopped the kernel from forwarding a withdrawn connection before the
 *     packet that caused the withdrawal is sent on (so replies to that packet reach the engine);
 *   - a direct-routing or tunnelled connection is announced to the port at its creation (route)
 *     and at its removal (unroute), whether offered or not: the engine leaves its packets
 *     unchanged, so the data path learns from the port which real server they go to (and
 *     through which tunnel: the port reads the server's type and port from the registry).
 */

/** What the kernel forwarded for one connection since the last report. Reused, never kept. */
export class OffloadReport {
  /** request direction (client -> VIP), packets and bytes */
  inPkts = 0;
  inBytes = 0;
  /** reply direction (real server -> client), packets and bytes */
  outPkts = 0;
  outBytes = 0;
  /** time of the last packet the kernel forwarded, on the caller's ms clock (the one given to
   *  process and tick); -1 when none */
  lastSeenMs = -1;

  clear(): this {
    this.inPkts = 0;
    this.inBytes = 0;
    this.outPkts = 0;
    this.outBytes = 0;
    this.lastSeenMs = -1;
    return this;
  }
}

/** The SYN-cookie connections' sequence deltas (syn-proxy.ts SynProxy). */
export interface SeqDeltaSource {
  /** entry c's delta (int32): a SYN-cookie connection's cookie - server ISN, once its handshake
   *  with the server is done; 0 for any other */
  seqDelta(c: number): number;
  /** entry c, just imported (a restart, a sync backup), was such a connection with `delta`
   *  (int32; 0: nothing to translate, nothing done) */
  restore(c: number, delta: number): void;
}

export interface OffloadPort {
  /** Let the kernel forward both directions of entry c (direct routing: its requests, the only
   *  direction there is); false when it cannot take more. `seqDelta` (int32, NAT TCP only; 0
   *  none): a SYN-cookie connection's delta, which the kernel applies as the engine does
   *  (replies seq += delta, requests ack -= delta: bpf/ulvs_maps.h struct flow_value). */
  offer(c: number, seqDelta?: number): boolean;
  /** Stop the kernel forwarding entry c, and fill `out` with what it forwarded since the last
   *  report (cleared when it had nothing to report). */
  withdraw(c: number, out: OffloadReport): void;
  /** Direct-routing or tunnelled entry c was just created: the packets of its request tuple that the engine
   *  forwards (before and after any offer) must reach its real server, daddr(c), from the first
   *  one, which the data path sends after this call returns. */
  route(c: number): void;
  /** Direct-routing or tunnelled entry c is being removed (its fields are still readable): stop routing its
   *  tuple, after the packets already forwarded have gone (a one-packet connection is removed
   *  before its only packet is sent). Not offered any more (withdrawn first). */
  unroute(c: number): void;
  /** Restart (core/conn/handover.ts): entry c was forwarded by the kernel through `slot` (whole
   *  slot array) in the previous process, which had counted `reported` (packets in, bytes in,
   *  packets out, bytes out) of it. Take it over: true when the kernel goes on forwarding c (in
   *  that slot, or in another of this port's), false when its kernel entries are gone (c's
   *  packets come to the engine); its entries are written again with `seqDelta` (as offer).
   *  Optional: a port without it gets none. */
  adopt?(c: number, slot: number, reported: Float64Array, seqDelta?: number): boolean;
  /** Entry c's slot (whole slot array) and the counts already reported from it; -1 when none. */
  slotOf?(c: number, reported: Float64Array): number;
  /** Remove now the way-out entries of these live direct-routing or tunnelled entries (none
   *  offered: withdrawn first), whatever is queued for them: while backup_only is in force the
   *  packets of their tuples pass to the host stack instead of going to their servers. route(c)
   *  puts each back. Optional: a port without it keeps routing them. */
  dropRoutes?(cs: readonly number[]): void;
  /** Kernel connection set-up (docs/kernel-setup.md): whether `slot` (whole slot array) is one
   *  of the kernel's set-up slots that no entry of this port holds, so adoptKernel may take it.
   *  Optional: a port without it takes no kernel-made connection. */
  kernelSlotFree?(slot: number): boolean;
  /** Entry c was created and its SYN forwarded by the kernel fast path, whose flow entries (the
   *  kernel wrote them: nothing to write here) count in `slot`, for which kernelSlotFree(slot)
   *  was just true: hold c there as offloaded, harvest it from now on, and at its withdrawal
   *  delete its entries and then give the slot back to the kernel. */
  adoptKernel?(c: number, slot: number): void;
  /** Kernel-made entry `from` (just removed, its index possibly reused by `to`) ended and `to`,
   *  a new connection on the same tuple to the same server, goes on in its kernel slot and flow
   *  entries (a SYN on a finished connection, which the kernel forwarded on those entries): the
   *  slot is `to`'s from now on; what the kernel counted in it since the last report into `out`.
   *  Nothing is written. A port without adoptKernel never gets this call. */
  moveKernel?(from: number, to: number, out: OffloadReport): void;
}

/** Packets a connection forwards through the engine, in an eligible state, before it is offered. */
export const DEFAULT_OFFLOAD_AFTER = 8;
