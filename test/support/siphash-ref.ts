/** Straightforward BigInt SipHash-c-d (Aumasson & Bernstein), the oracle for sched/hsiphash.ts. Test-only. */
const M64 = (1n << 64n) - 1n;
const rotl = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & M64;

export function sipHashRef(c: number, d: number, k0: bigint, k1: bigint, msg: Uint8Array): bigint {
  let v0 = 0x736f6d6570736575n ^ k0;
  let v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0;
  let v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & M64; v1 = rotl(v1, 13n); v1 ^= v0; v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & M64; v3 = rotl(v3, 16n); v3 ^= v2;
    v0 = (v0 + v3) & M64; v3 = rotl(v3, 21n); v3 ^= v0;
    v2 = (v2 + v1) & M64; v1 = rotl(v1, 17n); v1 ^= v2; v2 = rotl(v2, 32n);
  };
  const full = msg.length - (msg.length % 8);
  for (let i = 0; i < full; i += 8) {
    let m = 0n;
    for (let j = 7; j >= 0; j--) m = (m << 8n) | BigInt(msg[i + j]!);
    v3 ^= m;
    for (let r = 0; r < c; r++) round();
    v0 ^= m;
  }
  let b = BigInt(msg.length & 255) << 56n;
  for (let j = msg.length - 1; j >= full; j--) b |= BigInt(msg[j]!) << BigInt(8 * (j - full));
  v3 ^= b;
  for (let r = 0; r < c; r++) round();
  v0 ^= b;
  v2 ^= 0xffn;
  for (let r = 0; r < d; r++) round();
  return (v0 ^ v1 ^ v2 ^ v3) & M64;
}

/** Linux hsiphash (64-bit) of a u32 in little-endian order: SipHash-1-3 truncated to 32 bits. */
export function hsiphashRef(v: number, k0: bigint, k1: bigint): number {
  const msg = Uint8Array.from([v & 255, (v >>> 8) & 255, (v >>> 16) & 255, (v >>> 24) & 255]);
  return Number(sipHashRef(1, 3, k0, k1, msg) & 0xffffffffn);
}
