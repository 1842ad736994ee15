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
 * idempotent (rr.ts, wrr.ts say how theirs are); they go through StateSlot.update, which an
 * engine's start-up leaves undone on a slot already set (holdSlots).
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

  /**
   * A list-change update (a server added, removed or changed): swap, except that while the slot
   * is held by an engine's start-up (holdSlots) it writes nothing and reports done.
   */
  update(seen: number, next: number): boolean {
    const held = heldSlots.get(this.#a);
    if (held !== undefined && held[this.#at] === 1) return true;
    return this.swap(seen, next);
  }

  /** Count a pick that answered without committing. */
  gaveUp(): void {
    this.unsynced++;
  }
}

/**
 * Slots held by an engine applying its start-up operations (holdSlots), by the engine's own
 * Int32Array (each worker thread has its own view of the SharedArrayBuffer): 1 = held. Only
 * list-change updates (StateSlot.update) look here, never a pick.
 */
const heldSlots = new WeakMap<Int32Array, Uint8Array>();

/**
 * Start a new engine's start-up operations without them moving the shared slots: adding
 * servers to wrr resets its cursor (to the head, as the kernel does on a list change), which is
 * right for a change made while the director runs, but at start the control plane may have set
 * the slots already (a restart's cursors, core/carry-over.ts, set on a scratch engine before
 * any worker starts), and the workers' engines start concurrently while the first ones already
 * pick. Every slot that is set now (not 0, a fresh slot) is held: the list-change updates of
 * this engine (StateSlot.update) write nothing to it until the returned release is called. A
 * fresh slot takes the updates (wrr's initial phase, as the kernel's).
 *
 * Holding, rather than letting the updates write and putting the slot back afterwards, is what
 * makes concurrent starts safe: with put-back, an engine that started while another one's
 * update had the slot at the head saw the head as "before" and kept it once its own update
 * ran after the other had put the cursor back (the restart lost wrr's cursor under load).
 * Here no start-up update ever writes a set slot, so nothing transient is there to be seen.
 */
export function holdSlots(shared: Int32Array | undefined): () => void {
  if (shared === undefined) return () => {};
  const mask = new Uint8Array(shared.length);
  for (let i = 0; i < shared.length; i++) if (Atomics.load(shared, i) !== 0) mask[i] = 1;
  heldSlots.set(shared, mask);
  return () => {
    if (heldSlots.get(shared) === mask) heldSlots.delete(shared);
  };
}

/** Run `f` (a new engine's start-up operations) with the set slots held (holdSlots). */
export function holdingSlots(shared: Int32Array | undefined, f: () => void): void {
  const release = holdSlots(shared);
  try {
    f();
  } finally {
    release();
  }
}
