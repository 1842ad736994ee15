/**
 * explain: which real server a flow would get, and why. It runs the packet path's own decisions
 * (decide.ts, then schedule.ts's choose as a dry run) on a flow described by its addresses, and
 * commits nothing: no entry is created or expired, no scheduler cursor moves.
 */
import { unbind } from './conn/lifecycle.js';
import type { Decider } from './decide.js';
import { Expire, Path } from './decide.js';
import type { EngineState } from './engine-state.js';
import { FixedMark } from './mark-source.js';
import type { ProtoTable } from './proto/ops.js';
import { Chosen, type Scheduling } from './schedule.js';
import type { SchedContext } from './scheduler.js';
import { FWD_NAMES, isFwmarkKey, type RealServer, type ServiceKey, type VirtualService } from './service.js';
import { formatIPv4 } from '../wire/addr.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4.js';
import { TcpFlag } from '../wire/tcp.js';

export interface FlowQuery {
  proto: number;
  caddr: number;
  cport: number;
  vaddr: number;
  vport: number;
  /** TCP: is this the first segment (SYN)? default true. Ignored when tcpFlags is given. */
  syn?: boolean;
  /** TCP: the segment's exact flags (TcpFlag bits) */
  tcpFlags?: number;
  /** the packet's firewall mark (u32; default 0: none) */
  mark?: number;
}

export interface Explanation {
  verdict: 'forward' | 'pass' | 'icmp' | 'drop';
  path: 'connection' | 'reply' | 'template' | 'scheduler' | 'no-service' | 'not-syn' | 'no-destination' | 'dest-unavailable';
  service?: string;
  scheduler?: string;
  dest?: string;
  reason: string;
  /** the existing connection this flow's packet would expire first, and why */
  expires?: string;
  servers?: { server: string; weight: number; active: number; inactive: number; overloaded: boolean }[];
  /** the servers no scheduler gives a new connection, and why: weight 0 (quiesced) or over its
   *  upper threshold (IP_VS_DEST_F_OVERLOAD); set on the scheduler and no-destination paths */
  skipped?: { server: string; why: 'quiesced' | 'overloaded' }[];
}

export function serviceLabel(s: ServiceKey): string {
  if (isFwmarkKey(s)) return `FWM ${s.addr >>> 0}`;
  return `${s.proto === IPPROTO_TCP ? 'TCP' : s.proto === IPPROTO_UDP ? 'UDP' : String(s.proto)} ${formatIPv4(s.addr)}:${s.port}`;
}

const fmt = (a: number, p: number) => `${formatIPv4(a >>> 0)}:${p}`;

export class Explainer {
  readonly #s: EngineState;
  readonly #protos: ProtoTable;
  readonly #decider: Decider;
  readonly #scheduling: Scheduling;
  /** whether a stray TCP segment to this VIP is dropped, not passed (DirectorOptions.strayTcp) */
  readonly #dropStray: (vaddr: number) => boolean;
  readonly #mark = new FixedMark();

  constructor(s: EngineState, protos: ProtoTable, decider: Decider, scheduling: Scheduling, dropStray: (vaddr: number) => boolean) {
    this.#dropStray = dropStray;
    this.#s = s;
    this.#protos = protos;
    this.#decider = decider;
    this.#scheduling = scheduling;
  }

  explain(q: FlowQuery, now: number): Explanation {
    const ops = this.#protos.of(q.proto);
    const noService = (): Explanation => ({ verdict: 'pass', path: 'no-service', reason: `no virtual service for ${serviceLabel({ proto: q.proto, addr: q.vaddr, port: q.vport })}; the packet goes to the host stack` });
    if (ops === undefined) return noService();
    const tflags = q.tcpFlags ?? ((q.syn ?? true) ? TcpFlag.SYN : TcpFlag.ACK);
    const conns = this.#s.conns;
    this.#mark.mark = (q.mark ?? 0) >>> 0;
    const dec = this.#decider.decide(ops, q.caddr | 0, q.cport, q.vaddr | 0, q.vport, tflags, this.#mark);
    const c = dec.conn;
    switch (dec.path) {
      case Path.Connection:
        return { verdict: 'forward', path: 'connection', service: serviceLabel(this.#destOf(c).svc), dest: fmt(conns.daddr(c), conns.dport(c)), reason: `existing connection in state ${ops.stateName(c)}` };
      case Path.Reply:
        return { verdict: 'forward', path: 'reply', service: serviceLabel(this.#destOf(c).svc), dest: fmt(conns.caddr(c), conns.cport(c)), reason: `reply of a connection in state ${ops.stateName(c)}: its source becomes ${fmt(conns.vaddr(c), conns.vport(c))}` };
      case Path.DestUnavailable: {
        const d = this.#destOf(c);
        return { verdict: 'drop', path: 'dest-unavailable', dest: fmt(d.addr, d.port), reason: `existing connection (${ops.stateName(c)}) points to deleted server ${fmt(d.addr, d.port)}; its packets are dropped (expire_nodest_conn=0)` };
      }
    }
    const expires = dec.expire === Expire.None ? undefined : this.#expiryNote(c, dec.expire, ops.stateName(c));
    const svc = dec.svc;
    if (svc === null) return { ...noService(), ...(expires && { expires }) };
    if (dec.path === Path.NotOpener) {
      const drop = this.#dropStray(q.vaddr);
      return {
        verdict: drop ? 'drop' : 'pass',
        path: 'not-syn',
        service: serviceLabel(svc),
        reason: `TCP segment without SYN and no connection: not scheduled (sloppy_tcp=0); ${drop ? 'dropped' : 'the host stack gets it'}`,
        ...(expires && { expires }),
      };
    }
    return { ...this.#schedule(svc, q, now, dec.expire === Expire.None ? -1 : c), ...(expires && { expires }) };
  }

  #destOf(c: number): RealServer {
    return this.#s.dests.byId(this.#s.conns.dest(c));
  }

  #expiryNote(c: number, why: number, state: string): string {
    const d = this.#destOf(c);
    const to = fmt(d.addr, d.port);
    if (why === Expire.NoDest) return `the existing connection (${state}) to deleted server ${to} is expired first (expire_nodest_conn=1)`;
    if (this.#s.sysctl.expireNodestConn && d.weight === 0) return `the existing connection (${state}) to quiesced server ${to} is expired first (expire_nodest_conn=1, weight 0)`;
    return `the existing connection (${state}) to ${to} has finished; a new SYN reuses its tuple (conn_reuse_mode)`;
  }

  /** The scheduling step as a dry run; `expiring` (-1: none) is the entry the packet path would
   *  remove first, whose server's counters the dry run therefore leaves out. */
  #schedule(svc: VirtualService, q: FlowQuery, now: number, expiring: number): Explanation {
    const servers = svc.dests.map((d) => ({ server: fmt(d.addr, d.port), weight: d.weight, active: d.activeConns, inactive: d.inactConns, overloaded: d.overloaded }));
    const skipped = svc.dests.filter((d) => d.weight === 0 || d.overloaded).map((d) => ({ server: fmt(d.addr, d.port), why: d.weight === 0 ? ('quiesced' as const) : ('overloaded' as const) }));
    const base = { service: serviceLabel(svc), scheduler: svc.schedName, servers, skipped };
    // the same int32 address form the packet path gives schedulers (lblc keys on it)
    const ctx: SchedContext = { proto: q.proto, caddr: q.caddr | 0, cport: q.cport, vaddr: q.vaddr | 0, vport: q.vport, now, dryRun: true };
    const ch = this.#withoutEntry(expiring, () => this.#scheduling.choose(svc, ctx));
    const d = ch.dest;
    if (ch.by === Chosen.Template && d !== null) {
      const snet = ch.snet >>> 0;
      return { verdict: 'forward', path: 'template', ...base, dest: fmt(d.addr, d.port), reason: `persistence template for ${formatIPv4(snet)} (timeout ${svc.timeout} s) points to ${fmt(d.addr, d.port)}` };
    }
    if (d === null)
      return { verdict: 'icmp', path: 'no-destination', ...base, reason: `${svc.schedName} found no usable server (all quiesced, overloaded or none): the client gets ICMP port unreachable` };
    return { verdict: 'forward', path: 'scheduler', ...base, dest: fmt(d.addr, d.port !== 0 ? d.port : q.vport), reason: `new connection: ${svc.schedName} picks ${fmt(d.addr, d.port)} (${FWD_NAMES[d.fwd]}, weight ${d.weight})` };
  }

  /** Run fn as if entry i (-1: none) were already unbound from its server, then put back what
   *  that changed (its server's counters and overload flag). */
  #withoutEntry<T>(i: number, fn: () => T): T {
    if (i < 0) return fn();
    const d = this.#destOf(i);
    const saved = [d.activeConns, d.inactConns, d.persistConns] as const;
    const overloaded = d.overloaded;
    unbind(d, this.#s.conns.flags(i));
    try {
      return fn();
    } finally {
      [d.activeConns, d.inactConns, d.persistConns] = saved;
      d.overloaded = overloaded;
    }
  }
}
