/**
 * Linux's hsiphash on 64-bit kernels (lib/siphash.c, BITS_PER_LONG == 64): SipHash-1-3 with a
 * 128-bit key given as two u64 words, truncated to 32 bits. Only the case IPVS mh uses is
 * implemented: a 4-byte message (one u32 in little-endian byte order), so the message is
 * folded into the final block b = (4 << 56) | v.
 *
 * 64-bit words are held as (hi, lo) uint32 pairs in a scratch Uint32Array so nothing is
 * allocated per call (mh hashes on every new connection).
 */

const S = new Uint32Array(8); // v0h v0l v1h v1l v2h v2l v3h v3l

function add(a: number, b: number): void {
  const lo = S[a + 1]! + S[b + 1]!;
  S[a] = (S[a]! + S[b]! + (lo > 0xffffffff ? 1 : 0)) >>> 0;
  S[a + 1] = lo >>> 0;
}
function rotl(a: number, r: number): void {
  let hi = S[a]!;
  let lo = S[a + 1]!;
  if (r >= 32) {
    const t = hi;
    hi = lo;
    lo = t;
    r -= 32;
  }
  if (r > 0) {
    const nh = ((hi << r) | (lo >>> (32 - r))) >>> 0;
    const nl = ((lo << r) | (hi >>> (32 - r))) >>> 0;
    hi = nh;
    lo = nl;
  }
  S[a] = hi;
  S[a + 1] = lo;
}
function xor(a: number, b: number): void {
  S[a] = (S[a]! ^ S[b]!) >>> 0;
  S[a + 1] = (S[a + 1]! ^ S[b + 1]!) >>> 0;
}
const V0 = 0;
const V1 = 2;
const V2 = 4;
const V3 = 6;
function sipround(): void {
  add(V0, V1);
  rotl(V1, 13);
  xor(V1, V0);
  rotl(V0, 32);
  add(V2, V3);
  rotl(V3, 16);
  xor(V3, V2);
  add(V0, V3);
  rotl(V3, 21);
  xor(V3, V0);
  add(V2, V1);
  rotl(V1, 17);
  xor(V1, V2);
  rotl(V2, 32);
}

/** A hsiphash key: two u64 words, each given as (hi, lo) uint32. */
export interface HsipKey {
  k0h: number;
  k0l: number;
  k1h: number;
  k1l: number;
}

/** hsiphash(&v, 4, key) for a u32 v, as a uint32. */
export function hsiphashU32(v: number, k: HsipKey): number {
  // PREAMBLE: "somepseudorandomlygeneratedbytes" constants xor key
  S[0] = 0x736f6d65 ^ k.k0h;
  S[1] = 0x70736575 ^ k.k0l;
  S[2] = 0x646f7261 ^ k.k1h;
  S[3] = 0x6e646f6d ^ k.k1l;
  S[4] = 0x6c796765 ^ k.k0h;
  S[5] = 0x6e657261 ^ k.k0l;
  S[6] = 0x74656462 ^ k.k1h;
  S[7] = 0x79746573 ^ k.k1l;
  const bh = 0x04000000; // len (4) << 56
  const bl = v >>> 0;
  // POSTAMBLE
  S[6] = (S[6]! ^ bh) >>> 0;
  S[7] = (S[7]! ^ bl) >>> 0;
  sipround();
  S[0] = (S[0]! ^ bh) >>> 0;
  S[1] = (S[1]! ^ bl) >>> 0;
  S[5] = (S[5]! ^ 0xff) >>> 0;
  sipround();
  sipround();
  sipround();
  return (S[1]! ^ S[3]! ^ S[5]! ^ S[7]!) >>> 0;
}
