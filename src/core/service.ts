/**
 * Virtual services and real servers (ipvs-spec §1). Built and mutated by the control plane
 * (Director's control methods); the packet path only reads them and updates counters.
 */
import { Stats } from './stats.js';

/** Service flags (uapi ip_vs.h). */
export const SvcFlag = {
  PERSISTENT: 0x0001,
  ONEPACKET: 0x0004,
  SCHED1: 0x0008,
  SCHED2: 0x0010,
  SCHED3: 0x0020,
} as const;
export const SVC_SCHED_FLAGS = SvcFlag.SCHED1 | SvcFlag.SCHED2 | SvcFlag.SCHED3;
/** ulvs's own service flag, not IPVS's (no uapi bit; never in sync messages): scheduler flag
 *  `ulvs-exact`, the service keeps the exact user-space path when the kernel fast path could set
 *  its connections up itself (docs/kernel-setup.md "Selecting the exact path"). */
export const ULVS_EXACT = 0x8000;
/** Every bit a service spec's schedFlags may carry. */
export const SPEC_SCHED_FLAGS = SVC_SCHED_FLAGS | ULVS_EXACT;
/** ipvsadm's scheduler-flag names (-b) and the bits they set; sh and mh give flags 1-2 names. */
export const SCHED_FLAG_BITS: Readonly<Record<string, number>> = {
  'flag-1': SvcFlag.SCHED1,
  'flag-2': SvcFlag.SCHED2,
  'flag-3': SvcFlag.SCHED3,
  'sh-fallback': SvcFlag.SCHED1,
  'sh-port': SvcFlag.SCHED2,
  'mh-fallback': SvcFlag.SCHED1,
  'mh-port': SvcFlag.SCHED2,
  'ulvs-exact': ULVS_EXACT,
};
/** The bit a scheduler-flag name sets, or undefined (own names only: not `toString` and kin). */
export const schedFlagBit = (name: string): number | undefined => (Object.hasOwn(SCHED_FLAG_BITS, name) ? SCHED_FLAG_BITS[name] : undefined);
/** The names ipvsadm shows for a service's scheduler-flag bits, in bit order (ulvs-exact last). */
export function schedFlagNames(scheduler: string, flags: number): string[] {
  const names = scheduler === 'sh' || scheduler === 'mh' ? [`${scheduler}-fallback`, `${scheduler}-port`, 'flag-3'] : ['flag-1', 'flag-2', 'flag-3'];
  return [SvcFlag.SCHED1, SvcFlag.SCHED2, SvcFlag.SCHED3, ULVS_EXACT].flatMap((bit, i) => (flags & bit ? [names[i] ?? 'ulvs-exact'] : []));
}

/** Forwarding methods (conn_flags & 7): masquerading (NAT), tunnelling, direct routing.
 *  LOCALNODE is IPVS's "the real server is this host"; ulvs does not implement it. */
export const Fwd = { MASQ: 0, LOCALNODE: 1, TUNNEL: 2, DROUTE: 3 } as const;
export const FWD_NAMES = ['Masq', 'Local', 'Tunnel', 'Route'] as const;
/** Tunnel types of a tunnelling server (IP_VS_CONN_F_TUNNEL_TYPE_*) and ipvsadm's names. */
export const TunType = { IPIP: 0, GUE: 1, GRE: 2 } as const;
export const TUN_TYPE_NAMES = ['ipip', 'gue', 'gre'] as const;
/** Checksum mode of a GUE/GRE tunnel (IP_VS_TUNNEL_ENCAP_FLAG_*: 0 none, 1 csum, 2 remcsum). */
export const TunFlags = { NOCSUM: 0, CSUM: 1, REMCSUM: 2 } as const;
export const TUN_FLAG_NAMES = ['nocsum', 'csum', 'remcsum'] as const;

export class RealServer {
  /** small integer id stored in the connection table (1..65535; 0 = none) */
  id: number;
  /** its place in the order servers were added to its service (1, 2, ...): the same in every
   *  engine of a director, which all apply the same operations in the same order (rr's shared
   *  cursor names a server by it) */
  seq = 0;
  svc: VirtualService;
  readonly addr: number;
  readonly port: number;
  fwd: number = Fwd.MASQ;
  /** Fwd.TUNNEL: TunType, the GUE destination port (0 otherwise), TunFlags */
  tunType = 0;
  tunPort = 0;
  tunFlags = 0;
  /** 0..65535; 0 = quiesced (no new connections) */
  weight = 1;
  /** last non-zero weight (mh builds its table from it) */
  lastWeight = 1;
  /** connection thresholds, 0 = unset */
  uThreshold = 0;
  lThreshold = 0;
  /** linked to a service (false once deleted: in the trash while connections reference it) */
  available = true;
  /** IP_VS_DEST_F_OVERLOAD */
  overloaded = false;
  activeConns = 0;
  inactConns = 0;
  /** persistence templates bound to this server */
  persistConns = 0;
  /** masqueraded TCP connections whose client sent its SYN again before any packet of the real
   *  server came back through the director (proto/tcp.ts): the server does not answer through
   *  the director (its default gateway is not the DIP, or the client is on its segment). ulvs's
   *  own counter, not IPVS's; not carried over a restart */
  unanswered = 0;
  readonly stats = new Stats();

  constructor(id: number, svc: VirtualService, addr: number, port: number) {
    this.id = id;
    this.svc = svc;
    this.addr = addr;
    this.port = port;
  }

  /** connections + templates that still point here */
  get refs(): number {
    return this.activeConns + this.inactConns + this.persistConns;
  }
}

export class VirtualService {
  readonly proto: number;
  readonly addr: number;
  readonly port: number;
  schedName: string;
  sched: Scheduler | null = null;
  /** SvcFlag bits */
  flags = 0;
  /** persistence timeout, seconds (meaningful when flags has PERSISTENT) */
  timeout = 0;
  /** persistence granularity mask (IPv4) */
  netmask = 0xffffffff;
  /** real servers in kernel list order: most recently added first */
  dests: RealServer[] = [];
  /** scheduler state slot shared between engines (sched-state.ts); -1 = private */
  stateSlot = -1;
  /** servers added so far (RealServer.seq of the last) */
  added = 0;
  readonly stats = new Stats();

  constructor(proto: number, addr: number, port: number, schedName: string) {
    this.proto = proto;
    this.addr = addr;
    this.port = port;
    this.schedName = schedName;
  }

  get persistent(): boolean {
    return (this.flags & SvcFlag.PERSISTENT) !== 0;
  }

  /** the firewall mark of a fwmark service (ipvsadm -f), 0 for an address service */
  get fwmark(): number {
    return this.proto === FWMARK_PROTO ? this.addr >>> 0 : 0;
  }
}

/**
 * Identity of a service: protocol, VIP, port. A firewall-mark service (ipvsadm -f MARK) is the
 * key <FWMARK_PROTO, MARK, 0>: protocol 0 (IPPROTO_IP, the protocol IPVS gives a fwmark
 * service's persistence templates, whose virtual address is the mark: ip_vs_sched_persist)
 * never names an address service (TCP and UDP only), so the two kinds share one key space and
 * every table keyed by service (rules, diffs, operations) carries fwmark services unchanged.
 */
export interface ServiceKey {
  proto: number;
  addr: number;
  port: number;
}

/** The protocol of a firewall-mark service's key (IPPROTO_IP). */
export const FWMARK_PROTO = 0;
/** The largest mark: the packet mark is a u32 (skb->mark). */
export const FWMARK_MAX = 0xffffffff;
export const isFwmarkKey = (k: { proto: number }): boolean => k.proto === FWMARK_PROTO;
/** The key of the fwmark service for `mark` (1..FWMARK_MAX). */
export const fwmarkKey = (mark: number): ServiceKey => ({ proto: FWMARK_PROTO, addr: mark >>> 0, port: 0 });

export function serviceKeyOf(s: VirtualService): ServiceKey {
  return { proto: s.proto, addr: s.addr, port: s.port };
}

/** The flow being scheduled. One instance is reused by the director for every pick.
 *  Addresses are int32 (uint32 `| 0`, see wire/ipv4.ts readI32); hash with Math.imul / `>>> 0`. */
export interface SchedContext {
  proto: number;
  /** client address / port (packet source) */
  caddr: number;
  cport: number;
  /** virtual address / port (packet destination) */
  vaddr: number;
  vport: number;
  /** caller's clock in ms (monotonic) */
  now: number;
  dryRun: boolean;
}

/** A round-robin scheduler's position, by server identity (Scheduler.cursor). */
export interface SchedCursor {
  server: { addr: number; port: number } | null;
  weight: number;
}

export interface Scheduler {
  readonly name: string;
  pick(svc: VirtualService, ctx: SchedContext): RealServer | null;
  /** a dest was inserted at svc.dests[0] (kernel order: newest first) */
  onDestAdded?(svc: VirtualService, dest: RealServer): void;
  /** a dest was removed; it used to be at index `oldIndex` */
  onDestRemoved?(svc: VirtualService, dest: RealServer, oldIndex: number): void;
  /** weight / thresholds of a dest changed */
  onDestUpdated?(svc: VirtualService, dest: RealServer): void;
  /** where the next pick starts (rr, wrr), for a restart to carry over (core/carry-over.ts):
   *  the server of the last pick (null: the list head) and wrr's current weight (0: unset) */
  cursor?(svc: VirtualService): SchedCursor;
  /** set it again in a new process: `server` is found in this list by address and port (a
   *  server the list no longer has: the head); the weight is brought into this list's range */
  setCursor?(svc: VirtualService, c: SchedCursor): void;
  /** periodic housekeeping (lblc/lblcr garbage collection) */
  tick?(now: number): void;
  /** release per-service state */
  done?(): void;
}
