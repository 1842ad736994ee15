/**
 * The engine's side of the kernel fast path (datapath/tun/fastpath.ts). The engine decides which
 * connections the kernel may forward without it, and when it must stop; the port (implemented by
 * the data path, datapath/tun/offload.ts) carries that out and reports what the kernel forwarded.
 *
 * Contract, which keeps IPVS's state machine exact:
 *   - only connections whose next packets cannot change their state are offered: TCP in
 *     ESTABLISHED (the fast path hands SYN, FIN and RST up; every other segment leaves
 *     ESTABLISHED as it is) and UDP; never templates or one-packet connections;
 *   - an entry is withdrawn before anything that depends on it: its state changes, it expires,
 *     or the configuration changes (a deleted or unavailable server must stop receiving);
 *   - the port must have stopped the kernel from forwarding a withdrawn connection before the
 *     packet that caused the withdrawal is sent on (so replies to that packet reach the engine).
 */

export interface OffloadPort {
  /** Let the kernel forward both directions of entry c; false when it cannot take more. */
  offer(c: number): boolean;
  /**
   * Stop the kernel forwarding entry c, and write into `out` what it forwarded since the last
   * report: [request packets, request bytes, reply packets, reply bytes, time of the last
   * packet it forwarded (the caller's ms clock, the one passed to process and tick) or -1].
   */
  withdraw(c: number, out: Float64Array): void;
}

/** Packets a connection forwards through the engine, in an eligible state, before it is offered. */
export const DEFAULT_OFFLOAD_AFTER = 8;
