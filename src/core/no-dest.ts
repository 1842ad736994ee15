/**
 * A new flow for a service with no usable real server (ip_vs_leave): the client is told at
 * once with ICMP port unreachable instead of retrying into silence, rate limited like the
 * kernel's own ICMP errors (net.ipv4.icmp_msgs_per_sec / icmp_msgs_burst defaults).
 */
import type { EngineState } from './engine-state.js';
import { buildIcmpUnreach } from './icmp.js';
import type { PacketMeta } from './packet-meta.js';
import { Event, Outcome, type OutcomeCode } from './verdict.js';
import { IcmpUnreachCode } from '../wire/icmp.js';

/** ICMP errors per second and burst (Linux's defaults). */
const ICMP_PER_SEC = 1000;
const ICMP_BURST = 50;
/** Largest ICMP error generated, bytes (RFC 1812 4.3.2.3: up to 576). */
export const ICMP_OUT_MAX = 576;

export class NoDestReply {
  /** the ICMP message produced by the last IcmpUnreachSent (valid until the next one) */
  readonly out: Buffer = Buffer.alloc(ICMP_OUT_MAX);
  /** its length, bytes */
  len = 0;
  readonly #s: EngineState;
  #tokens = ICMP_BURST;
  #lastMs = 0;
  #id = 0;

  constructor(s: EngineState) {
    this.#s = s;
  }

  /** Answer the packet in m with port unreachable, or drop it when over the rate. */
  answer(m: PacketMeta): OutcomeCode {
    const s = this.#s;
    s.events[Event.NoDest]!++;
    const elapsed = s.nowMs - this.#lastMs;
    this.#lastMs = s.nowMs;
    if (elapsed > 0) this.#tokens = Math.min(ICMP_BURST, this.#tokens + (elapsed * ICMP_PER_SEC) / 1000);
    if (this.#tokens < 1) return Outcome.DropIcmpRateLimited;
    this.#tokens -= 1;
    this.len = buildIcmpUnreach(this.out, m.buf, m.off, m.total, IcmpUnreachCode.PORT, this.#id++);
    return Outcome.IcmpUnreachSent;
  }
}
