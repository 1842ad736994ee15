/** xorshift32 from a seed: the engine's default uniform uint32 random source (the core never
 *  calls Math.random). A seed of 0 is taken as 1 (xorshift's all-zero state is a fixed point). */
export function xorshift(seed: number): () => number {
  let x = seed || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}
