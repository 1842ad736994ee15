/**
 * The first decision about a packet (ip_vs_in / ip_vs_out up to scheduling): which connection
 * it belongs to, whether that connection is kept, or which service must schedule it. It changes
 * nothing, so the packet path (director.ts) and `explain` (explain.ts) run the same code: the
 * packet path then carries the decision out, explain describes it.
 */
import { ConnFlag } from './conn-table.js';
import type { EngineState } from './engine-state.js';
import type { MarkSource } from './mark-source.js';
export { NO_MARKS, type MarkSource } from './mark-source.js'; // for the Director, which holds the packets' source
import type { ProtoOps } from './proto/ops.js';
import type { ServiceIndex } from './service-index.js';
import type { VirtualService } from './service.js';

export const Path = {
  /** request of a known connection (`conn`): forward it */
  Connection: 0,
  /** reply of a known connection (`conn`): forward it */
  Reply: 1,
  /** request of a connection whose server was deleted (expire_nodest_conn=0): drop */
  DestUnavailable: 2,
  /** no connection and no virtual service: not ours */
  NoService: 3,
  /** no connection, and this packet may not open one (TCP without SYN): not ours */
  NotOpener: 4,
  /** a new connection for `svc`, after expiring `conn` when `expire` says so */
  Schedule: 5,
} as const;
export type PathCode = (typeof Path)[keyof typeof Path];

/** Why an existing connection gives way to a new one (Path.Schedule with conn >= 0). */
export const Expire = {
  None: 0,
  /** a new connection on a finished one's tuple, or on a quiesced server with
   *  expire_nodest_conn (conn_reuse_mode; IPVS counts these as rescheduled) */
  Reuse: 1,
  /** its server was deleted and expire_nodest_conn=1 */
  NoDest: 2,
} as const;
export type ExpireCode = (typeof Expire)[keyof typeof Expire];

/** The decision for one packet. Each path sets what it uses: every path `conn`; NoService,
 *  NotOpener and Schedule also `expire` and `svc`. */
export class Decision {
  path: PathCode = Path.NoService;
  /** the connection found (-1: none) */
  conn = -1;
  expire: ExpireCode = Expire.None;
  /** Path.Schedule, NotOpener: the service */
  svc: VirtualService | null = null;
}

export class Decider {
  readonly #s: EngineState;
  readonly #d = new Decision();
  /** the service index in force (replaced whole by the control plane) */
  index: ServiceIndex;

  constructor(s: EngineState, index: ServiceIndex) {
    this.#s = s;
    this.index = index;
  }

  /**
   * Decide for a packet of protocol `ops` from saddr:sport to daddr:dport with TCP flags
   * `tflags`; `marks` gives its firewall mark, asked only when it has no connection and some
   * fwmark service exists. The result is overwritten by the next call.
   */
  decide(ops: ProtoOps, saddr: number, sport: number, daddr: number, dport: number, tflags: number, marks: MarkSource): Decision {
    const s = this.#s;
    const conns = s.conns;
    const r = this.#d;
    // Inbound lookup first (client -> VIP), then the reply lookup (RS -> client), as IPVS's
    // hooks do. Deciding the direction from the service index first was tried: no measurable
    // gain at 1M flows (memory latency dominates) and no clear one at 10k (BENCHMARKS.md).
    // The fields a path does not use are left as they are (callers read only its own).
    let c = conns.findIn(ops.proto, saddr, sport, daddr, dport);
    let expire: ExpireCode = Expire.None;
    if (c >= 0) {
      const d = s.dests.byId(conns.dest(c));
      const sys = s.sysctl;
      // Unlike ip_vs_in_hook, only a packet that can open the new connection (ops.opensConn:
      // for TCP a SYN without RST) expires the old one: IPVS expires it for SYN+RST too and then
      // schedules nothing, so two spoofed segments on a live tuple (an RST, then SYN+RST) end a
      // connection whose packets keep coming (found by the hostile-packet test,
      // test/integration/hostile.test.ts); here such a packet belongs to the connection.
      if (ops.isNewConn(tflags) && ops.opensConn(tflags) && sys.connReuseMode !== 0 && ((sys.expireNodestConn && d.weight === 0) || ops.newConnExpected(c))) expire = Expire.Reuse;
      else if (d.available) {
        r.path = Path.Connection;
        r.conn = c;
        return r;
      } else if (sys.expireNodestConn) expire = Expire.NoDest;
      else {
        r.path = Path.DestUnavailable;
        r.conn = c;
        return r;
      }
    } else {
      c = conns.findOut(ops.proto, daddr, dport, saddr, sport);
      // only masqueraded connections have replies to rewrite (ip_vs_out ignores the others)
      if (c >= 0 && (conns.flags(c) & ConnFlag.FWD_MASK) === 0) {
        r.path = Path.Reply;
        r.conn = c;
        return r;
      }
    }
    r.conn = expire === Expire.None ? -1 : c;
    r.expire = expire;
    const svc = this.#service(ops, saddr, sport, daddr, dport, marks);
    r.svc = svc;
    if (svc === null) r.path = Path.NoService;
    else r.path = ops.opensConn(tflags) ? Path.Schedule : Path.NotOpener;
    return r;
  }

  /** The connection last decided (r.conn) has ended and a checked SYN-cookie ACK opens a new
   *  one on its addresses (syn-proxy.ts reopens): expire it and schedule, as for a SYN under
   *  conn_reuse_mode. */
  reopen(ops: ProtoOps, saddr: number, sport: number, daddr: number, dport: number, marks: MarkSource): Decision {
    const r = this.#d;
    r.expire = Expire.Reuse;
    r.svc = this.#service(ops, saddr, sport, daddr, dport, marks);
    r.path = r.svc === null ? Path.NoService : Path.Schedule;
    return r;
  }

  /** ip_vs_service_find: the fwmark service of the packet's mark first, then by address. */
  #service(ops: ProtoOps, saddr: number, sport: number, daddr: number, dport: number, marks: MarkSource): VirtualService | null {
    const idx = this.index;
    const svc = idx.hasFwmark ? idx.byMark(marks.markOf(ops.proto, saddr, sport, daddr, dport)) : null;
    return svc ?? idx.find(ops.proto, daddr, dport);
  }
}
