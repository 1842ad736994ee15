/**
 * One worker's view of the fast path's slot array (ulvs_slots, an mmap'd BPF array: no system
 * call to read it): per slot the packets and bytes the kernel forwarded each way and the time of
 * its last packet, and what of those counts has been reported to the engine already. Used by
 * the Offloader (offloader.ts); slots are this worker's indexes (0 = its first, `base` in the
 * whole array). Nothing is allocated per call.
 */
import type { OffloadReport } from '../../core/offload.js';
import { SLOT_BYTES, SLOT_LAST_NS, SLOT_PKTS, SLOT_SIZE } from './fastpath.js';
import { mapMemory, monotonicOffsetMs, munmap, type Mapping } from './sys.js';

export class SlotCounts {
  readonly #map: Mapping;
  /** the slot array as u32 halves (little-endian u64s) */
  readonly #u32: Uint32Array;
  readonly #base: number;
  /** slot -> counts already reported: packets in, bytes in, packets out, bytes out */
  readonly #reported: Float64Array;
  /** CLOCK_MONOTONIC (the program's bpf_ktime_get_ns) minus performance.now() (the engine's
   *  clock), ms: both are monotonic, so the difference is fixed for the life of the thread */
  readonly #clockOffsetMs = monotonicOffsetMs();

  /** The array of `slots` slots (all workers) behind `slotsFd`; this worker's range from `base`, `count` long. */
  constructor(slotsFd: number, slots: number, base: number, count: number) {
    const page = 4096;
    this.#map = mapMemory(Math.ceil((slots * SLOT_SIZE) / page) * page, slotsFd, 0);
    this.#u32 = new Uint32Array(this.#map.buf.buffer, this.#map.buf.byteOffset, this.#map.len / 4);
    this.#base = base;
    this.#reported = new Float64Array(count * 4);
  }

  /** A fresh slot: its counts zeroed in the kernel's array and here (no flow points at it). */
  clear(s: number): void {
    const w = ((this.#base + s) * SLOT_SIZE) / 4;
    this.#u32.fill(0, w, w + SLOT_SIZE / 4);
    this.#reported.fill(0, s * 4, s * 4 + 4);
  }

  /** The counts reported from slot s so far, into `out` (4 numbers), or set from `from`. */
  reported(s: number, out: Float64Array): void {
    for (let k = 0; k < 4; k++) out[k] = this.#reported[s * 4 + k]!;
  }
  setReported(s: number, from: Float64Array): void {
    for (let k = 0; k < 4; k++) this.#reported[s * 4 + k] = from[k]!;
  }

  /**
   * Counts of slot s since its last report, and the time of its last packet (performance.now()'s
   * clock, ms; -1 for none), into out; false when nothing new.
   */
  report(s: number, out: OffloadReport): boolean {
    const w = ((this.#base + s) * SLOT_SIZE) / 4;
    const rep = this.#reported;
    const pin = this.#u64(w, SLOT_PKTS);
    const pout = this.#u64(w, SLOT_PKTS + 8);
    const bin = this.#u64(w, SLOT_BYTES);
    const bout = this.#u64(w, SLOT_BYTES + 8);
    out.inPkts = pin - rep[s * 4]!;
    out.inBytes = bin - rep[s * 4 + 1]!;
    out.outPkts = pout - rep[s * 4 + 2]!;
    out.outBytes = bout - rep[s * 4 + 3]!;
    const lastNs = this.#u64(w, SLOT_LAST_NS);
    out.lastSeenMs = lastNs > 0 ? lastNs / 1e6 - this.#clockOffsetMs : -1;
    rep[s * 4] = pin;
    rep[s * 4 + 1] = bin;
    rep[s * 4 + 2] = pout;
    rep[s * 4 + 3] = bout;
    return out.inPkts !== 0 || out.outPkts !== 0;
  }

  /** a little-endian u64 at byte `off` of the slot starting at word w (exact below 2^53) */
  #u64(w: number, off: number): number {
    return this.#u32[w + off / 4]! + this.#u32[w + off / 4 + 1]! * 2 ** 32;
  }

  close(): void {
    munmap(this.#map.ptr, this.#map.len);
  }
}
