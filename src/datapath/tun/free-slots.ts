/**
 * The free slots of one worker's own range (the Offloader's, offloader.ts): a stack of slot
 * indexes that also knows each slot's position, so a given slot can be taken out (a restart
 * keeps a connection in the slot it had). All operations O(1), nothing allocated.
 */
export class FreeSlots {
  readonly #stack: Int32Array;
  /** slot -> its position in #stack, -1 when in use */
  readonly #pos: Int32Array;
  #top = 0;

  /** slots 0 .. count-1, all free; popped in increasing order */
  constructor(count: number) {
    this.#stack = new Int32Array(count);
    this.#pos = new Int32Array(count);
    for (let i = count - 1; i >= 0; i--) this.push(i);
  }

  /** free slots now */
  get size(): number {
    return this.#top;
  }
  has(s: number): boolean {
    return this.#pos[s]! >= 0;
  }
  /** s (not free) is free again */
  push(s: number): void {
    this.#pos[s] = this.#top;
    this.#stack[this.#top++] = s;
  }
  /** a free slot, taken (size must be > 0) */
  pop(): number {
    const s = this.#stack[--this.#top]!;
    this.#pos[s] = -1;
    return s;
  }
  /** take free slot s out */
  take(s: number): void {
    const i = this.#pos[s]!;
    const last = this.#stack[--this.#top]!;
    this.#stack[i] = last;
    this.#pos[last] = i;
    this.#pos[s] = -1;
  }
}
