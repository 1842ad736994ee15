/**
 * The per-packet trace recorder (issue 15): while a trace is on, each packet whose connection
 * or header matches the filter (trace-filter.ts) is written as one fixed-size record of int32
 * words into a ring preallocated at construction, so tracing allocates nothing per packet. The
 * data path calls `before` with the packet as captured and `after` with the engine's verdict
 * and the packet as rewritten in place (only while `on`: one branch per packet when off), and
 * `kernel` with what the kernel fast path forwarded for a traced offloaded connection (the
 * harvest of its slot counters, every 0.5 s). `drain` copies the records out for the reader;
 * when the ring is full new records are not written and counted in `lost`.
 *
 * Record layout (REC words, int32; Rec.* are the offsets):
 *   kind      Kind.Packet or Kind.Kernel
 *   now       the caller's ms clock (truncated to int32)
 *   Packet:   before: saddr daddr ports(sport<<16|dport) meta(proto | tcpflags<<8 | ttl<<16) len
 *             after:  saddr daddr ports meta; verdict, outcome (core/verdict.ts codes)
 *             conn (-1 none), state before (-1 not seen by this trace), state after, conn
 *             flags, the connection's real server daddr dport, notes (Note bits)
 *   Kernel:   conn, in packets, in bytes, out packets, out bytes (since the last record), and
 *             the connection's caddr cport vaddr vport daddr dport
 * State before: NONE when this packet created the connection, else the state this trace last
 * saw for it (a small table of TRACKED connections), -1 for the first packet seen.
 */
import type { Director } from '../director.js';
import { ConnFlag } from '../conn-flags.js';
import { Event } from '../verdict.js';
import type { OffloadReport } from '../offload.js';
import { matchConn, matchHeader, TRACE_FILTER_WORDS } from './trace-filter.js';

export const Kind = { Packet: 1, Kernel: 2 } as const;
export const Note = { Created: 1, Offloaded: 2 } as const;
export const Rec = {
  kind: 0,
  now: 1,
  bSaddr: 2,
  bDaddr: 3,
  bPorts: 4,
  bMeta: 5,
  len: 6,
  aSaddr: 7,
  aDaddr: 8,
  aPorts: 9,
  aMeta: 10,
  verdict: 11,
  outcome: 12,
  conn: 13,
  stateBefore: 14,
  stateAfter: 15,
  flags: 16,
  daddr: 17,
  dport: 18,
  notes: 19,
  // Kind.Kernel
  inPkts: 2,
  inBytes: 3,
  outPkts: 4,
  outBytes: 5,
  kCaddr: 6,
  kCport: 7,
  kVaddr: 8,
  kVport: 9,
  kDaddr: 10,
  kDport: 11,
  kConn: 12,
} as const;
export const REC = 20;
/** records the ring holds between two drains */
export const TRACE_RING = 4096;
/** connections whose last state (and offload) the trace remembers */
const TRACKED = 64;

export class PacketTrace {
  /** whether a trace is running: the data path's one check per packet */
  on = false;
  readonly #ring = new Int32Array(TRACE_RING * REC);
  readonly #filter = new Int32Array(TRACE_FILTER_WORDS);
  #head = 0; // records written
  #tail = 0; // records drained
  #lost = 0;
  /** records this trace may still write (its --count, per engine) */
  #budget = 0;
  readonly #before = new Int32Array(5);
  #created = 0;
  #offloaded = 0;
  readonly #trackedConn = new Int32Array(TRACKED).fill(-1);
  readonly #trackedState = new Int32Array(TRACKED);
  #nextTrack = 0;

  /** Start a trace: `filter` from compileFilter, at most `budget` records. */
  start(filter: readonly number[], budget: number): void {
    this.#filter.set(filter.slice(0, TRACE_FILTER_WORDS));
    this.#head = this.#tail = this.#lost = 0;
    this.#budget = budget;
    this.#trackedConn.fill(-1);
    this.on = true;
  }
  stop(): void {
    this.on = false;
  }

  /** The packet as captured, before the engine sees it (IPv4 header at `off`). */
  before(d: Director, b: Uint8Array, off: number, len: number): void {
    const x = this.#before;
    const ihl = (b[off]! & 0x0f) << 2;
    x[0] = readI32(b, off + 12);
    x[1] = readI32(b, off + 16);
    x[2] = len >= ihl + 4 ? (b[off + ihl]! << 24) | (b[off + ihl + 1]! << 16) | (b[off + ihl + 2]! << 8) | b[off + ihl + 3]! : 0;
    x[3] = b[off + 9]! | ((len >= ihl + 14 && b[off + 9] === 6 ? b[off + ihl + 13]! : 0) << 8) | (b[off + 8]! << 16);
    x[4] = len;
    this.#created = d.events[Event.ConnsCreated]!;
    this.#offloaded = d.events[Event.Offloaded]!;
  }

  /** The engine's verdict on the packet given to `before`, which is now rewritten in place. */
  after(d: Director, b: Uint8Array, off: number, verdict: number, now: number): void {
    const x = this.#before;
    const c = d.lastConn;
    const t = d.conns;
    const proto = x[3]! & 0xff;
    const matched = c >= 0 ? matchConn(this.#filter, t.proto(c), t.caddr(c), t.cport(c), t.vaddr(c), t.vport(c), t.daddr(c), t.dport(c)) : matchHeader(this.#filter, proto, x[0]!, x[2]! >>> 16, x[1]!, x[2]! & 0xffff);
    if (!matched) return;
    const r = this.#slot();
    if (r < 0) return;
    const ring = this.#ring;
    const created = d.events[Event.ConnsCreated] !== this.#created;
    ring[r + Rec.kind] = Kind.Packet;
    ring[r + Rec.now] = now | 0;
    ring[r + Rec.bSaddr] = x[0]!;
    ring[r + Rec.bDaddr] = x[1]!;
    ring[r + Rec.bPorts] = x[2]!;
    ring[r + Rec.bMeta] = x[3]!;
    ring[r + Rec.len] = x[4]!;
    const ihl = (b[off]! & 0x0f) << 2;
    ring[r + Rec.aSaddr] = readI32(b, off + 12);
    ring[r + Rec.aDaddr] = readI32(b, off + 16);
    ring[r + Rec.aPorts] = x[4]! >= ihl + 4 ? readI32(b, off + ihl) : 0;
    ring[r + Rec.aMeta] = b[off + 9]! | ((x[3]! >>> 8) & 0xff) << 8 | (b[off + 8]! << 16);
    ring[r + Rec.verdict] = verdict;
    ring[r + Rec.outcome] = d.lastOutcome;
    ring[r + Rec.conn] = c;
    let notes = created ? Note.Created : 0;
    if (d.events[Event.Offloaded] !== this.#offloaded) notes |= Note.Offloaded;
    ring[r + Rec.notes] = notes;
    if (c < 0) {
      ring[r + Rec.stateBefore] = ring[r + Rec.stateAfter] = -1;
      ring[r + Rec.flags] = ring[r + Rec.daddr] = ring[r + Rec.dport] = 0;
      return;
    }
    const state = t.state(c);
    ring[r + Rec.stateBefore] = created ? 0 : this.#track(c, state);
    if (created) this.#track(c, state);
    ring[r + Rec.stateAfter] = state;
    ring[r + Rec.flags] = t.flags(c);
    ring[r + Rec.daddr] = t.daddr(c);
    ring[r + Rec.dport] = t.dport(c);
  }

  /** Whether entry c is one this trace saw and that the kernel fast path now forwards. */
  follows(d: Director, c: number): boolean {
    if ((d.conns.flags(c) & ConnFlag.OFFLOADED) === 0) return false;
    for (let i = 0; i < TRACKED; i++) if (this.#trackedConn[i] === c) return true;
    return false;
  }

  /** What the kernel fast path forwarded for traced connection c since its last report. */
  kernel(d: Director, c: number, rep: OffloadReport, now: number): void {
    const r = this.#slot();
    if (r < 0) return;
    const ring = this.#ring;
    const t = d.conns;
    ring[r + Rec.kind] = Kind.Kernel;
    ring[r + Rec.now] = now | 0;
    ring[r + Rec.inPkts] = rep.inPkts;
    ring[r + Rec.inBytes] = rep.inBytes;
    ring[r + Rec.outPkts] = rep.outPkts;
    ring[r + Rec.outBytes] = rep.outBytes;
    ring[r + Rec.kCaddr] = t.caddr(c);
    ring[r + Rec.kCport] = t.cport(c);
    ring[r + Rec.kVaddr] = t.vaddr(c);
    ring[r + Rec.kVport] = t.vport(c);
    ring[r + Rec.kDaddr] = t.daddr(c);
    ring[r + Rec.kDport] = t.dport(c);
    ring[r + Rec.kConn] = c;
  }

  /** The records written since the last drain (a copy, for the reader) and the count lost. */
  drain(): { records: Int32Array; lost: number; budgetLeft: number } {
    const n = this.#head - this.#tail;
    const out = new Int32Array(n * REC);
    for (let i = 0; i < n; i++) {
      const at = ((this.#tail + i) % TRACE_RING) * REC;
      out.set(this.#ring.subarray(at, at + REC), i * REC);
    }
    this.#tail = this.#head;
    const lost = this.#lost;
    this.#lost = 0;
    return { records: out, lost, budgetLeft: this.#budget };
  }

  /** The next free record's offset, or -1 (ring full: counted lost; budget spent: trace off). */
  #slot(): number {
    if (this.#budget <= 0) {
      this.on = false;
      return -1;
    }
    if (this.#head - this.#tail >= TRACE_RING) {
      this.#lost++;
      return -1;
    }
    this.#budget--;
    return (this.#head++ % TRACE_RING) * REC;
  }

  /** Remember c's state; returns the state remembered before (-1: not seen). */
  #track(c: number, state: number): number {
    for (let i = 0; i < TRACKED; i++) {
      if (this.#trackedConn[i] !== c) continue;
      const was = this.#trackedState[i]!;
      this.#trackedState[i] = state;
      return was;
    }
    const i = this.#nextTrack;
    this.#nextTrack = (i + 1) % TRACKED;
    this.#trackedConn[i] = c;
    this.#trackedState[i] = state;
    return -1;
  }
}

function readI32(b: Uint8Array, at: number): number {
  return (b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!;
}
