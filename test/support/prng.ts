/** Small seeded PRNG (xorshift32) for reproducible random tests. Test-only. */
export class Prng {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 0x9e3779b9;
  }
  /** uniform uint32 */
  u32(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }
  /** uniform integer in [0, n) */
  int(n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n);
  }
  /** uniform float in [0, 1) */
  float(): number {
    return this.u32() / 0x100000000;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.u32() & 0xff;
    return b;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
}
