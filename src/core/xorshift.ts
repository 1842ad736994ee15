/** xorshift32 from a seed: the engine's default random source, uniform uint32 (the core never
 *  calls Math.random; production passes its own source, tests a seed). */
export function xorshift(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}
