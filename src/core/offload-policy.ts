/**
 * When a connection goes to the kernel fast path and when it comes back (the contract is in
 * offload.ts): offered after `after` packets forwarded by the engine in an offloadable state,
 * withdrawn before a state change, at expiry and before configuration changes; what the kernel
 * forwarded meanwhile is counted as IPVS counts packets, and restarts the connection's timer.
 */
import { countTraffic } from './accounting.js';
import { ConnFlag, FWD_SHIFT, TICK_MS } from './conn-table.js';
import type { EngineState } from './engine-state.js';
import { OffloadReport, type OffloadPort, type SeqDeltaSource } from './offload.js';
import type { LeaveHook, ProtoOps, ProtoTable } from './proto/ops.js';
import { Fwd } from './service.js';
import { Event } from './verdict.js';

/** The connection flags' method bits of a direct-routing and a tunnelling entry. */
const DR_BITS = Fwd.DROUTE << FWD_SHIFT;
const TUN_BITS = Fwd.TUNNEL << FWD_SHIFT;

export class OffloadPolicy implements LeaveHook {
  /** backup_only in force: direct-routing and tunnelled tuples are not routed (setRoutesSuspended) */
  #routesOff = false;
  readonly #s: EngineState;
  readonly #protos: ProtoTable;
  readonly #port: OffloadPort | null;
  readonly #after: number;
  readonly #report = new OffloadReport();
  /** the SYN-cookie connections' deltas (the engine's SynProxy; set once by the Director) */
  seqDeltas: SeqDeltaSource | null = null;
  /** a report of what the kernel forwarded itself is being applied (kernel-made.ts): a state
   *  change does not withdraw the connection, and a new one is not routed (the kernel wrote its
   *  entries) */
  #kernelApplying = false;

  constructor(s: EngineState, protos: ProtoTable, port: OffloadPort | null, after: number) {
    this.#s = s;
    this.#protos = protos;
    this.#port = port;
    this.#after = after;
  }

  get enabled(): boolean {
    return this.#port !== null;
  }

  /** After the engine forwarded a packet of entry c: offer it once it has been offloadable for
   *  `after` packets (a refusal starts the count again). */
  consider(c: number, ops: ProtoOps): void {
    const port = this.#port;
    const conns = this.#s.conns;
    // the kernel fast path rewrites as NAT, sends as DR or through a tunnel (every type)
    const f = conns.flags(c);
    if (port === null || (f & ConnFlag.OFFLOADED) !== 0 || ((f & ConnFlag.FWD_MASK) !== 0 && !this.#routed(c)) || !ops.offloadable(c)) return;
    const n = conns.seen[c]! + 1;
    if (n < 255) conns.seen[c] = n;
    if (n < this.#after) return;
    if (port.offer(c, this.#seqDelta(c))) {
      conns.setFlags(c, conns.flags(c) | ConnFlag.OFFLOADED);
      this.#s.events[Event.Offloaded]!++;
    } else {
      conns.seen[c] = 0;
      this.#s.events[Event.OffloadRefused]!++;
    }
  }

  /** Entry c's sequence delta for its flow entries: a SYN-cookie connection's, else 0. */
  #seqDelta(c: number): number {
    return (this.#s.conns.flags(c) & ConnFlag.SYNPROXY) !== 0 && this.seqDeltas !== null ? this.seqDeltas.seqDelta(c) : 0;
  }

  /** Whether entry c is sent by the port's way out (route/unroute): direct routing and
   *  tunnelling (the port reads the server's tunnel type and port itself). */
  #routed(c: number): boolean {
    const m = this.#s.conns.flags(c) & ConnFlag.FWD_MASK;
    return m === DR_BITS || m === TUN_BITS;
  }

  /** Entry c was just created: a direct-routing or tunnelled one is announced to the port (offload.ts). */
  created(c: number): void {
    if (this.#port !== null && !this.#kernelApplying && !this.#routesOff && (this.#s.conns.flags(c) & ConnFlag.TEMPLATE) === 0 && this.#routed(c)) this.#port.route(c);
  }

  /** Entry c is about to be removed (withdrawn already): a direct-routing or tunnelled one is announced. */
  removed(c: number): void {
    if (this.#port !== null && !this.#routesOff && (this.#s.conns.flags(c) & ConnFlag.TEMPLATE) === 0 && this.#routed(c)) this.#port.unroute(c);
  }

  /** backup_only came into force (true) or ended: every connection is taken back from the
   *  kernel and the way out stops sending the tuples of direct-routing and tunnelled ones to
   *  their servers (so their packets, passed by the engine, reach the host stack as under IPVS);
   *  at the end, those still live are routed again. New ones are not routed meanwhile. */
  setRoutesSuspended(off: boolean): void {
    const port = this.#port;
    if (off === this.#routesOff) return;
    this.#routesOff = off;
    if (port === null) return;
    const conns = this.#s.conns;
    const routed: number[] = [];
    conns.forEach((i) => {
      if ((conns.flags(i) & ConnFlag.TEMPLATE) === 0 && this.#routed(i)) routed.push(i);
    });
    if (off) {
      this.withdrawAll();
      port.dropRoutes?.(routed);
    } else for (const c of routed) port.route(c);
  }

  /** A connection imported from the previous process (conn/handover.ts) that the kernel forwarded
   *  through `slot`: the port takes it over (OffloadPort.adopt); true when it stays offloaded. */
  adopt(c: number, slot: number, reported: Float64Array): boolean {
    const port = this.#port;
    if (port === null || port.adopt === undefined || !port.adopt(c, slot, reported, this.#seqDelta(c))) return false;
    const conns = this.#s.conns;
    conns.setFlags(c, conns.flags(c) | ConnFlag.OFFLOADED);
    return true;
  }

  /** The port's record of where the kernel keeps entry c (OffloadPort.slotOf), for an export. */
  get slots(): { slotOf(c: number, reported: Float64Array): number } | null {
    const port = this.#port;
    return port?.slotOf ? { slotOf: (c, r) => port.slotOf!(c, r) } : null;
  }

  beforeStateChange(c: number): void {
    if (!this.#kernelApplying && (this.#s.conns.flags(c) & ConnFlag.OFFLOADED) !== 0) this.withdraw(c);
  }

  /** On while kernel-made.ts applies one report (see #kernelApplying); off after it. */
  applyingKernel(on: boolean): void {
    this.#kernelApplying = on;
  }

  /** Whether the port can take a kernel-made connection in `slot` (OffloadPort.kernelSlotFree). */
  kernelSlotFree(slot: number): boolean {
    const port = this.#port;
    return port !== null && port.kernelSlotFree !== undefined && port.adoptKernel !== undefined && port.kernelSlotFree(slot);
  }

  /** Entry c is about to be removed and its kernel slot handed to a successor (moveKernel): its
   *  OFFLOADED flag is cleared without a withdrawal; returns whether it was offloaded. */
  detachForMove(c: number): boolean {
    const conns = this.#s.conns;
    const f = conns.flags(c);
    if (this.#port === null || this.#port.moveKernel === undefined || (f & ConnFlag.OFFLOADED) === 0) return false;
    conns.setFlags(c, f & ~ConnFlag.OFFLOADED);
    return true;
  }

  /** Removed entry `from` (detachForMove was true) hands its kernel slot to `to` (same tuple and
   *  server): the slot's unreported counts are counted on that server, `to` is offloaded. */
  moveKernel(from: number, to: number): void {
    const r = this.#report.clear();
    this.#port!.moveKernel!(from, to, r);
    if (r.inPkts !== 0 || r.outPkts !== 0) countTraffic(this.#s.dests.byId(this.#s.conns.dest(to)), this.#s.stats, r.inPkts, r.inBytes, r.outPkts, r.outBytes);
    const conns = this.#s.conns;
    conns.setFlags(to, conns.flags(to) | ConnFlag.OFFLOADED);
  }

  /** Kernel-made entry c, whose entries count in `slot` (kernelSlotFree(slot) was true): held by
   *  the port as offloaded (OffloadPort.adoptKernel). */
  adoptKernel(c: number, slot: number): void {
    this.#port!.adoptKernel!(c, slot);
    const conns = this.#s.conns;
    conns.setFlags(c, conns.flags(c) | ConnFlag.OFFLOADED);
  }

  /** Take entry c back: count what the kernel forwarded and restart its timer from the last
   *  packet the kernel saw. c must be offloaded. */
  withdraw(c: number): void {
    const s = this.#s;
    const conns = s.conns;
    conns.setFlags(c, conns.flags(c) & ~ConnFlag.OFFLOADED);
    conns.seen[c] = 0;
    const r = this.#report.clear();
    this.#port!.withdraw(c, r);
    this.#count(c, r);
    this.#restartFrom(c, r.lastSeenMs);
    if (s.sync !== null && r.inPkts > 0) s.sync.inboundBulk(c, r.inPkts);
    s.events[Event.OffloadWithdrawn]!++;
  }

  /** What the kernel forwarded for offloaded entry c since the last report (harvest). */
  activity(c: number, r: OffloadReport): void {
    const f = this.#s.conns.flags(c);
    if ((f & (ConnFlag.LIVE | ConnFlag.OFFLOADED)) !== (ConnFlag.LIVE | ConnFlag.OFFLOADED)) return;
    this.#count(c, r);
    this.#restartFrom(c, r.lastSeenMs);
    const sync = this.#s.sync;
    if (sync !== null && r.inPkts > 0) sync.inboundBulk(c, r.inPkts);
  }

  /** Take every connection back (before a configuration change); returns how many. */
  withdrawAll(): number {
    if (this.#port === null) return 0;
    const conns = this.#s.conns;
    let n = 0;
    conns.forEach((i) => {
      if ((conns.flags(i) & ConnFlag.OFFLOADED) !== 0) {
        this.withdraw(i);
        n++;
      }
    });
    return n;
  }

  #count(c: number, r: OffloadReport): void {
    if (r.inPkts === 0 && r.outPkts === 0) return;
    const inPkts = this.#s.conns.inPkts;
    inPkts[c] = Math.min(255, inPkts[c]! + r.inPkts);
    countTraffic(this.#s.dests.byId(this.#s.conns.dest(c)), this.#s.stats, r.inPkts, r.inBytes, r.outPkts, r.outBytes);
  }

  /** Restart c's timer from a packet forwarded at `lastSeenMs` (-1: none) when that ends later. */
  #restartFrom(c: number, lastSeenMs: number): void {
    if (lastSeenMs < 0) return;
    const conns = this.#s.conns;
    const t = Math.floor(lastSeenMs / TICK_MS) + this.#protos.of(conns.proto(c))!.timeoutTicks(c);
    if (t > conns.expires(c)) conns.rearm(c, t);
  }
}
