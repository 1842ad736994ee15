/**
 * Forwarding a packet of a known connection (the end of ip_vs_in / ip_vs_out): count it, move
 * the connection's state, rewrite the packet for the connection's forwarding method, restart the
 * connection's timer, and offer it to the kernel fast path once it qualifies.
 */
import { countPacket } from './accounting.js';
import { ConnFlag } from './conn-table.js';
import type { ConnLifecycle } from './conn/lifecycle.js';
import type { EngineState } from './engine-state.js';
import type { OffloadPolicy } from './offload-policy.js';
import type { PacketMeta } from './packet-meta.js';
import type { ProtoOps } from './proto/ops.js';
import { Stat } from './stats.js';
import { TcpDir } from './tcp-states.js';
import { Outcome, type OutcomeCode } from './verdict.js';
import { natReply, natRequest } from './xmit-nat.js';

export class Forwarder {
  readonly #s: EngineState;
  readonly #life: ConnLifecycle;
  readonly #offload: OffloadPolicy;
  /** a kernel fast path exists (fixed for the engine's life) */
  readonly #offloading: boolean;

  constructor(s: EngineState, life: ConnLifecycle, offload: OffloadPolicy) {
    this.#s = s;
    this.#life = life;
    this.#offload = offload;
    this.#offloading = offload.enabled;
  }

  /** A request (client -> VIP) of connection c. */
  request(m: PacketMeta, ops: ProtoOps, c: number): OutcomeCode {
    const s = this.#s;
    const conns = s.conns;
    const d = s.dests.byId(conns.dest(c));
    countPacket(d, s.stats, Stat.INPKTS, Stat.INBYTES, m.total);
    const k = conns.inPkts[c]!; // in_pkts (ip_vs_in), read by drop_entry (defense.ts)
    if (k < 255) conns.inPkts[c] = k + 1;
    const to = ops.transition(c, TcpDir.INPUT, m.tflags, d);
    // the connection's method, bound at creation: NAT rewrites here; DR and TUN leave the packet
    // as it is (the data path sends it to the real server's link-layer address, or
    // encapsulated, from the entry's method and daddr)
    const f = conns.flags(c); // after the transition, which changes neither bit read here
    if ((f & ConnFlag.FWD_MASK) === 0) natRequest(m, conns, c);
    s.lastConn = c;
    // a running sync master hears of every inbound packet, after the state moved (ip_vs_in)
    if (s.sync !== null) s.sync.inbound(c);
    if ((f & ConnFlag.ONE_PACKET) !== 0) this.#life.expire(c);
    else {
      conns.rearm(c, s.nowTick + to);
      if (this.#offloading) this.#offload.consider(c, ops);
    }
    return Outcome.ForwardIn;
  }

  /** A reply (real server -> client) of connection c (VS/NAT only). */
  reply(m: PacketMeta, ops: ProtoOps, c: number): OutcomeCode {
    const s = this.#s;
    const conns = s.conns;
    const d = s.dests.byId(conns.dest(c));
    countPacket(d, s.stats, Stat.OUTPKTS, Stat.OUTBYTES, m.total);
    const to = ops.transition(c, TcpDir.OUTPUT, m.tflags, d);
    natReply(m, conns, c);
    s.lastConn = c;
    conns.rearm(c, s.nowTick + to);
    // backup_only: replies are translated, but nothing goes to the kernel fast path, which
    // would forward the connection's requests too
    if (this.#offloading && !s.backupOnly) this.#offload.consider(c, ops);
    return Outcome.ForwardOut;
  }
}
