/**
 * Connections the kernel fast path set up itself (docs/kernel-setup.md, "The engine's side"):
 * for a kernel set-up service the fast path schedules a pure SYN from a table the engine
 * prepared, writes the flow entries, forwards the SYN and reports it (KREPORT_NEW); later it
 * forwards and reports the segments that move IPVS's TCP state (KREPORT_SEGMENT). This file
 * applies those reports, decoded into plain numbers by the data path
 * (datapath/tun/kernel-reports.ts), as if the engine had handled the packets itself:
 *
 *   open     ip_vs_schedule's result taken from the report: the connection is created as
 *            Scheduling.open creates it with that server (ip_vs_conn_new, ip_vs_bind_dest:
 *            inactive count, connection counters, 3 s timer), then the SYN is counted and moves
 *            the state as Forwarder.request does for it (ip_vs_in_stats, set_tcp_state with
 *            INPUT, or INPUT_ONLY for DR/TUN, the new state's timeout, the sync master told), and
 *            the entry is held OFFLOADED in the kernel's slot. The rr/wrr cursor does not move
 *            (the kernel chose), no packet is produced, a DR/TUN entry is not routed (the kernel
 *            wrote its entry already).
 *   segment  the state transition, packet and bytes of one forwarded segment, as
 *            Forwarder.request / Forwarder.reply apply them (timer restarted with the new
 *            state's timeout, the sync master told of a request), except that the state change
 *            does not take the connection back from the kernel (it forwarded the segment).
 *            A SYN on a finished connection (the client's port again, while the entries last)
 *            is what IPVS makes of it with the same server: the old one expired (rescheduled),
 *            a new one created in its kernel slot (#reopen).
 *
 * Counting: one packet of ipLen bytes per report. The fast path counts one per skb in its slot
 * and the engine one per packet read from the TUN (a GSO super-packet is one, of all its
 * bytes), as IPVS counts skbs; a report's gso_segs is therefore not a packet count here.
 *
 * A tuple the engine still holds (the kernel creates entries only where the flow map has none,
 * so this is an engine-only connection: one in TIME_WAIT, or one scheduled by the engine whose
 * SYN the client sent again) follows IPVS's rule for a SYN on a known tuple (decide.ts): when
 * IPVS would expire the old entry and schedule (conn_reuse_mode on a finished one, or its server
 * gone with expire_nodest_conn) the old one is expired, counted as IPVS counts it, and the new
 * one created; when IPVS would keep the old one (the SYN belongs to it), the report is refused
 * (KernelOpen.Conflict) and the caller deletes the kernel's entries: the client's next segment
 * then comes to the engine and finds the old connection, as under IPVS.
 *
 * Every refusal changes nothing; the caller deletes the kernel's entries and gives its slot back
 * (except BadSlot: the slot is not one the kernel may have free).
 */
import { countPacket } from './accounting.js';
import { ConnFlag } from './conn-table.js';
import type { ConnLifecycle } from './conn/lifecycle.js';
import { Expire, NO_MARKS, Path, type Decider } from './decide.js';
import type { EngineState } from './engine-state.js';
import type { OffloadPolicy } from './offload-policy.js';
import type { ProtoTable } from './proto/ops.js';
import { fillSchedContext, type SchedContext } from './scheduler.js';
import type { RealServer, VirtualService } from './service.js';
import { Stat } from './stats.js';
import { TcpDir, TcpState } from './tcp-states.js';
import { Event } from './verdict.js';
import { IPPROTO_TCP } from '../wire/ipv4.js';
import { TcpFlag } from '../wire/tcp.js';

/** Result of KernelMade.open: a connection index (>= 0), or one of these (< 0). */
export const KernelOpen = {
  /** no service VIP:vport:proto (deleted since the kernel's table was written) */
  NoService: -1,
  /** the service has no server raddr:rport (deleted) */
  NoDest: -2,
  /** the engine holds a live connection on the tuple that IPVS would keep (file header) */
  Conflict: -3,
  /** `slot` is not a free kernel set-up slot of this engine's port: its entries are deleted,
   *  the slot is not given back */
  BadSlot: -4,
  /** the connection table is full */
  TableFull: -5,
  /** not a kernel set-up case any more: not TCP, a persistent service, a server whose
   *  forwarding method is not the report's (edited since), or backup_only in force */
  NotEligible: -6,
} as const;

/** Result of KernelMade.segment. */
export const KernelSegment = {
  Applied: 0,
  /** no connection has the segment's tuple (expired, or refused when it was reported new) */
  NoConn: -1,
  /** a SYN on a finished connection that IPVS would schedule elsewhere (its server deleted or
   *  quiesced, its service gone or changed): the old connection is expired as IPVS expires it,
   *  and with it the kernel's entries; the SYN is not counted (the client sends it again) */
  Ended: -2,
} as const;

export class KernelMade {
  readonly #s: EngineState;
  readonly #protos: ProtoTable;
  readonly #decider: Decider;
  readonly #life: ConnLifecycle;
  readonly #offload: OffloadPolicy;
  /** the creation context, reused (Scheduling.open's fields) */
  readonly #ctx: SchedContext = { proto: 0, caddr: 0, cport: 0, vaddr: 0, vport: 0, now: 0, dryRun: false };

  constructor(s: EngineState, protos: ProtoTable, decider: Decider, life: ConnLifecycle, offload: OffloadPolicy) {
    this.#s = s;
    this.#protos = protos;
    this.#decider = decider;
    this.#life = life;
    this.#offload = offload;
  }

  /**
   * The kernel scheduled a SYN of caddr:cport -> vaddr:vport to raddr:rport (the server's port
   * as the engine knows it), forwarded it by method `fwd` (Fwd.*) with its entries counting in
   * `slot` (whole slot array); the SYN had ipLen IP bytes; `now` is the engine's ms clock at its
   * forwarding. Returns the new connection, or a KernelOpen code (nothing changed).
   */
  open(proto: number, caddr: number, cport: number, vaddr: number, vport: number, raddr: number, rport: number, fwd: number, slot: number, ipLen: number, now: number): number {
    const s = this.#s;
    const ops = this.#protos.of(proto);
    if (ops === undefined || proto !== IPPROTO_TCP || s.backupOnly) return KernelOpen.NotEligible;
    s.setNow(now);
    const dec = this.#decider.decide(ops, caddr, cport, vaddr, vport, TcpFlag.SYN, NO_MARKS);
    if (dec.path === Path.NoService || dec.path === Path.NotOpener) return KernelOpen.NoService;
    if (dec.path !== Path.Schedule) return KernelOpen.Conflict; // a kept connection (or a reply tuple)
    const svc = dec.svc!;
    if (svc.persistent || ops.newConnFlags(svc) !== 0) return KernelOpen.NotEligible;
    const d = serverOf(svc, raddr, rport, vport);
    if (d === null) return KernelOpen.NoDest;
    if (d.fwd !== fwd) return KernelOpen.NotEligible;
    if (!this.#offload.kernelSlotFree(slot)) return KernelOpen.BadSlot;
    if (dec.expire !== Expire.None) {
      s.events[dec.expire === Expire.Reuse ? Event.Rescheduled : Event.ExpiredNoDest]!++; // as Director.process
      this.#life.unlink(dec.conn); // ip_vs_conn_expire_now
    }
    const ctx = fillSchedContext(this.#ctx, proto, caddr, cport, vaddr, vport, now);
    const off = this.#offload;
    off.applyingKernel(true); // not routed: the kernel wrote the entry
    const c = this.#life.create(d, ctx, d.port !== 0 ? d.port : vport, 0, -1); // as Scheduling.open
    if (c < 0) {
      off.applyingKernel(false);
      return KernelOpen.TableFull;
    }
    this.#request(c, d, TcpFlag.SYN, ipLen);
    off.applyingKernel(false);
    off.adoptKernel(c, slot);
    return c;
  }

  /**
   * The kernel forwarded a segment (TCP flags tflags, ipLen IP bytes) of a connection it set up:
   * a request caddr:cport -> vaddr:vport (reply 0) or a reply raddr:rport -> caddr:cport
   * (reply 1). `now`: the engine's ms clock at its forwarding. Returns a KernelSegment code.
   */
  segment(proto: number, caddr: number, cport: number, vaddr: number, vport: number, raddr: number, rport: number, reply: number, tflags: number, ipLen: number, now: number): number {
    const s = this.#s;
    const conns = s.conns;
    if (this.#protos.of(proto) === undefined) return KernelSegment.NoConn;
    s.setNow(now);
    // the lookups of decide.ts: the request tuple, or a masqueraded connection's reply tuple
    const c = reply === 0 ? conns.findIn(proto, caddr, cport, vaddr, vport) : conns.findOut(proto, caddr, cport, raddr, rport);
    if (c < 0 || (reply !== 0 && (conns.flags(c) & ConnFlag.FWD_MASK) !== 0)) return KernelSegment.NoConn;
    const ops = this.#protos.of(proto)!;
    if (reply === 0 && ops.isNewConn(tflags) && ops.opensConn(tflags)) {
      // a SYN on the entry: IPVS's rule for a SYN on a known tuple (decide.ts, as Director.process)
      const dec = this.#decider.decide(ops, caddr, cport, vaddr, vport, tflags, NO_MARKS);
      if (dec.expire !== Expire.None && dec.conn === c) return this.#reopen(c, dec.expire, dec.path === Path.Schedule ? dec.svc : null, tflags, ipLen);
    }
    const d = s.dests.byId(conns.dest(c));
    const off = this.#offload;
    off.applyingKernel(true);
    if (reply === 0) this.#request(c, d, tflags, ipLen);
    else {
      // Forwarder.reply: ip_vs_out_stats, set_tcp_state with OUTPUT, the new state's timeout
      countPacket(d, s.stats, Stat.OUTPKTS, Stat.OUTBYTES, ipLen);
      const to = this.#protos.of(proto)!.transition(c, TcpDir.OUTPUT, tflags, d);
      conns.rearm(c, s.nowTick + to);
    }
    off.applyingKernel(false);
    // a finished connection (TIME_WAIT, CLOSE) leaves the kernel: IPVS keeps it for its timeout,
    // the engine does too, but its slot and flow entries are freed for new connections (a
    // straggler of it then comes up through the TUN to the engine, which still has it); without
    // this, connections at 10,000/s would hold every kernel slot within seconds (TIME_WAIT 120 s)
    if (proto === IPPROTO_TCP && (conns.flags(c) & ConnFlag.OFFLOADED) !== 0) {
      const st = conns.state(c);
      if (st === TcpState.TIME_WAIT || st === TcpState.CLOSE) off.withdraw(c);
    }
    return KernelSegment.Applied;
  }

  /**
   * A SYN (flags tflags, ipLen bytes) that the kernel forwarded on finished entry c's flow entries
   * to its server, where IPVS expires c (`expire`) and schedules the SYN for `svc` (null: no
   * service now). When c's server may still take it, the result is what IPVS gives with that
   * server chosen: c expired (counted), a new connection created and its SYN counted, holding
   * c's kernel slot and entries (OffloadPort.moveKernel). Otherwise c is expired with its
   * entries (KernelSegment.Ended).
   */
  #reopen(c: number, expire: number, svc: VirtualService | null, tflags: number, ipLen: number): number {
    const s = this.#s;
    const conns = s.conns;
    const d = s.dests.byId(conns.dest(c));
    s.events[expire === Expire.Reuse ? Event.Rescheduled : Event.ExpiredNoDest]!++;
    const off = this.#offload;
    if (svc === null || expire !== Expire.Reuse || !d.available || d.weight === 0 || d.svc !== svc || svc.persistent) {
      this.#life.unlink(c); // ip_vs_conn_expire_now; an offloaded entry is withdrawn: its flow entries go
      return KernelSegment.Ended;
    }
    const kernel = off.detachForMove(c); // its slot and entries pass to the new connection
    const ctx = fillSchedContext(this.#ctx, conns.proto(c), conns.caddr(c), conns.cport(c), conns.vaddr(c), conns.vport(c), s.nowMs);
    const dport = conns.dport(c);
    this.#life.unlink(c);
    off.applyingKernel(true);
    const n = this.#life.create(d, ctx, dport, 0, -1); // cannot fail: c's entry was just freed
    if (n >= 0) this.#request(n, d, tflags, ipLen);
    off.applyingKernel(false);
    if (n >= 0 && kernel) off.moveKernel(c, n);
    return n >= 0 ? KernelSegment.Applied : KernelSegment.Ended;
  }

  /** Forwarder.request's accounting for a request of entry c (ip_vs_in): counters, in_pkts, the
   *  state (INPUT; INPUT_ONLY while NOOUTPUT), the sync master, the new state's timeout. */
  #request(c: number, d: RealServer, tflags: number, ipLen: number): void {
    const s = this.#s;
    const conns = s.conns;
    countPacket(d, s.stats, Stat.INPKTS, Stat.INBYTES, ipLen);
    const k = conns.inPkts[c]!;
    if (k < 255) conns.inPkts[c] = k + 1;
    const to = this.#protos.of(conns.proto(c))!.transition(c, TcpDir.INPUT, tflags, d);
    if (s.sync !== null) s.sync.inbound(c);
    conns.rearm(c, s.nowTick + to);
  }
}

/** Service svc's server raddr:rport (a server of port 0 takes the service's port, as
 *  Scheduling.open gives the connection), or null. A plain loop: no closure per report. */
function serverOf(svc: VirtualService, raddr: number, rport: number, vport: number): RealServer | null {
  const ds = svc.dests;
  for (let i = 0; i < ds.length; i++) {
    const d = ds[i]!;
    if (d.addr >>> 0 === raddr >>> 0 && (d.port !== 0 ? d.port : vport) === rport) return d;
  }
  return null;
}
