/**
 * The VS/NAT director engine: one entry point `process(packet, now) -> verdict`, the connection
 * life cycle (ipvs-spec §2), IPVS's TCP/UDP state handling (§3), persistence (§2.5), ICMP (§4.6)
 * and the control operations that build services and real servers (§1, §6.4).
 *
 * Rules this file keeps (design.md):
 * - No I/O, no clock, no Math.random: time (`now`, monotonic ms), the hash seed and the random
 *   source are passed in.
 * - The packet path never throws and never allocates in steady state; every packet ends in
 *   exactly one outcome counter (verdict.ts).
 * - Control operations validate the whole request first and then apply it, so a rejected
 *   request changes nothing (IpvsError with the errno and ipvsadm's text).
 */
import { StateSlot, SLOT_INTS } from './sched-state.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4, Ipv4Check, Ipv4View, readI32, readU16 } from '../wire/ipv4.js';
import { TcpCheck, TcpFlag, TcpView } from '../wire/tcp.js';
import { UdpCheck, UdpView } from '../wire/udp.js';
import { IcmpUnreachCode, isTranslatedIcmpError } from '../wire/icmp.js';
import { formatIPv4 } from '../wire/addr.js';
import { ConnFlag, ConnTable, TICK_MS, TICKS_PER_SEC } from './conn-table.js';
import { buildIcmpUnreach, icmpTranslate } from './icmp.js';
import { natRewrite } from './nat.js';
import type { SchedContext, SchedulerEnv, SchedulerRegistry } from './scheduler.js';
import { Fwd, FWD_NAMES, RealServer, SVC_SCHED_FLAGS, SvcFlag, VirtualService, type ServiceKey } from './service.js';
import { ServiceIndex } from './service-index.js';
import { ESTIMATOR_PERIOD_MS, Stat, Stats } from './stats.js';
import { DEFAULT_OFFLOAD_AFTER, type OffloadPort } from './offload.js';
import {
  TCP_DEFAULT_TIMEOUTS,
  TCP_STATE_COUNT,
  TCP_STATE_NAMES,
  TCP_TABLE_NORMAL,
  TCP_TABLE_SECURE,
  TcpDir,
  TcpState,
  UDP_DEFAULT_TIMEOUT,
  UDP_STATE_NAME,
  tcpEvent,
  tcpStateIsActive,
} from './tcp-states.js';
import { Event, EVENT_NAMES, Outcome, OUTCOME_NAMES, OUTCOME_VERDICT, PacketFlag, type OutcomeCode, type VerdictCode } from './verdict.js';
import { errors, IpvsError } from './errors.js';

/** Largest timeout ipvsadm accepts (31 days), seconds. */
export const MAX_TIMEOUT_S = 2678400;
/** Initial timeout of a new connection before its first state transition (ip_vs_conn_new). */
const NEW_CONN_TIMEOUT_S = 3;
/** A template that expires while it still controls connections is re-armed for this long. */
const EXPIRE_LATER_S = 60;
const MAX_DEST_ID = 65535;
/** ICMP error rate limit: Linux's net.ipv4.icmp_msgs_per_sec / icmp_msgs_burst defaults. */
const ICMP_PER_SEC = 1000;
const ICMP_BURST = 50;
const FTP_PORT = 21;

const NO_DEST = -2;
const TABLE_FULL = -1;

const IPV4_CHECK_OUTCOME: readonly OutcomeCode[] = [
  Outcome.DropTruncated, // Ok (unused)
  Outcome.DropTruncated,
  Outcome.DropBadVersion,
  Outcome.DropBadHeaderLength,
  Outcome.DropBadTotalLength,
];
const VERDICT_OF = Uint8Array.from(OUTCOME_VERDICT);

/** sysctls of /proc/sys/net/ipv4/vs that the engine honours (ipvs-spec §9). */
export interface Sysctls {
  expireNodestConn: boolean;
  expireQuiescentTemplate: boolean;
  /** use the hardened TCP state table (secure_tcp = 3) */
  secureTcp: boolean;
  /** schedule TCP connections on any segment, not only SYN */
  sloppyTcp: boolean;
  /** conn_reuse_mode: 0 off, bit 1 reschedule on SYN to TIME_WAIT/CLOSE conns */
  connReuseMode: number;
  lblcExpiration: number;
  lblcrExpiration: number;
}

export interface DirectorOptions {
  schedulers: SchedulerRegistry;
  /** connection table capacity (connections + templates); default 2^20 */
  maxConns?: number;
  /** 32-bit seed for the connection hash; production passes a random one */
  seed?: number;
  /** uniform uint32 random source for schedulers (twos); default: xorshift from seed */
  random?: () => number;
  sysctl?: Partial<Sysctls>;
  /**
   * Scheduler state slots shared with the other engines of one director (an Int32Array over a
   * SharedArrayBuffer; see sched-state.ts); services name theirs with ServiceSpec.stateSlot.
   * Without it every service keeps its scheduler state to itself.
   */
  sharedState?: Int32Array;
}

export interface ServiceSpec extends ServiceKey {
  /** default 'wlc' */
  scheduler?: string;
  /** persistence timeout in seconds; 0/undefined = not persistent */
  persistent?: number;
  /** persistence granularity (IPv4 mask); default 255.255.255.255 */
  netmask?: number;
  /** SvcFlag.SCHED1..3 bits (-b) */
  schedFlags?: number;
  /** one-packet scheduling (UDP only) */
  ops?: boolean;
  /**
   * Index of this service's slot in DirectorOptions.sharedState (assigned by the control plane,
   * a fresh one for each new scheduler); ignored without sharedState.
   */
  stateSlot?: number;
}

export interface DestSpec {
  addr: number;
  port: number;
  /** default 1 */
  weight?: number;
  /** default Fwd.MASQ (the only method implemented) */
  fwd?: number;
  uThreshold?: number;
  lThreshold?: number;
}

export interface Timeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

export interface ConnInfo {
  proto: number;
  template: boolean;
  caddr: number;
  cport: number;
  vaddr: number;
  vport: number;
  daddr: number;
  dport: number;
  /** state name as ipvsadm -c prints it */
  state: string;
  /** ms until expiry (>= 0) */
  expiresInMs: number;
}

/** Plain-data picture of the services (structured-clone safe: crosses worker boundaries). */
export interface StatsSnapshot {
  /** conns, inpkts, outpkts, inbytes, outbytes */
  counters: number[];
  /** cps, inpps, outpps, inbps, outbps (IPVS estimator) */
  rates: number[];
}
export interface DestSnapshot extends StatsSnapshot {
  addr: number;
  port: number;
  fwd: number;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  activeConns: number;
  inactConns: number;
  persistConns: number;
}
export interface ServiceSnapshot extends StatsSnapshot {
  proto: number;
  addr: number;
  port: number;
  scheduler: string;
  flags: number;
  timeout: number;
  netmask: number;
  /** kernel order (newest first) */
  dests: DestSnapshot[];
}
export interface DirectorSnapshot {
  /** connection-table hash buckets (ipvsadm's "size=") */
  buckets: number;
  connections: number;
  /** connection-table capacity (connections + templates) */
  capacity: number;
  services: ServiceSnapshot[];
  totals: StatsSnapshot;
}

const statsOf = (s: Stats): StatsSnapshot => ({ counters: Array.from(s.c), rates: [0, 1, 2, 3, 4].map((k) => s.rate(k)) });

export interface FlowQuery {
  proto: number;
  caddr: number;
  cport: number;
  vaddr: number;
  vport: number;
  /** TCP: is this the first segment (SYN)? default true */
  syn?: boolean;
}

export interface Explanation {
  verdict: 'forward' | 'pass' | 'icmp' | 'drop';
  path: 'connection' | 'template' | 'scheduler' | 'no-service' | 'not-syn' | 'no-destination' | 'dest-unavailable';
  service?: string;
  scheduler?: string;
  dest?: string;
  reason: string;
  servers?: { server: string; weight: number; active: number; inactive: number; overloaded: boolean }[];
}

export function serviceLabel(s: ServiceKey): string {
  return `${s.proto === IPPROTO_TCP ? 'TCP' : s.proto === IPPROTO_UDP ? 'UDP' : String(s.proto)} ${formatIPv4(s.addr)}:${s.port}`;
}

export class Director {
  readonly conns: ConnTable;
  /** outcome counters, index = Outcome code (one per packet) */
  readonly outcomes = new Float64Array(OUTCOME_NAMES.length);
  /** event counters, index = Event code */
  readonly events = new Float64Array(EVENT_NAMES.length);
  /** totals over all services (ipvsadm's global stats) */
  readonly stats = new Stats();
  readonly sysctl: Sysctls;
  /** the ICMP message produced by the last Verdict.Icmp (valid until the next call) */
  readonly icmpOut: Buffer = Buffer.alloc(576);
  icmpLen = 0;
  /** outcome of the last `process()` call */
  lastOutcome: number = Outcome.PassNoService;
  /** connection used by the last forwarded packet, or -1 */
  lastConn = -1;
  /** the kernel fast path, when the data path has one (core/offload.ts); null: none */
  offload: OffloadPort | null = null;
  /** packets forwarded by the engine in an eligible state before a connection is offered */
  offloadAfter = DEFAULT_OFFLOAD_AFTER;

  readonly #registry: SchedulerRegistry;
  readonly #schedEnv: SchedulerEnv;
  /** number of shared scheduler-state slots (0: none shared) */
  readonly #sharedSlots: number;
  #services: VirtualService[] = [];
  #index: ServiceIndex = new ServiceIndex([]);
  readonly #destById: (RealServer | null)[] = new Array<RealServer | null>(MAX_DEST_ID + 1).fill(null);
  readonly #freeIds: number[] = [];
  #trash: RealServer[] = [];
  readonly #ip = new Ipv4View();
  readonly #tcp = new TcpView();
  readonly #udp = new UdpView();
  readonly #ctx: SchedContext = { proto: 0, caddr: 0, cport: 0, vaddr: 0, vport: 0, now: 0, dryRun: false };
  readonly #tcpTimeouts = Float64Array.from(TCP_DEFAULT_TIMEOUTS);
  readonly #tcpTimeoutTicks = new Uint32Array(TCP_STATE_COUNT);
  #udpTimeout = UDP_DEFAULT_TIMEOUT;
  #udpTimeoutTicks = UDP_DEFAULT_TIMEOUT * TICKS_PER_SEC;
  #nowMs = 0;
  #nowTick = 0;
  #icmpTokens = ICMP_BURST;
  #icmpLastMs = 0;
  #icmpId = 0;
  #lastEstimateMs = 0;
  readonly #onDue = (i: number): void => this.#expire(i);
  /** what a withdrawn connection forwarded in the kernel (OffloadPort.withdraw) */
  readonly #offloadReport = new Float64Array(5);

  constructor(o: DirectorOptions) {
    this.#registry = o.schedulers;
    this.sysctl = {
      expireNodestConn: false,
      expireQuiescentTemplate: false,
      secureTcp: false,
      sloppyTcp: false,
      connReuseMode: 1,
      lblcExpiration: 86400,
      lblcrExpiration: 86400,
      ...o.sysctl,
    };
    const seed = (o.seed ?? 0x5eed) >>> 0;
    this.conns = new ConnTable({ capacity: o.maxConns ?? 1 << 20, seed });
    let x = seed || 1;
    const random =
      o.random ??
      (() => {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return (x >>>= 0);
      });
    const sysctl = this.sysctl;
    const shared = o.sharedState ?? null;
    this.#sharedSlots = shared === null ? 0 : Math.floor(shared.length / SLOT_INTS);
    this.#schedEnv = {
      random,
      get lblcExpiration() {
        return sysctl.lblcExpiration;
      },
      get lblcrExpiration() {
        return sysctl.lblcrExpiration;
      },
      stateSlot: (svc) => new StateSlot(shared, svc.stateSlot),
    };
    for (let id = MAX_DEST_ID; id >= 1; id--) this.#freeIds.push(id);
    this.#recomputeTimeoutTicks();
  }

  // ---------------------------------------------------------------------------------------------
  // Packet path

  /**
   * Process one IPv4 packet at buf[off, off+len), rewriting it in place when forwarded.
   * @param now    caller's monotonic clock, ms
   * @param pflags PacketFlag bits (CsumPartial for NEEDS_CSUM packets from an offloading TUN)
   */
  process(buf: Buffer, off: number, len: number, now: number, pflags: number): VerdictCode {
    this.#nowMs = now;
    this.#nowTick = Math.floor(now / TICK_MS);
    this.lastConn = -1;
    const ip = this.#ip.reset(buf, off, len);
    const chk = ip.check();
    if (chk !== Ipv4Check.Ok) return this.#out(IPV4_CHECK_OUTCOME[chk]!);
    if (!ip.checksumOk()) return this.#out(Outcome.DropBadIpChecksum);
    if (ip.isFragment) return this.#out(Outcome.DropFragment);
    const proto = ip.protocol;
    const hl = ip.headerLength;
    const total = ip.totalLength;
    const l4off = off + hl;
    const l4len = total - hl;
    let sport: number;
    let dport: number;
    let tflags = 0;
    if (proto === IPPROTO_TCP) {
      const t = this.#tcp.reset(buf, l4off);
      if (t.check(l4len) !== TcpCheck.Ok) return this.#out(Outcome.DropBadTcpHeader);
      sport = t.srcPort;
      dport = t.dstPort;
      tflags = t.flags;
    } else if (proto === IPPROTO_UDP) {
      const u = this.#udp.reset(buf, l4off);
      if (u.check(l4len) !== UdpCheck.Ok) return this.#out(Outcome.DropBadUdpLength);
      sport = u.srcPort;
      dport = u.dstPort;
    } else if (proto === IPPROTO_ICMP) {
      return this.#processIcmp(buf, off, l4off, l4len, total);
    } else {
      return this.#out(Outcome.PassProtocol);
    }
    // int32 addresses on the hot path: never boxed across calls (see readI32)
    const saddr = readI32(buf, off + IPV4.SRC);
    const daddr = readI32(buf, off + IPV4.DST);
    const partial = (pflags & PacketFlag.CsumPartial) !== 0;
    const conns = this.conns;

    // Inbound lookup first (client -> VIP), then the reply lookup (RS -> client), as IPVS's
    // hooks do. Deciding the direction from the service index first was tried: no measurable
    // gain at 1M flows (memory latency dominates) and no clear one at 10k (BENCHMARKS.md).
    let c = conns.findIn(proto, saddr, sport, daddr, dport);
    if (c >= 0) {
      c = this.#checkExisting(c, proto, tflags);
      if (c >= 0) return this.#forwardIn(c, buf, off, l4off, l4len, proto, tflags, total, partial);
      if (c === NO_DEST) return this.#out(Outcome.DropDestUnavailable);
      // else: the old connection was expired for rescheduling; fall through to a new one
    } else {
      c = conns.findOut(proto, daddr, dport, saddr, sport);
      if (c >= 0) return this.#forwardOut(c, buf, off, l4off, l4len, proto, tflags, total, partial);
    }
    const svc = this.#index.find(proto, daddr, dport);
    if (svc === null) return this.#out(Outcome.PassNoService);
    return this.#newFlow(svc, buf, off, l4off, l4len, proto, saddr, sport, daddr, dport, tflags, total, partial);
  }

  #out(o: OutcomeCode): VerdictCode {
    this.outcomes[o]!++;
    this.lastOutcome = o;
    return VERDICT_OF[o] as VerdictCode;
  }

  /** Connection-reuse and dead-destination checks on an inbound hit (ip_vs_in steps 4-5).
   *  Returns c to keep it, -1 after expiring it (schedule anew), NO_DEST to drop the packet. */
  #checkExisting(c: number, proto: number, tflags: number): number {
    const conns = this.conns;
    const d = this.#destById[conns.dest(c)]!;
    if (proto === IPPROTO_TCP && (tflags & TcpFlag.SYN) !== 0 && this.sysctl.connReuseMode !== 0) {
      if ((this.sysctl.expireNodestConn && d.weight === 0) || this.#newConnExpected(c)) {
        this.events[Event.Rescheduled]!++;
        this.#unlink(c); // ip_vs_conn_expire_now
        return -1;
      }
    }
    if (!d.available) {
      if (this.sysctl.expireNodestConn) {
        this.events[Event.ExpiredNoDest]!++;
        this.#unlink(c); // ip_vs_conn_expire_now
        return -1;
      }
      return NO_DEST;
    }
    return c;
  }

  /** is_new_conn_expected: a SYN for a finished TCP connection that no template controls. */
  #newConnExpected(c: number): boolean {
    const conns = this.conns;
    if (conns.ctl[c]! >= 0) return false;
    if (conns.proto(c) !== IPPROTO_TCP) return false;
    const s = conns.state(c);
    return s === TcpState.TIME_WAIT || s === TcpState.CLOSE;
  }

  #forwardIn(c: number, buf: Buffer, off: number, l4off: number, l4len: number, proto: number, tflags: number, total: number, partial: boolean): VerdictCode {
    const conns = this.conns;
    const d = this.#destById[conns.dest(c)]!;
    this.#account(d, Stat.INPKTS, Stat.INBYTES, total);
    const to = proto === IPPROTO_TCP ? this.#tcpTransition(c, TcpDir.INPUT, tflags, d) : this.#udpTimeoutTicks;
    natRewrite(buf, off, l4off, l4len, proto, IPV4.DST, 2, conns.daddr(c), conns.dport(c), partial);
    this.lastConn = c;
    if ((conns.flags(c) & ConnFlag.ONE_PACKET) !== 0) this.#expire(c);
    else {
      conns.rearm(c, this.#nowTick + to);
      if (this.offload !== null && (conns.flags(c) & ConnFlag.OFFLOADED) === 0) this.#considerOffload(c, proto);
    }
    return this.#out(Outcome.ForwardIn);
  }

  #forwardOut(c: number, buf: Buffer, off: number, l4off: number, l4len: number, proto: number, tflags: number, total: number, partial: boolean): VerdictCode {
    const conns = this.conns;
    const d = this.#destById[conns.dest(c)]!;
    this.#account(d, Stat.OUTPKTS, Stat.OUTBYTES, total);
    let to: number;
    if (proto === IPPROTO_TCP) to = this.#tcpTransition(c, TcpDir.OUTPUT, tflags, d);
    else {
      to = this.#udpTimeoutTicks;
      const t = conns.ctl[c]!;
      if (t >= 0) conns.setFlags(t, conns.flags(t) | ConnFlag.ASSURED); // a UDP reply assures the template
    }
    natRewrite(buf, off, l4off, l4len, proto, IPV4.SRC, 0, conns.vaddr(c), conns.vport(c), partial);
    this.lastConn = c;
    conns.rearm(c, this.#nowTick + to);
    if (this.offload !== null && (conns.flags(c) & ConnFlag.OFFLOADED) === 0) this.#considerOffload(c, proto);
    return this.#out(Outcome.ForwardOut);
  }

  /** Offer connection c to the kernel fast path once it has forwarded `offloadAfter` packets in
   *  an eligible state (TCP ESTABLISHED, or UDP; see core/offload.ts). */
  #considerOffload(c: number, proto: number): void {
    const conns = this.conns;
    if (proto === IPPROTO_TCP && conns.state(c) !== TcpState.ESTABLISHED) return;
    const n = conns.seen[c]! + 1;
    if (n < 255) conns.seen[c] = n;
    if (n < this.offloadAfter) return;
    if (this.offload!.offer(c)) {
      conns.setFlags(c, conns.flags(c) | ConnFlag.OFFLOADED);
      this.events[Event.Offloaded]!++;
    } else {
      conns.seen[c] = 0; // try again after as many packets
      this.events[Event.OffloadRefused]!++;
    }
  }

  /** Take connection c back from the kernel fast path: count what it forwarded there, and
   *  restart the timer from the last packet it forwarded. */
  #withdraw(c: number): void {
    const conns = this.conns;
    conns.setFlags(c, conns.flags(c) & ~ConnFlag.OFFLOADED);
    conns.seen[c] = 0;
    const r = this.#offloadReport;
    this.offload!.withdraw(c, r);
    this.#countOffloaded(c, r[0]!, r[1]!, r[2]!, r[3]!);
    this.#restartFrom(c, r[4]!);
    this.events[Event.OffloadWithdrawn]!++;
  }

  /** Restart c's timer from a packet the kernel forwarded at `lastSeenMs` (the caller's clock;
   *  -1: none), when that ends later than the timer now does. */
  #restartFrom(c: number, lastSeenMs: number): void {
    if (lastSeenMs < 0) return;
    const conns = this.conns;
    const to = conns.proto(c) === IPPROTO_TCP ? this.#tcpTimeoutTicks[conns.state(c)]! : this.#udpTimeoutTicks;
    const t = Math.floor(lastSeenMs / TICK_MS) + to;
    if (t > conns.expires(c)) conns.rearm(c, t);
  }

  #countOffloaded(c: number, inPkts: number, inBytes: number, outPkts: number, outBytes: number): void {
    if (inPkts === 0 && outPkts === 0) return;
    const d = this.#destById[this.conns.dest(c)]!;
    for (const st of [d.stats.c, d.svc.stats.c, this.stats.c]) {
      st[Stat.INPKTS]! += inPkts;
      st[Stat.INBYTES]! += inBytes;
      st[Stat.OUTPKTS]! += outPkts;
      st[Stat.OUTBYTES]! += outBytes;
    }
  }

  /**
   * What the kernel forwarded for offloaded connection c since the last report (the data path
   * calls this before each tick): counted as IPVS counts packets, and the connection's timer
   * restarted from its last packet (`lastSeenMs`, the caller's clock; -1 if unknown).
   */
  offloadActivity(c: number, inPkts: number, inBytes: number, outPkts: number, outBytes: number, lastSeenMs: number): void {
    const conns = this.conns;
    if ((conns.flags(c) & (ConnFlag.LIVE | ConnFlag.OFFLOADED)) !== (ConnFlag.LIVE | ConnFlag.OFFLOADED)) return;
    this.#countOffloaded(c, inPkts, inBytes, outPkts, outBytes);
    this.#restartFrom(c, lastSeenMs);
  }

  /** Take every connection back from the kernel fast path (before a configuration change). */
  withdrawAll(): number {
    if (this.offload === null) return 0;
    let n = 0;
    this.conns.forEach((i) => {
      if ((this.conns.flags(i) & ConnFlag.OFFLOADED) !== 0) {
        this.#withdraw(i);
        n++;
      }
    });
    return n;
  }

  /** Count one packet of `bytes` on the server, its service and the totals (ip_vs_in/out_stats). */
  #account(d: RealServer, pkts: number, octets: number, bytes: number): void {
    const ds = d.stats.c;
    const ss = d.svc.stats.c;
    const gs = this.stats.c;
    ds[pkts]!++;
    ds[octets]! += bytes;
    ss[pkts]!++;
    ss[octets]! += bytes;
    gs[pkts]!++;
    gs[octets]! += bytes;
  }

  /** set_tcp_state: next state from the table, active/inactive accounting (spec §3.5).
   *  Returns the new state's timeout in ticks. */
  #tcpTransition(c: number, dir: number, tflags: number, d: RealServer): number {
    const conns = this.conns;
    const cur = conns.state(c);
    const ev = tcpEvent(tflags);
    const table = this.sysctl.secureTcp ? TCP_TABLE_SECURE : TCP_TABLE_NORMAL;
    const next = ev < 0 ? TcpState.CLOSE : table[(dir * 4 + ev) * TCP_STATE_COUNT + cur]!;
    if (next !== cur) {
      if ((conns.flags(c) & ConnFlag.OFFLOADED) !== 0) this.#withdraw(c); // left ESTABLISHED
      const f = conns.flags(c);
      if ((f & ConnFlag.INACTIVE) === 0) {
        if (!tcpStateIsActive(next)) {
          d.activeConns--;
          d.inactConns++;
          conns.setFlags(c, f | ConnFlag.INACTIVE);
        }
      } else if (tcpStateIsActive(next)) {
        d.activeConns++;
        d.inactConns--;
        conns.setFlags(c, f & ~ConnFlag.INACTIVE);
      }
      if (next === TcpState.ESTABLISHED) {
        const t = conns.ctl[c]!;
        if (t >= 0) conns.setFlags(t, conns.flags(t) | ConnFlag.ASSURED);
      }
      conns.setState(c, next);
    }
    return this.#tcpTimeoutTicks[next]!;
  }

  #newFlow(
    svc: VirtualService,
    buf: Buffer,
    off: number,
    l4off: number,
    l4len: number,
    proto: number,
    saddr: number,
    sport: number,
    daddr: number,
    dport: number,
    tflags: number,
    total: number,
    partial: boolean,
  ): VerdictCode {
    // tcp_conn_schedule: only a SYN (any segment with sloppy_tcp), never an RST, opens a conn.
    if (proto === IPPROTO_TCP && ((tflags & TcpFlag.RST) !== 0 || ((tflags & TcpFlag.SYN) === 0 && !this.sysctl.sloppyTcp)))
      return this.#out(Outcome.PassNoConn);
    const ctx = this.#ctx;
    ctx.proto = proto;
    ctx.caddr = saddr;
    ctx.cport = sport;
    ctx.vaddr = daddr;
    ctx.vport = dport;
    ctx.now = this.#nowMs;
    ctx.dryRun = false;
    const c = svc.persistent ? this.#schedulePersistent(svc, ctx) : this.#schedule(svc, ctx);
    if (c === NO_DEST) return this.#noDest(buf, off, total);
    if (c === TABLE_FULL) return this.#out(Outcome.DropConnTableFull);
    return this.#forwardIn(c, buf, off, l4off, l4len, proto, tflags, total, partial);
  }

  #schedule(svc: VirtualService, ctx: SchedContext): number {
    const d = svc.sched!.pick(svc, ctx);
    if (d === null) return NO_DEST;
    const flags = (svc.flags & SvcFlag.ONEPACKET) !== 0 && ctx.proto === IPPROTO_UDP ? ConnFlag.ONE_PACKET : 0;
    return this.#newConn(d, ctx, d.port !== 0 ? d.port : ctx.vport, flags, -1);
  }

  /** ip_vs_sched_persist (spec §2.5). */
  #schedulePersistent(svc: VirtualService, ctx: SchedContext): number {
    const conns = this.conns;
    const snet = ctx.caddr & svc.netmask; // int32
    const portMatch = ctx.vport === svc.port;
    const tvport = portMatch && svc.port !== FTP_PORT ? ctx.vport : 0;
    let t = conns.findTemplate(ctx.proto, snet, ctx.vaddr, tvport);
    let d: RealServer;
    if (t >= 0 && this.#templateUsable(t)) {
      d = this.#destById[conns.dest(t)]!;
    } else {
      if (t >= 0 && conns.vport(t) !== 0xffff) {
        conns.setPorts(t, 0xffff, 0xffff); // invalidate: it can never match again
        this.events[Event.TemplatesInvalidated]!++;
      }
      const p = svc.sched!.pick(svc, ctx);
      if (p === null) return NO_DEST;
      d = p;
      const tdport = portMatch && svc.port !== FTP_PORT ? d.port : 0;
      t = conns.insert(ctx.proto, snet, 0, ctx.vaddr, tvport, d.addr, tdport, d.id, ConnFlag.TEMPLATE, this.#nowTick + svc.timeout * TICKS_PER_SEC, this.#nowTick);
      if (t < 0) return TABLE_FULL;
      d.persistConns++;
      this.#checkOverload(d);
      this.events[Event.TemplatesCreated]!++;
    }
    const dport = portMatch && d.port !== 0 ? d.port : ctx.vport;
    const flags = (svc.flags & SvcFlag.ONEPACKET) !== 0 && ctx.proto === IPPROTO_UDP ? ConnFlag.ONE_PACKET : 0;
    const c = this.#newConn(d, ctx, dport, flags, t);
    // ip_vs_conn_put(template): every use restarts the template's timer.
    conns.rearm(t, this.#nowTick + this.#templateTimeoutTicks(t));
    return c;
  }

  /** ip_vs_check_template: the template's server still takes connections. */
  #templateUsable(t: number): boolean {
    const d = this.#destById[this.conns.dest(t)];
    if (!d || !d.available) return false;
    return !(this.sysctl.expireQuiescentTemplate && d.weight === 0);
  }

  #templateTimeoutTicks(t: number): number {
    if ((this.conns.flags(t) & ConnFlag.EXPIRE_LATER) !== 0) return EXPIRE_LATER_S * TICKS_PER_SEC;
    return this.#destById[this.conns.dest(t)]!.svc.timeout * TICKS_PER_SEC;
  }

  /** ip_vs_conn_new + ip_vs_bind_dest + ip_vs_conn_stats. */
  #newConn(d: RealServer, ctx: SchedContext, dport: number, flags: number, template: number): number {
    const conns = this.conns;
    const c = conns.insert(ctx.proto, ctx.caddr, ctx.cport, ctx.vaddr, ctx.vport, d.addr, dport, d.id, ConnFlag.INACTIVE | flags, this.#nowTick + NEW_CONN_TIMEOUT_S * TICKS_PER_SEC, this.#nowTick);
    if (c < 0) return TABLE_FULL;
    d.inactConns++;
    this.#checkOverload(d);
    d.stats.c[Stat.CONNS]!++;
    d.svc.stats.c[Stat.CONNS]!++;
    this.stats.c[Stat.CONNS]!++;
    if (template >= 0) {
      conns.ctl[c] = template;
      conns.ctl[template]!++;
    }
    this.events[Event.ConnsCreated]!++;
    return c;
  }

  #checkOverload(d: RealServer): void {
    if (d.uThreshold !== 0 && d.activeConns + d.inactConns >= d.uThreshold) d.overloaded = true;
  }

  /** No usable real server: ICMP port unreachable to the client (ip_vs_leave), rate limited. */
  #noDest(buf: Buffer, off: number, total: number): VerdictCode {
    this.events[Event.NoDest]!++;
    const elapsed = this.#nowMs - this.#icmpLastMs;
    this.#icmpLastMs = this.#nowMs;
    if (elapsed > 0) this.#icmpTokens = Math.min(ICMP_BURST, this.#icmpTokens + (elapsed * ICMP_PER_SEC) / 1000);
    if (this.#icmpTokens < 1) return this.#out(Outcome.DropIcmpRateLimited);
    this.#icmpTokens -= 1;
    this.icmpLen = buildIcmpUnreach(this.icmpOut, buf, off, total, IcmpUnreachCode.PORT, this.#icmpId++);
    return this.#out(Outcome.IcmpUnreachSent);
  }

  /** ICMP errors quoting a tracked connection are translated; everything else passes. */
  #processIcmp(buf: Buffer, off: number, l4off: number, l4len: number, total: number): VerdictCode {
    if (l4len < 8) return this.#out(Outcome.DropIcmpMalformed);
    if (!isTranslatedIcmpError(buf[l4off]!)) return this.#out(Outcome.PassIcmp);
    const eOff = l4off + 8;
    const eAvail = l4len - 8;
    if (eAvail < 20 || buf[eOff]! >>> 4 !== 4) return this.#out(Outcome.PassIcmp);
    const eHl = (buf[eOff]! & 15) << 2;
    if (eHl < 20 || eAvail < eHl + 4) return this.#out(Outcome.PassIcmp);
    const eproto = buf[eOff + IPV4.PROTOCOL]!;
    if (eproto !== IPPROTO_TCP && eproto !== IPPROTO_UDP) return this.#out(Outcome.PassIcmp);
    if ((readU16(buf, eOff + IPV4.FLAGS_FRAG) & 0x1fff) !== 0) return this.#out(Outcome.PassIcmp);
    const esrc = readI32(buf, eOff + IPV4.SRC);
    const edst = readI32(buf, eOff + IPV4.DST);
    const esport = readU16(buf, eOff + eHl);
    const edport = readU16(buf, eOff + eHl + 2);
    const conns = this.conns;
    // From the real-server side: it quotes client -> RIP:rport.
    let c = conns.findOut(eproto, esrc, esport, edst, edport);
    if (c >= 0) {
      this.#account(this.#destById[conns.dest(c)]!, Stat.OUTPKTS, Stat.OUTBYTES, total);
      icmpTranslate(buf, off, l4off, l4len, eOff, eHl, true, conns.vaddr(c), conns.vport(c));
      this.lastConn = c;
      return this.#out(Outcome.ForwardIcmpOut);
    }
    // From the client side: it quotes VIP:vport -> client.
    c = conns.findIn(eproto, edst, edport, esrc, esport);
    if (c >= 0) {
      const d = this.#destById[conns.dest(c)]!;
      if (!d.available) return this.#out(Outcome.DropDestUnavailable);
      this.#account(d, Stat.INPKTS, Stat.INBYTES, total);
      icmpTranslate(buf, off, l4off, l4len, eOff, eHl, false, conns.daddr(c), conns.dport(c));
      this.lastConn = c;
      return this.#out(Outcome.ForwardIcmpIn);
    }
    return this.#out(Outcome.PassIcmp);
  }

  // ---------------------------------------------------------------------------------------------
  // Expiry

  /**
   * Advance time: expire connections whose timers ran out, run the rate estimator every 2 s,
   * let schedulers do housekeeping, free unreferenced deleted servers. Call every ~100-1000 ms.
   */
  tick(now: number): void {
    this.#nowMs = now;
    this.#nowTick = Math.floor(now / TICK_MS);
    this.conns.advance(this.#nowTick, this.#onDue);
    if (this.#lastEstimateMs === 0 || now < this.#lastEstimateMs) this.#lastEstimateMs = now;
    for (let k = 0; k < 8 && now - this.#lastEstimateMs >= ESTIMATOR_PERIOD_MS; k++) {
      this.#lastEstimateMs += ESTIMATOR_PERIOD_MS;
      this.stats.estimate();
      for (const s of this.#services) {
        s.stats.estimate();
        for (const d of s.dests) d.stats.estimate();
      }
    }
    if (now - this.#lastEstimateMs >= ESTIMATOR_PERIOD_MS) this.#lastEstimateMs = now;
    for (const s of this.#services) s.sched?.tick?.(now);
  }

  /** Timer expiry of entry i (ip_vs_conn_expire). */
  #expire(i: number): void {
    const conns = this.conns;
    if ((conns.flags(i) & ConnFlag.OFFLOADED) !== 0) {
      // The kernel may have forwarded packets since its last report: take the connection back
      // (which restarts the timer from its last packet) and keep it if it is still in use.
      this.#withdraw(i);
      if (conns.expires(i) > this.#nowTick) return;
    }
    const f = conns.flags(i);
    if ((f & ConnFlag.TEMPLATE) !== 0 && conns.ctl[i]! > 0) {
      // still controls connections: keep it, look again in 60 s
      conns.setFlags(i, f | ConnFlag.EXPIRE_LATER);
      conns.rearm(i, this.#nowTick + EXPIRE_LATER_S * TICKS_PER_SEC);
      return;
    }
    this.#unlink(i);
  }

  /** Remove entry i: detach from its template, unbind from its server, free the slot. */
  #unlink(i: number): void {
    const conns = this.conns;
    const f = conns.flags(i);
    if ((f & ConnFlag.OFFLOADED) !== 0) this.#withdraw(i);
    const d = this.#destById[conns.dest(i)]!;
    if ((f & ConnFlag.TEMPLATE) !== 0) {
      d.persistConns--;
      this.events[Event.TemplatesExpired]!++;
    } else {
      const t = conns.ctl[i]!;
      if (t >= 0) conns.ctl[t]!--;
      if ((f & ConnFlag.INACTIVE) !== 0) d.inactConns--;
      else d.activeConns--;
      this.events[Event.ConnsExpired]!++;
    }
    // ip_vs_unbind_dest: clear the overload flag once below the low-water mark.
    const n = d.activeConns + d.inactConns;
    if (d.lThreshold !== 0) {
      if (n < d.lThreshold) d.overloaded = false;
    } else if (d.uThreshold !== 0) {
      if (n * 4 < d.uThreshold * 3) d.overloaded = false;
    } else d.overloaded = false;
    conns.remove(i);
    if (!d.available && d.refs === 0) this.#releaseDest(d);
  }

  // ---------------------------------------------------------------------------------------------
  // Control plane: services

  get services(): readonly VirtualService[] {
    return this.#services;
  }

  getService(k: ServiceKey): VirtualService | null {
    return this.#index.get(k.proto, k.addr, k.port);
  }

  addService(spec: ServiceSpec): VirtualService {
    const v = this.#validateService(spec);
    if (this.getService(spec) !== null) throw errors.serviceExists();
    const svc = new VirtualService(spec.proto, spec.addr, spec.port, v.scheduler);
    svc.flags = v.flags;
    svc.timeout = v.timeout;
    svc.netmask = v.netmask;
    svc.stateSlot = v.stateSlot;
    svc.sched = v.factory(svc, this.#schedEnv);
    this.#services = [...this.#services, svc];
    this.#index = new ServiceIndex(this.#services);
    return svc;
  }

  /** ipvsadm -E: replaces scheduler, flags, timeout and netmask (what is not given resets). */
  editService(spec: ServiceSpec): VirtualService {
    const svc = this.getService(spec);
    if (svc === null) throw errors.noService();
    const v = this.#validateService(spec);
    if (v.scheduler !== svc.schedName) {
      svc.sched?.done?.();
      svc.schedName = v.scheduler;
      svc.stateSlot = v.stateSlot;
      svc.sched = v.factory(svc, this.#schedEnv);
    }
    svc.flags = v.flags;
    svc.timeout = v.timeout;
    svc.netmask = v.netmask;
    return svc;
  }

  deleteService(k: ServiceKey): void {
    const svc = this.getService(k);
    if (svc === null) throw errors.noService();
    this.#dropService(svc);
    this.#services = this.#services.filter((s) => s !== svc);
    this.#index = new ServiceIndex(this.#services);
  }

  /** ipvsadm -C: delete every service (connections stay and expire; their packets drop). */
  clear(): void {
    for (const s of this.#services) this.#dropService(s);
    this.#services = [];
    this.#index = new ServiceIndex([]);
  }

  #dropService(svc: VirtualService): void {
    svc.sched?.done?.();
    svc.sched = null;
    for (const d of svc.dests) this.#retireDest(d);
    svc.dests = [];
  }

  #validateService(spec: ServiceSpec) {
    const isInt = (x: unknown, lo: number, hi: number) => typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi;
    if (spec.proto !== IPPROTO_TCP && spec.proto !== IPPROTO_UDP)
      throw spec.proto === 132 ? errors.notSupported('SCTP') : errors.invalid(`protocol ${String(spec.proto)}`);
    if (!isInt(spec.addr, 0, 0xffffffff)) throw errors.invalid('virtual address');
    if (!isInt(spec.port, 0, 65535)) throw errors.invalid('virtual port');
    const persistent = spec.persistent ?? 0;
    if (!isInt(persistent, 0, MAX_TIMEOUT_S)) throw errors.invalid('persistence timeout must be 1..2678400 seconds');
    if (spec.port === 0 && persistent === 0) throw new IpvsError('EINVAL', 'Zero port specified for non-persistent service');
    const netmask = spec.netmask ?? 0xffffffff;
    if (!isInt(netmask, 0, 0xffffffff)) throw errors.invalid('netmask');
    const schedFlags = spec.schedFlags ?? 0;
    if (!isInt(schedFlags, 0, 0xffff) || (schedFlags & ~SVC_SCHED_FLAGS) !== 0) throw errors.invalid('scheduler flags');
    if (spec.ops && spec.proto !== IPPROTO_UDP) throw new IpvsError('EINVAL', 'One-Packet Scheduling is only for UDP virtual services');
    const scheduler = spec.scheduler ?? 'wlc';
    if (typeof scheduler !== 'string' || scheduler.length > 15) throw errors.schedNotFound();
    const factory = this.#registry.get(scheduler);
    if (!factory) throw errors.schedNotFound();
    let stateSlot = -1;
    if (this.#sharedSlots > 0 && spec.stateSlot !== undefined) {
      if (!isInt(spec.stateSlot, 0, this.#sharedSlots - 1)) throw errors.invalid('scheduler state slot');
      stateSlot = spec.stateSlot;
    }
    let flags = schedFlags;
    if (persistent > 0) flags |= SvcFlag.PERSISTENT;
    if (spec.ops) flags |= SvcFlag.ONEPACKET;
    return { scheduler, factory, flags, timeout: persistent, netmask: netmask >>> 0, stateSlot };
  }

  // ---------------------------------------------------------------------------------------------
  // Control plane: real servers

  addDest(k: ServiceKey, spec: DestSpec): RealServer {
    const svc = this.getService(k);
    if (svc === null) throw errors.serviceNotDefined();
    const v = this.#validateDest(spec);
    if (svc.dests.some((d) => d.addr === spec.addr && d.port === spec.port)) throw errors.destExists();
    const ti = this.#trash.findIndex(
      (d) => d.addr === spec.addr && d.port === spec.port && d.svc.proto === svc.proto && d.svc.addr === svc.addr && d.svc.port === svc.port,
    );
    let d: RealServer;
    if (ti >= 0) {
      // Re-adding a deleted server revives it with its counters (ip_vs_trash_get_dest).
      d = this.#trash[ti]!;
      this.#trash = this.#trash.filter((_, j) => j !== ti);
      d.svc = svc;
      d.available = true;
    } else {
      const id = this.#freeIds.pop();
      if (id === undefined) throw errors.tooMany(`too many real servers (at most ${MAX_DEST_ID})`);
      d = new RealServer(id, svc, spec.addr, spec.port);
      d.lastWeight = 0;
      this.#destById[id] = d;
    }
    this.#applyDest(d, v);
    svc.dests = [d, ...svc.dests];
    svc.sched?.onDestAdded?.(svc, d);
    return d;
  }

  /** ipvsadm -e: replaces weight, thresholds and method. */
  editDest(k: ServiceKey, spec: DestSpec): RealServer {
    const svc = this.getService(k);
    if (svc === null) throw errors.serviceNotDefined();
    const v = this.#validateDest(spec);
    const d = svc.dests.find((x) => x.addr === spec.addr && x.port === spec.port);
    if (!d) throw errors.noDest();
    this.#applyDest(d, v);
    svc.sched?.onDestUpdated?.(svc, d);
    return d;
  }

  deleteDest(k: ServiceKey, addr: number, port: number): void {
    const svc = this.getService(k);
    if (svc === null) throw errors.serviceNotDefined();
    const idx = svc.dests.findIndex((x) => x.addr === addr && x.port === port);
    if (idx < 0) throw errors.noDest();
    const d = svc.dests[idx]!;
    svc.dests = svc.dests.filter((x) => x !== d);
    svc.sched?.onDestRemoved?.(svc, d, idx);
    this.#retireDest(d);
  }

  #validateDest(spec: DestSpec) {
    const isInt = (x: unknown, lo: number, hi: number) => typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi;
    if (!isInt(spec.addr, 1, 0xffffffff)) throw errors.invalid('real server address');
    const a = spec.addr >>> 0;
    if (a >>> 28 >= 0xe || a === 0xffffffff) throw errors.invalid('real server address is not unicast');
    if (!isInt(spec.port, 0, 65535)) throw errors.invalid('real server port');
    const weight = spec.weight ?? 1;
    if (!isInt(weight, 0, 65535)) throw errors.range('weight must be 0..65535');
    const fwd = spec.fwd ?? Fwd.MASQ;
    if (fwd !== Fwd.MASQ) {
      if (fwd === Fwd.DROUTE) throw errors.notSupported('Direct routing (-g, the method when none is given; use -m)');
      if (fwd === Fwd.TUNNEL) throw errors.notSupported('IP-in-IP tunnelling (-i; use -m)');
      throw errors.invalid('forwarding method');
    }
    const u = spec.uThreshold ?? 0;
    const l = spec.lThreshold ?? 0;
    if (!isInt(u, 0, 0x7fffffff) || !isInt(l, 0, 0x7fffffff)) throw errors.range('thresholds must be 0..2147483647');
    if (l > u) throw errors.range('lower threshold above upper threshold');
    return { weight, fwd, u, l };
  }

  /** __ip_vs_update_dest */
  #applyDest(d: RealServer, v: { weight: number; fwd: number; u: number; l: number }): void {
    d.fwd = v.fwd;
    d.weight = v.weight;
    if (v.weight > 0) d.lastWeight = v.weight;
    if (v.u === 0 || v.u > d.uThreshold) d.overloaded = false;
    d.uThreshold = v.u;
    d.lThreshold = v.l;
  }

  /** A server leaves its service: free it now, or keep it in the trash while referenced. */
  #retireDest(d: RealServer): void {
    d.available = false;
    if (d.refs === 0) this.#releaseDest(d);
    else this.#trash = [...this.#trash, d];
  }

  #releaseDest(d: RealServer): void {
    this.#trash = this.#trash.filter((x) => x !== d);
    if (this.#destById[d.id] === d) {
      this.#destById[d.id] = null;
      this.#freeIds.push(d.id);
    }
  }

  /** Deleted servers still referenced by connections. */
  get trash(): readonly RealServer[] {
    return this.#trash;
  }

  // ---------------------------------------------------------------------------------------------
  // Control plane: timeouts, counters, listings

  /** ipvsadm --set tcp tcpfin udp (seconds; 0 leaves a value unchanged). */
  setTimeouts(t: Partial<Timeouts>): void {
    for (const [k, x] of Object.entries(t)) {
      if (!['tcp', 'tcpfin', 'udp'].includes(k)) throw errors.invalid(`unknown timeout ${k}`);
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > MAX_TIMEOUT_S) throw errors.invalid(`timeout ${k} must be 0..${MAX_TIMEOUT_S}`);
    }
    if (t.tcp) this.#tcpTimeouts[TcpState.ESTABLISHED] = t.tcp;
    if (t.tcpfin) this.#tcpTimeouts[TcpState.FIN_WAIT] = t.tcpfin;
    if (t.udp) this.#udpTimeout = t.udp;
    this.#recomputeTimeoutTicks();
  }

  get timeouts(): Timeouts {
    return { tcp: this.#tcpTimeouts[TcpState.ESTABLISHED]!, tcpfin: this.#tcpTimeouts[TcpState.FIN_WAIT]!, udp: this.#udpTimeout };
  }

  #recomputeTimeoutTicks(): void {
    for (let s = 0; s < TCP_STATE_COUNT; s++) this.#tcpTimeoutTicks[s] = this.#tcpTimeouts[s]! * TICKS_PER_SEC;
    this.#udpTimeoutTicks = this.#udpTimeout * TICKS_PER_SEC;
  }

  /** ipvsadm -Z: zero the counters of one service (and its servers), or of everything. */
  zero(k?: ServiceKey): void {
    const list = k === undefined ? this.#services : [this.getService(k)];
    if (list[0] === null) throw errors.noService();
    for (const s of list as VirtualService[]) {
      s.stats.zero();
      for (const d of s.dests) d.stats.zero();
    }
    if (k === undefined) this.stats.zero();
  }

  /** Snapshot of the connection table (ipvsadm -L -c). */
  connections(now: number): ConnInfo[] {
    const c = this.conns;
    const out: ConnInfo[] = [];
    const nowTick = Math.floor(now / TICK_MS);
    c.forEach((i) => {
      const template = (c.flags(i) & ConnFlag.TEMPLATE) !== 0;
      const state = template
        ? (c.flags(i) & ConnFlag.ASSURED) !== 0
          ? 'ASSURED'
          : 'NONE'
        : c.proto(i) === IPPROTO_UDP
          ? UDP_STATE_NAME
          : TCP_STATE_NAMES[c.state(i)]!;
      out.push({
        proto: c.proto(i),
        template,
        caddr: c.caddr(i) >>> 0,
        cport: c.cport(i),
        vaddr: c.vaddr(i) >>> 0,
        vport: c.vport(i),
        daddr: c.daddr(i) >>> 0,
        dport: c.dport(i),
        state,
        expiresInMs: Math.max(0, (c.expires(i) - nowTick) * TICK_MS),
      });
    });
    return out;
  }

  /** Services, servers and their counters as plain data. */
  snapshot(): DirectorSnapshot {
    return {
      buckets: this.conns.bucketCount,
      connections: this.conns.count,
      capacity: this.conns.capacity,
      totals: statsOf(this.stats),
      services: this.#services.map((s) => ({
        proto: s.proto,
        addr: s.addr,
        port: s.port,
        scheduler: s.schedName,
        flags: s.flags,
        timeout: s.timeout,
        netmask: s.netmask >>> 0,
        ...statsOf(s.stats),
        dests: s.dests.map((d) => ({
          addr: d.addr,
          port: d.port,
          fwd: d.fwd,
          weight: d.weight,
          uThreshold: d.uThreshold,
          lThreshold: d.lThreshold,
          activeConns: d.activeConns,
          inactConns: d.inactConns,
          persistConns: d.persistConns,
          ...statsOf(d.stats),
        })),
      })),
    };
  }

  /** Counters by name (outcomes and events), for metrics and tests. */
  counters(): Record<string, number> {
    const r: Record<string, number> = {};
    OUTCOME_NAMES.forEach((n, i) => (r[n] = this.outcomes[i]!));
    EVENT_NAMES.forEach((n, i) => (r[n] = this.events[i]!));
    return r;
  }

  // ---------------------------------------------------------------------------------------------
  // explain: which server would this flow get, and why. Commits nothing.

  explain(q: FlowQuery, now: number): Explanation {
    const conns = this.conns;
    const fmt = (a: number, p: number) => `${formatIPv4(a)}:${p}`;
    const c = conns.findIn(q.proto, q.caddr, q.cport, q.vaddr, q.vport);
    const syn = q.syn ?? true;
    if (c >= 0) {
      const d = this.#destById[conns.dest(c)]!;
      const state = q.proto === IPPROTO_TCP ? TCP_STATE_NAMES[conns.state(c)]! : UDP_STATE_NAME;
      const reuse = q.proto === IPPROTO_TCP && syn && this.sysctl.connReuseMode !== 0 && this.#newConnExpected(c);
      if (!reuse) {
        if (!d.available && !this.sysctl.expireNodestConn)
          return { verdict: 'drop', path: 'dest-unavailable', dest: fmt(d.addr, d.port), reason: `existing connection (${state}) points to deleted server ${fmt(d.addr, d.port)}; its packets are dropped (expire_nodest_conn=0)` };
        if (d.available)
          return { verdict: 'forward', path: 'connection', service: serviceLabel(d.svc), dest: fmt(conns.daddr(c) >>> 0, conns.dport(c)), reason: `existing connection in state ${state}` };
      }
    }
    const svc = this.#index.find(q.proto, q.vaddr, q.vport);
    if (svc === null) return { verdict: 'pass', path: 'no-service', reason: `no virtual service for ${serviceLabel({ proto: q.proto, addr: q.vaddr, port: q.vport })}; the packet goes to the host stack` };
    if (q.proto === IPPROTO_TCP && !syn && !this.sysctl.sloppyTcp)
      return { verdict: 'pass', path: 'not-syn', service: serviceLabel(svc), reason: 'TCP segment without SYN and no connection: not scheduled (sloppy_tcp=0)' };
    const servers = svc.dests.map((d) => ({ server: fmt(d.addr, d.port), weight: d.weight, active: d.activeConns, inactive: d.inactConns, overloaded: d.overloaded }));
    const base = { service: serviceLabel(svc), scheduler: svc.schedName, servers };
    if (svc.persistent) {
      const snet = q.caddr & svc.netmask;
      const tvport = q.vport === svc.port && svc.port !== FTP_PORT ? q.vport : 0;
      const t = conns.findTemplate(q.proto, snet, q.vaddr, tvport);
      if (t >= 0 && this.#templateUsable(t)) {
        const d = this.#destById[conns.dest(t)]!;
        return { verdict: 'forward', path: 'template', ...base, dest: fmt(d.addr, d.port), reason: `persistence template for ${formatIPv4(snet >>> 0)} (timeout ${svc.timeout} s) points to ${fmt(d.addr, d.port)}` };
      }
    }
    // the same int32 address form the packet path gives schedulers (lblc keys on it)
    const ctx: SchedContext = { proto: q.proto, caddr: q.caddr | 0, cport: q.cport, vaddr: q.vaddr | 0, vport: q.vport, now, dryRun: true };
    const d = svc.sched!.pick(svc, ctx);
    if (d === null)
      return { verdict: 'icmp', path: 'no-destination', ...base, reason: `${svc.schedName} found no usable server (all quiesced, overloaded or none): the client gets ICMP port unreachable` };
    return { verdict: 'forward', path: 'scheduler', ...base, dest: fmt(d.addr, d.port !== 0 ? d.port : q.vport), reason: `new connection: ${svc.schedName} picks ${fmt(d.addr, d.port)} (${FWD_NAMES[d.fwd]}, weight ${d.weight})` };
  }
}
