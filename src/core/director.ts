/**
 * The director engine: one entry point `process(packet, now) -> verdict` and the control
 * operations that build services and real servers. This file is wiring; each step lives in its
 * own file, named after its IPVS counterpart (docs/architecture.md follows one packet through):
 *
 *   packet-meta.ts   1. parse the packet once (ip_vs_fill_iph)
 *   decide.ts        2. find its connection, or the service that must schedule it (ip_vs_in)
 *   schedule.ts         choose a server (ip_vs_schedule, conn/persist.ts: ip_vs_sched_persist)
 *   conn/lifecycle.ts   create / expire / unlink entries (ip_vs_conn.c)
 *   forward.ts       3. count, move the state (proto/*: ip_vs_protocol), rewrite (xmit-nat.ts),
 *                       restart timers, offer to the kernel (offload-policy.ts); syn-proxy.ts
 *   proto/icmp.ts       ICMP errors about connections (ip_vs_in_icmp); no-dest.ts: ICMP port unreachable (ip_vs_leave)
 *   ctl/*.ts         services, servers, listings (ip_vs_ctl.c);  explain.ts: decisions, dry run
 *   sync/*.ts        connection synchronisation, master and backup (ip_vs_sync.c; docs/sync.md)
 *
 * Rules (design in docs/architecture.md):
 * - No I/O, no clock, no Math.random: time (`now`, monotonic ms), the hash seed and the random
 *   source are passed in.
 * - The packet path never throws and never allocates in steady state; every packet ends in
 *   exactly one outcome counter (verdict.ts).
 * - Control operations validate the whole request first and then apply it, so a rejected
 *   request changes nothing (IpvsError with the errno and ipvsadm's text).
 */
import { exportConns, importConns, type ImportResult } from './conn/handover.js';
import { ConnLifecycle } from './conn/lifecycle.js';
import { Persistence } from './conn/persist.js';
import type { ConnTable } from './conn-table.js';
import type { DestRegistry } from './dest-registry.js';
import { DestTable } from './ctl/dests.js';
import { listConnections, snapshotOf, type ConnInfo, type DirectorSnapshot } from './ctl/listings.js';
import { ServiceTable } from './ctl/services.js';
import type { DestSpec, ServiceSpec } from './ctl/specs.js';
import { Decider, Expire, NO_MARKS, Path, type MarkSource } from './decide.js';
import { Defense, type DefenseChange } from './defense.js';
import { EngineState } from './engine-state.js';
import { Explainer, type Explanation, type FlowQuery } from './explain.js';
import { Forwarder } from './forward.js';
import { KernelMade } from './kernel-made.js';
import { NoDestReply } from './no-dest.js';
import { DEFAULT_OFFLOAD_AFTER, type OffloadPort, type OffloadReport } from './offload.js';
import { OffloadPolicy } from './offload-policy.js';
import { PacketMeta } from './packet-meta.js';
import { IcmpErrors } from './proto/icmp.js';
import { ProtoTable } from './proto/ops.js';
import { TcpOps } from './proto/tcp.js';
import { UdpOps } from './proto/udp.js';
import { StateSlot, SLOT_INTS } from './sched-state.js';
import { Opened, Scheduling } from './schedule.js';
import { fillSchedContext, type SchedContext, type SchedulerEnv, type SchedulerRegistry } from './scheduler.js';
import { ServiceIndex } from './service-index.js';
import type { RealServer, ServiceKey, VirtualService } from './service.js';
import { ESTIMATOR_PERIOD_MS, type Stats } from './stats.js';
import { SyncControl } from './sync/control.js';
import type { Sysctls } from './sysctl.js';
import type { Timeouts } from './timeouts.js';
import { Event, namedCounters, Outcome, OUTCOME_VERDICT, Verdict, type OutcomeCode, type VerdictCode } from './verdict.js';
import { errors } from './errors.js';
import { xorshift } from './xorshift.js';
import { IPPROTO_ICMP } from '../wire/ipv4.js';

export type { ConnInfo, DestSnapshot, DirectorSnapshot, ServiceSnapshot, StatsSnapshot } from './ctl/listings.js';
export type { DestSpec, ServiceSpec } from './ctl/specs.js';
export { serviceLabel, type Explanation, type FlowQuery } from './explain.js';
export type { Sysctls } from './sysctl.js';
export { MAX_TIMEOUT_S, type Timeouts } from './timeouts.js';

const VERDICT_OF = Uint8Array.from(OUTCOME_VERDICT);

export interface DirectorOptions {
  schedulers: SchedulerRegistry;
  /** connection table capacity (connections + templates); default 2^20 */
  maxConns?: number;
  /** 32-bit seed for the connection hash; production passes a random one */
  seed?: number;
  /** uniform uint32 random source for schedulers (twos) and drop_entry; default: xorshift from seed */
  random?: () => number;
  sysctl?: Partial<Sysctls>;
  /** Scheduler state slots shared with the other engines of one director (an Int32Array over a
   *  SharedArrayBuffer, sched-state.ts; a service names its ServiceSpec.stateSlot); without it,
   *  every service keeps its scheduler state to itself. */
  sharedState?: Int32Array;
  /** A TCP segment for a service that may not open a connection (no SYN) and has none: 'pass'
   *  (default) hands it to the host stack (which resets it where the VIP is local); 'drop'
   *  discards it (DropNoConn), for a data path where passing means routing it onward; 'local'
   *  passes it when its destination is one of the addresses last given to `setLocalAddresses`
   *  (a VIP assigned to the host: its stack resets it, as with IPVS), else drops it. */
  strayTcp?: 'pass' | 'drop' | 'local';
  /** The kernel fast path (core/offload.ts): a port made for this engine's connection table
   *  (and its real servers, whose tunnel a tunnelled connection's entry names), and the packets
   *  a connection forwards here first (default DEFAULT_OFFLOAD_AFTER). */
  offload?: { port: (conns: ConnTable, dests: DestRegistry) => OffloadPort; after?: number };
}

export class Director {
  readonly #s: EngineState;
  readonly #meta = new PacketMeta();
  marks: MarkSource = NO_MARKS; // the packets' firewall marks (core/mark-source.ts), set once by the data path
  readonly #protos = new ProtoTable();
  readonly #offload: OffloadPolicy;
  readonly #life: ConnLifecycle;
  readonly #decider: Decider;
  readonly #scheduling: Scheduling;
  readonly #forward: Forwarder;
  readonly #icmp: IcmpErrors;
  readonly #noDest: NoDestReply;
  readonly #services: ServiceTable;
  readonly #dests: DestTable;
  readonly #explainer: Explainer;
  /** IPVS's flood defences (drop_entry, drop_packet, secure_tcp; defense.ts) */
  readonly defense: Defense;
  readonly #random: () => number;
  /** connection synchronisation: the master's sink and the backup's receive() (sync/control.ts) */
  readonly sync: SyncControl;
  /** reports of connections the kernel fast path set up and forwarded itself (kernel-made.ts) */
  readonly kernel: KernelMade;
  /** outcome of a stray TCP segment (DirectorOptions.strayTcp; 'local': by #localAddrs) */
  readonly #stray: OutcomeCode;
  readonly #strayLocal: boolean;
  /** strayTcp 'local': the destinations whose stray segments pass (setLocalAddresses), int32 */
  #localAddrs = new Set<number>();
  /** the scheduling context, reused for every new flow */
  readonly #ctx: SchedContext = { proto: 0, caddr: 0, cport: 0, vaddr: 0, vport: 0, now: 0, dryRun: false };
  #lastEstimateMs = 0;

  constructor(o: DirectorOptions) {
    const seed = (o.seed ?? 0x5eed) >>> 0;
    const s = (this.#s = new EngineState(o.maxConns ?? 1 << 20, seed, o.sysctl));
    this.#stray = o.strayTcp === 'drop' || o.strayTcp === 'local' ? Outcome.DropNoConn : Outcome.PassNoConn;
    this.#strayLocal = o.strayTcp === 'local';
    const port = o.offload ? o.offload.port(s.conns, s.dests) : null;
    this.#offload = new OffloadPolicy(s, this.#protos, port, o.offload?.after ?? DEFAULT_OFFLOAD_AFTER);
    this.#protos.register(new TcpOps(s, this.#offload));
    this.#protos.register(new UdpOps(s));
    this.#life = new ConnLifecycle(s, this.#offload);
    this.#decider = new Decider(s, new ServiceIndex([]));
    this.#scheduling = new Scheduling(s, this.#life, new Persistence(s));
    this.#forward = new Forwarder(s, this.#life, this.#offload);
    this.#offload.seqDeltas = this.#forward.proxy; // a SYN-cookie connection's offer carries its delta
    this.#icmp = new IcmpErrors(s);
    this.#noDest = new NoDestReply(s);
    const shared = o.sharedState ?? null;
    const random = (this.#random = o.random ?? xorshift(seed));
    const sysctl = s.sysctl;
    const env: SchedulerEnv = {
      random,
      get lblcExpiration() {
        return sysctl.lblcExpiration;
      },
      get lblcrExpiration() {
        return sysctl.lblcrExpiration;
      },
      stateSlot: (svc) => new StateSlot(shared, svc.stateSlot),
    };
    this.#services = new ServiceTable(o.schedulers, env, this.#decider, s.dests, shared !== null && shared.length >= SLOT_INTS ? shared : null);
    this.#dests = new DestTable(this.#services, s.dests);
    this.sync = new SyncControl(s, this.#protos, this.#life, this.#offload, this.#decider);
    this.kernel = new KernelMade(s, this.#protos, this.#decider, this.#life, this.#offload);
    this.defense = new Defense(s);
    this.defense.update(); // the modes given at start are in force from the first packet
    this.#explainer = new Explainer(s, this.#protos, this.#decider, this.#scheduling, (vaddr) => this.#strayOutcome(vaddr) === Outcome.DropNoConn);
  }

  // ---------------------------------------------------------------------------------------------
  // Packet path

  /**
   * Process one IPv4 packet at buf[off, off+len), rewriting it in place when forwarded.
   * @param now    caller's monotonic clock, ms
   * @param pflags PacketFlag bits (CsumPartial for NEEDS_CSUM packets from an offloading TUN)
   */
  process(buf: Buffer, off: number, len: number, now: number, pflags: number): VerdictCode {
    const s = this.#s;
    s.setNow(now);
    s.lastConn = -1;
    const m = this.#meta;
    if (!m.parse(buf, off, len, pflags)) return this.#out(m.stop); //         1 receive
    const serve = !s.backupOnly; // backup_only: requests pass, replies translated (SyncControl)
    if (m.proto === IPPROTO_ICMP) return this.#out(this.#icmp.handle(m, serve));
    const ops = this.#protos.of(m.proto)!; //                                   TCP or UDP
    const dec = this.#decider.decide(ops, m.saddr, m.sport, m.daddr, m.dport, m.tflags, this.marks); // 2 look up
    if (!serve && dec.path !== Path.Reply) return this.#out(Outcome.PassBackupOnly);
    switch (dec.path) {
      case Path.Connection:
        if (!this.#forward.proxy.reopens(m, ops, dec.conn)) return this.#out(this.#forward.request(m, ops, dec.conn)); // 3-4, 6
        this.#decider.reopen(ops, m.saddr, m.sport, m.daddr, m.dport, this.marks); // a checked cookie ACK on an ended entry (syn-proxy.ts)
        break;
      case Path.Reply:
        return this.#out(this.#forward.reply(m, ops, dec.conn)); //             5-6
      case Path.DestUnavailable:
        return this.#out(Outcome.DropDestUnavailable);
    }
    if (dec.expire !== Expire.None) {
      s.events[dec.expire === Expire.Reuse ? Event.Rescheduled : Event.ExpiredNoDest]!++;
      this.#life.unlink(dec.conn); // ip_vs_conn_expire_now
    }
    if (dec.path === Path.NoService) return this.#out(Outcome.PassNoService);
    const proxied = this.#forward.proxy.accepts(m); // an ACK whose SYN cookie the kernel checked
    if (dec.path === Path.NotOpener && !proxied) return this.#out(this.#strayOutcome(m.daddr));
    if (this.defense.todrop()) return this.#out(Outcome.DropDefense); // ip_vs_todrop: drop_packet
    const ctx = fillSchedContext(this.#ctx, m.proto, m.saddr, m.sport, m.daddr, m.dport, now); // 2 schedule
    const c = this.#scheduling.open(dec.svc!, ctx, ops);
    if (c === Opened.NoDest) return this.#out(this.#noDest.answer(m));
    if (c === Opened.TableFull) return this.#out(Outcome.DropConnTableFull);
    return this.#out(proxied ? this.#forward.proxy.open(m, ops, c) : this.#forward.request(m, ops, c)); // 3-4, 6
  }

  #strayOutcome(vaddr: number): OutcomeCode {
    return this.#strayLocal && this.#localAddrs.has(vaddr | 0) ? Outcome.PassNoConn : this.#stray; // int32 keys: no boxing per packet
  }

  /** strayTcp 'local': the host's addresses (uint32) whose stray TCP segments pass from now on
   *  (replaces the previous set; ignored with the other strayTcp modes). */
  setLocalAddresses(addrs: readonly number[]): void {
    this.#localAddrs = new Set(addrs.map((a) => a | 0));
  }

  #out(o: OutcomeCode): VerdictCode {
    this.#s.outcomes[o]!++;
    this.#s.lastOutcome = o;
    return VERDICT_OF[o] as VerdictCode;
  }

  /** the packet produced by the last Verdict.Icmp or Verdict.Send (valid until the next call) */
  get icmpOut(): Buffer {
    return VERDICT_OF[this.#s.lastOutcome] === Verdict.Send ? this.#forward.proxy.out : this.#noDest.out;
  }
  get icmpLen(): number {
    return VERDICT_OF[this.#s.lastOutcome] === Verdict.Send ? this.#forward.proxy.len : this.#noDest.len;
  }
  /** outcome of the last `process()` call */
  get lastOutcome(): OutcomeCode {
    return this.#s.lastOutcome;
  }
  /** connection used by the last forwarded packet, or -1 */
  get lastConn(): number {
    return this.#s.lastConn;
  }

  // ---------------------------------------------------------------------------------------------
  // Time

  /**
   * Advance time: expire connections whose timers ran out, run the rate estimator every 2 s,
   * let schedulers do housekeeping, free unreferenced deleted servers. Call every ~100-1000 ms.
   */
  tick(now: number): void {
    const s = this.#s;
    s.setNow(now);
    s.conns.advance(s.nowTick, this.#life.onDue);
    if (this.#lastEstimateMs === 0 || now < this.#lastEstimateMs) this.#lastEstimateMs = now;
    for (let k = 0; k < 8 && now - this.#lastEstimateMs >= ESTIMATOR_PERIOD_MS; k++) {
      this.#lastEstimateMs += ESTIMATOR_PERIOD_MS;
      s.stats.estimate();
      for (const v of this.#services.list) {
        v.stats.estimate();
        for (const d of v.dests) d.stats.estimate();
      }
    }
    if (now - this.#lastEstimateMs >= ESTIMATOR_PERIOD_MS) this.#lastEstimateMs = now;
    for (const v of this.#services.list) v.sched?.tick?.(now);
    this.sync.tick(now);
  }

  /** Once a second (defense_work_handler): the host's MemAvailable in pages (negative: unknown)
   *  in; update_defense_level, then drop_entry's drops while on (defense.ts); changes out. */
  defend(memPages: number, now: number): DefenseChange[] {
    this.#s.setNow(now);
    this.defense.feed(memPages);
    this.defense.update();
    if (this.defense.dropEntryOn) this.defense.dropEntries(this.#random, this.#life);
    return this.defense.takeChanges();
  }

  // ---------------------------------------------------------------------------------------------
  // Kernel fast path

  /** What the kernel forwarded for offloaded connection c since the last report (the data path
   *  calls this before each tick): counted as IPVS counts packets, and c's timer restarted. */
  offloadActivity(c: number, r: OffloadReport): void {
    this.#offload.activity(c, r);
  }

  /** Take every connection back from the kernel fast path (before a configuration change). */
  withdrawAll(): number {
    return this.#offload.withdrawAll();
  }

  // ---------------------------------------------------------------------------------------------
  // Restarts (conn/handover.ts)

  /** Every live entry as hand-over records (templates first), with its kernel fast path slot.
   *  Call after the last harvest; the engine is not changed. */
  exportConns(now: number): { buf: Buffer; count: number } {
    return exportConns(this.#s, now, this.#offload.slots, this.#forward.proxy);
  }

  /** Insert the previous process's records, bound to the servers of the current rules. */
  importConns(buf: Buffer, count: number, now: number): ImportResult {
    return importConns(this.#s, this.#offload, (proto, addr, port) => this.#services.get({ proto, addr, port }), buf, count, now);
  }

  // ---------------------------------------------------------------------------------------------
  // State shown to the data path and tests

  get conns(): ConnTable { return this.#s.conns; }
  /** outcome counters, index = Outcome code (one per packet) */
  get outcomes(): Float64Array {
    return this.#s.outcomes;
  }
  /** event counters, index = Event code */
  get events(): Float64Array {
    return this.#s.events;
  }
  /** totals over all services (ipvsadm's global stats) */
  get stats(): Stats {
    return this.#s.stats;
  }
  get sysctl(): Sysctls {
    return this.#s.sysctl;
  }

  // ---------------------------------------------------------------------------------------------
  // Control operations (ctl/*)

  get services(): readonly VirtualService[] {
    return this.#services.list;
  }
  getService(k: ServiceKey): VirtualService | null {
    return this.#services.get(k);
  }
  batch = <T>(f: () => T): T => this.#services.batch(f); // control operations, one service-index rebuild (ctl/services.ts)
  addService(spec: ServiceSpec): VirtualService {
    return this.#services.add(spec);
  }
  /** ipvsadm -E: replaces scheduler, flags, timeout and netmask (what is not given resets). */
  editService(spec: ServiceSpec): VirtualService {
    return this.#services.edit(spec);
  }
  deleteService(k: ServiceKey): void {
    this.#services.delete(k);
  }
  /** ipvsadm -C: delete every service (connections stay and expire; their packets drop). */
  clear(): void {
    this.#services.clear();
  }
  addDest(k: ServiceKey, spec: DestSpec): RealServer {
    return this.#dests.add(k, spec);
  }
  /** ipvsadm -e: replaces weight, thresholds and method. */
  editDest(k: ServiceKey, spec: DestSpec): RealServer {
    return this.#dests.edit(k, spec);
  }
  deleteDest(k: ServiceKey, addr: number, port: number): void {
    this.#dests.delete(k, addr, port);
  }
  /** ip_vs_expire_nodest_conn_flush (Linux 5.9+; applyOps runs it after deletions): with expire_nodest_conn, expire every entry of a deleted server now; how many */
  expireNodestConns = (): number => (this.#s.sysctl.expireNodestConn ? this.#life.expireNodest() : 0);
  get trash(): readonly RealServer[] { return this.#s.dests.trash; } // deleted servers still referenced by connections

  /** ipvsadm --set tcp tcpfin udp (seconds; 0 leaves a value unchanged). */
  setTimeouts(t: Partial<Timeouts>): void {
    this.#s.timeouts.set(t);
  }
  get timeouts(): Timeouts { return this.#s.timeouts.values; }

  /** ipvsadm -Z: zero the counters of one service (and its servers), or of everything. */
  zero(k?: ServiceKey): void {
    const one = k === undefined ? null : this.#services.get(k);
    if (k !== undefined && one === null) throw errors.noService();
    for (const v of one === null ? this.#services.list : [one]) for (const x of [v, ...v.dests]) x.stats.zero();
    for (const v of one === null ? this.#services.list : [one]) for (const x of v.dests) x.unanswered = 0; // ulvs's own (proto/tcp.ts)
    if (k === undefined) this.#s.stats.zero();
  }

  /** Snapshot of the connection table (ipvsadm -L -c). */
  connections(now: number): ConnInfo[] {
    return listConnections(this.#s, this.#protos, now);
  }

  snapshot(): DirectorSnapshot { // services, servers and their counters as plain data
    return snapshotOf(this.#s, this.#services.list);
  }

  /** Counters by name (outcomes and events), for metrics and tests. */
  counters(): Record<string, number> {
    return namedCounters(this.#s.outcomes, this.#s.events);
  }

  /** Which server a flow would get and why, from the packet path's own decisions; commits nothing. */
  explain(q: FlowQuery, now: number): Explanation {
    return this.#explainer.explain(q, now);
  }
}
