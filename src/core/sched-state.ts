/**
 * Scheduler state that several data-path workers can share: round robin's cursor, weighted
 * round robin's cursor and current weight. With one engine per worker (src/datapath), a cursor
 * kept per engine makes rr exact per worker only; kept here, in an Int32Array over a
 * SharedArrayBuffer that every worker's engine sees, the sequence of picks is IPVS's across all
 * workers. An engine on its own uses a private array: the same code, nothing shared.
 *
 * A slot is four int32: [version, v0, v1, v2]. Updates are optimistic, never blocking (a data-path
 * thread must never sleep on another one, which a lock would make it do when the holder loses
 * its core):
 *   const ver = slot.begin();            // an even version: nobody is writing
 *   ...read get(0..2), compute the pick...
 *   if (!slot.commit(ver, a, b, c)) retry // someone committed since `ver`: read again
 * `commit` claims the slot by a compare-and-swap of the version to odd, writes the three values
 * and publishes the next even version: three stores, the only window in which another thread
 * waits (spinning). So every committed pick was computed from the state the previous commit left,
 * and the picks of all workers form one IPVS sequence.
 * Two bounded fallbacks, each at worst repeating one server once and never blocking: a writer
 * descheduled inside its three stores (begin() gives up after SPIN reads and returns -1: compute
 * without committing), and a pick that loses MAX_ATTEMPTS races in a row (answer uncommitted).
 * `unsynced` counts both. Updates made on server-list changes are applied by every engine, so
 * they must be idempotent (rr.ts, wrr.ts say how theirs are).
 */
export const SLOT_INTS = 4;
/** reads of an odd version before begin() gives up on a (descheduled) writer */
const SPIN = 1 << 16;
/** lost commit races before a pick answers without committing */
export const MAX_ATTEMPTS = 64;

export class StateSlot {
  readonly #a: Int32Array;
  readonly #at: number;
  /** picks and updates that went ahead without committing (see the fallbacks above) */
  unsynced = 0;

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

  /** Start reading: the (even) version to commit against, or -1 when a writer stayed mid-write
   *  for SPIN reads (then read anyway, and do not commit). */
  begin(): number {
    const a = this.#a;
    const at = this.#at;
    for (let i = 0; i < SPIN; i++) {
      const v = Atomics.load(a, at);
      if ((v & 1) === 0) return v;
    }
    this.unsynced++;
    return -1;
  }

  /** value i (0..2), as of the version begin() returned (valid only if commit succeeds) */
  get(i: number): number {
    return Atomics.load(this.#a, this.#at + 1 + i);
  }

  /** Store v0..v2 if nothing was committed since `version` (from begin); false: begin again. */
  commit(version: number, v0: number, v1: number, v2: number): boolean {
    if (version < 0) return false;
    const a = this.#a;
    const at = this.#at;
    if (Atomics.compareExchange(a, at, version, version + 1) !== version) return false;
    Atomics.store(a, at + 1, v0);
    Atomics.store(a, at + 2, v1);
    Atomics.store(a, at + 3, v2);
    Atomics.store(a, at, (version + 2) & 0x7ffffffe);
    return true;
  }

  /** True while nothing was committed since `version` (a read-only check needs no commit). */
  unchangedSince(version: number): boolean {
    return version >= 0 && Atomics.load(this.#a, this.#at) === version;
  }

  /** Count a pick that answered without committing (lost MAX_ATTEMPTS races or begin gave up). */
  gaveUp(): void {
    this.unsynced++;
  }
}
