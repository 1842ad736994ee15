/**
 * Scheduler state that several data-path workers can share: round robin's cursor, weighted
 * round robin's cursor and current weight. With one engine per worker (src/datapath), a cursor
 * kept per engine makes rr exact per worker only; kept here, in an Int32Array over a
 * SharedArrayBuffer that every worker's engine sees, the sequence of picks is IPVS's across all
 * workers. An engine on its own uses a private array: the same code, nothing shared.
 *
 * A slot is ONE int32 holding a scheduler's whole shared state (rr.ts and wrr.ts say how they
 * pack theirs), so it changes by a single compare-and-swap and no thread ever waits for another
 * (a data-path thread must never sleep or spin on one that lost its core):
 *   const seen = slot.load();
 *   ...compute the pick from `seen`...
 *   if (!slot.swap(seen, next)) retry      // another engine picked meanwhile: compute again
 * Every committed pick was computed from the state the previous one left, so the picks of all
 * workers form one IPVS sequence. A pick that loses MAX_ATTEMPTS races in a row (other engines
 * kept committing) answers without committing, which can repeat one server once; `unsynced`
 * counts those. Updates on server-list changes are applied by every engine, so they must be
 * idempotent (rr.ts, wrr.ts say how theirs are).
 */
export const SLOT_INTS = 1;
/** lost races before a pick answers without committing */
export const MAX_ATTEMPTS = 64;

export class StateSlot {
  readonly #a: Int32Array;
  readonly #at: number;
  /** picks that answered without committing (lost MAX_ATTEMPTS races) */
  unsynced = 0;

  /** slot `index` of `a` (a private array when index is -1) */
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

  /** the state now (0 until first set) */
  load(): number {
    return Atomics.load(this.#a, this.#at);
  }

  /** Replace `seen` (from load) by `next` unless another engine changed it since; false: retry. */
  swap(seen: number, next: number): boolean {
    return Atomics.compareExchange(this.#a, this.#at, seen, next | 0) === seen;
  }

  /** Count a pick that answered without committing. */
  gaveUp(): void {
    this.unsynced++;
  }
}

/**
 * Run `f`, a new engine applying its start-up operations, without moving the shared slots:
 * adding servers to rr/wrr resets their cursors (to the head, as the kernel does on a list
 * change), which is right for a change made while the director runs, but at start the control
 * plane may have set the slots already (a restart's cursors, core/carry-over.ts), and the
 * workers' engines start one after the other while the first ones already pick. So every slot
 * that was set (not 0, a fresh slot) and that `f` changed is put back to what it held before,
 * unless another engine changed it since. A fresh slot keeps what `f` made of it (wrr's
 * initial phase, as the kernel's).
 */
export function keepingSlots(shared: Int32Array | undefined, f: () => void): void {
  if (shared === undefined) return f();
  const before = shared.slice();
  const after = (f(), shared.slice());
  for (let i = 0; i < after.length; i++) if (before[i] !== 0 && after[i] !== before[i]) Atomics.compareExchange(shared, i, after[i]!, before[i]!);
}
