/**
 * Scheduler state that several data-path workers can share: round robin's cursor, weighted
 * round robin's cursor and current weight. With one engine per worker (src/datapath), a cursor
 * kept per engine makes rr exact per worker only; kept here, in an Int32Array over a
 * SharedArrayBuffer that every worker's engine sees, the sequence of picks is IPVS's across all
 * workers. An engine on its own uses a private array: the same code, nothing shared.
 *
 * A slot is four int32: [lock, v0, v1, v2]. A pick holds the slot's spin lock for the few
 * hundred nanoseconds it takes. When SPIN attempts fail, the holder was descheduled (on a busy
 * machine, a worker thread can lose its core for milliseconds): the pick then sleeps in steps
 * of WAIT_MS, at most MAX_WAIT_MS in all, and only after that goes ahead unlocked, which can at
 * worst repeat or skip one server once. Changes of the server list are applied by every engine, so the updates made
 * to the slot on such changes must be idempotent (rr.ts, wrr.ts say how theirs are).
 */
export const SLOT_INTS = 4;
const SPIN = 1000;
const WAIT_MS = 0.05;
const MAX_WAIT_MS = 20;

export class StateSlot {
  readonly #a: Int32Array;
  readonly #at: number;

  /** slot `index` of `a` (a private 4-int32 array when index is -1) */
  constructor(a: Int32Array | null, index: number) {
    if (a === null || index < 0) {
      this.#a = new Int32Array(SLOT_INTS);
      this.#at = 0;
    } else {
      if (!Number.isInteger(index) || (index + 1) * SLOT_INTS > a.length) throw new RangeError(`scheduler state slot ${index} out of range`);
      this.#a = a;
      this.#at = index * SLOT_INTS;
    }
  }

  /** Take the lock; false when it could not be had within MAX_WAIT_MS (go on unlocked). */
  lock(): boolean {
    const a = this.#a;
    const at = this.#at;
    for (let i = 0; i < SPIN; i++) if (Atomics.compareExchange(a, at, 0, 1) === 0) return true;
    if (!(a.buffer instanceof SharedArrayBuffer)) return false; // private: no other holder to wait for
    for (let t = 0; t < MAX_WAIT_MS; t += WAIT_MS) {
      Atomics.wait(a, at, 1, WAIT_MS);
      if (Atomics.compareExchange(a, at, 0, 1) === 0) return true;
    }
    return false;
  }

  unlock(locked: boolean): void {
    if (locked) Atomics.store(this.#a, this.#at, 0);
  }

  /** value i (0..2); call between lock() and unlock() */
  get(i: number): number {
    return this.#a[this.#at + 1 + i]!;
  }

  set(i: number, v: number): void {
    this.#a[this.#at + 1 + i] = v;
  }
}
