/**
 * One worker's share of the kernel set-up slots (docs/kernel-setup.md): the slot range
 * [base, base + count) of the slot array is shared by all workers and owned by the kernel's free
 * queue (ulvs_kslot_free, a BPF QUEUE map): the fast path pops a slot for each connection it
 * sets up and reports it to the worker that owns the connection, which holds it from then on
 * (hold). When the engine takes the connection back (the Offloader's withdraw: expiry, a
 * configuration change, a state change seen by the engine itself), its flow entries are deleted
 * (or, for DR/TUN, replaced by the way-out entry, which counts in no slot) at the next flush, and
 * only then is the slot pushed back into the kernel's queue (giveBack).
 *
 * Invariants, per slot of the range, for this worker:
 *   - state FREE (the kernel's, or another worker's) -> HELD by one connection (hold)
 *     -> RELEASING (release: the deletion of its entries is queued) -> FREE (giveBack: pushed);
 *   - a slot is pushed only from RELEASING, so never twice and never while this worker's
 *     entries point at it (giveBack is called after the flush that deleted them).
 * A push the kernel refuses (the queue is full, which only a push of a slot already there can
 * cause) is counted (push_errors) and the slot is left FREE: nothing is retried.
 *
 * Local indexes k are slot - base. Nothing is allocated per call.
 */
import type { OffloadReport } from '../../core/offload.js';

/** The kernel's free queue as MapOps gives it (bpf.ts push). */
export interface SlotQueue {
  /** push a 4-byte value (the slot, little-endian u32); 0 or the errno */
  push(value: Buffer): number;
}

/** The slot array's counts for this range (slot-counts.ts SlotCounts, base = the range's base). */
export interface KernelSlotCounts {
  report(k: number, out: OffloadReport): boolean;
  reported(k: number, out: Float64Array): void;
  setReported(k: number, from: Float64Array): void;
  close(): void;
}

const FREE = -1;
const RELEASING = -2;
const ZERO = new Float64Array(4);

export class KernelSlots {
  readonly counters = { kernel_slots_held: 0, kernel_slots_returned: 0, kernel_slot_push_errors: 0, kernel_slot_bad_returns: 0 };
  readonly base: number;
  readonly count: number;
  readonly #queue: SlotQueue;
  readonly #counts: KernelSlotCounts;
  /** k -> the connection holding it, FREE or RELEASING */
  readonly #connOf: Int32Array;
  readonly #value = Buffer.alloc(4);
  #held = 0;

  constructor(base: number, count: number, queue: SlotQueue, counts: KernelSlotCounts) {
    this.base = base;
    this.count = count;
    this.#queue = queue;
    this.#counts = counts;
    this.#connOf = new Int32Array(count).fill(FREE);
  }

  /** connections held now */
  get held(): number {
    return this.#held;
  }

  /** Whether `slot` (whole array) is in the range and neither held nor being released here. */
  free(slot: number): boolean {
    const k = slot - this.base;
    return k >= 0 && k < this.count && this.#connOf[k] === FREE;
  }

  /**
   * Connection c holds `slot` (free(slot) must be true): returns its local index. `reported`:
   * the counts already reported from the slot (a restart's record), or none: the kernel zeroed
   * the slot when it set the connection up and counts in it only what it did not report, so all
   * its counts are new.
   */
  hold(c: number, slot: number, reported: Float64Array = ZERO): number {
    const k = slot - this.base;
    this.#connOf[k] = c;
    this.#counts.setReported(k, reported);
    this.#held++;
    this.counters.kernel_slots_held++;
    return k;
  }

  /** Connection c's slot k is let go (its entries' deletion is queued): what the kernel
   *  forwarded since the last report, into `out`. */
  release(k: number, out: OffloadReport): void {
    this.#counts.report(k, out);
    this.#connOf[k] = RELEASING;
    this.#held--;
  }

  /** Slot k's entries are deleted: push it into the kernel's free queue. Only from RELEASING
   *  (else counted kernel_slot_bad_returns, nothing pushed). */
  giveBack(k: number): void {
    if (this.#connOf[k] !== RELEASING) {
      this.counters.kernel_slot_bad_returns++;
      return;
    }
    this.#connOf[k] = FREE;
    this.#value.writeUInt32LE(this.base + k, 0);
    if (this.#queue.push(this.#value) === 0) this.counters.kernel_slots_returned++;
    else this.counters.kernel_slot_push_errors++;
  }

  /** Held slot k passes to connection c (OffloadPort.moveKernel): the counts since the last
   *  report into `out` (they were the previous holder's). */
  reassign(k: number, c: number, out: OffloadReport): void {
    this.#counts.report(k, out);
    this.#connOf[k] = c;
  }

  /** Slot k, just held, could not be used (its entries were refused at a restart): back now. */
  drop(k: number): void {
    this.#connOf[k] = RELEASING;
    this.#held--;
    this.giveBack(k);
  }

  /** The connection holding k, or < 0. */
  connOf(k: number): number {
    return this.#connOf[k]!;
  }

  /** The counts reported from k so far (for an export). */
  reported(k: number, out: Float64Array): void {
    this.#counts.reported(k, out);
  }

  /** Every held slot's new counts to `sink` (the Offloader's harvest). */
  harvest(sink: { offloadActivity(c: number, r: OffloadReport): void }, r: OffloadReport): void {
    if (this.#held === 0) return;
    for (let k = 0; k < this.count; k++) {
      const c = this.#connOf[k]!;
      if (c >= 0 && this.#counts.report(k, r)) sink.offloadActivity(c, r);
    }
  }

  close(): void {
    this.#counts.close();
  }
}
