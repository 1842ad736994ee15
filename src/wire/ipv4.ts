/**
 * IPv4 header view (RFC 791 §3.1) over a byte buffer. Zero allocation: one instance is kept
 * per worker and `reset()` onto each packet.
 *
 *    0                   1                   2                   3
 *    0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
 *   +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
 *   |Version|  IHL  |Type of Service|          Total Length         |  0
 *   |         Identification        |Flags|      Fragment Offset    |  4
 *   |  Time to Live |    Protocol   |         Header Checksum       |  8
 *   |                       Source Address                          | 12
 *   |                    Destination Address                        | 16
 *   |                    Options                    |    Padding    | 20..
 *
 * Contract: after `check()` returns `Ipv4Check.Ok`, every getter reads inside
 * [off, off + totalLength) and `totalLength <= len`. Before that, getters may read past the
 * packet (they never throw; a typed array yields undefined -> NaN/0) and must not be trusted.
 */
import { finish, sumBytes } from './checksum.js';

export const IPV4_MIN_HEADER = 20;

export const IPV4 = {
  VER_IHL: 0,
  TOS: 1,
  TOTAL_LENGTH: 2,
  ID: 4,
  FLAGS_FRAG: 6,
  TTL: 8,
  PROTOCOL: 9,
  CHECKSUM: 10,
  SRC: 12,
  DST: 16,
} as const;

export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;

/** Result of `Ipv4View.check()`; non-zero values are named drop causes. */
export const Ipv4Check = {
  Ok: 0,
  /** fewer than 20 bytes, or fewer bytes than the header/total length claims */
  Truncated: 1,
  BadVersion: 2,
  /** IHL < 5 */
  BadHeaderLength: 3,
  /** total length < header length */
  BadTotalLength: 4,
} as const;
export type Ipv4CheckResult = (typeof Ipv4Check)[keyof typeof Ipv4Check];

const MF = 0x2000;
const OFFSET_MASK = 0x1fff;

export class Ipv4View {
  buf: Uint8Array;
  off: number;
  /** bytes available in the buffer from `off` (may exceed totalLength: link padding) */
  len: number;

  constructor(buf: Uint8Array = new Uint8Array(0), off = 0, len = buf.length - off) {
    this.buf = buf;
    this.off = off;
    this.len = len;
  }

  reset(buf: Uint8Array, off: number, len: number): this {
    this.buf = buf;
    this.off = off;
    this.len = len;
    return this;
  }

  /** Validate lengths and version; see the module contract. Written out in full: it runs for
   *  every packet, and a shared helper with checkQuoted measured as a call V8 did not inline. */
  check(): Ipv4CheckResult {
    if (this.len < IPV4_MIN_HEADER) return Ipv4Check.Truncated;
    const b = this.buf;
    const o = this.off;
    if (b[o]! >>> 4 !== 4) return Ipv4Check.BadVersion;
    const hl = (b[o]! & 15) << 2;
    if (hl < IPV4_MIN_HEADER) return Ipv4Check.BadHeaderLength;
    const tl = (b[o + 2]! << 8) | b[o + 3]!;
    if (tl < hl) return Ipv4Check.BadTotalLength;
    if (tl > this.len) return Ipv4Check.Truncated;
    return Ipv4Check.Ok;
  }

  /**
   * Validate the header of a datagram quoted in an ICMP error (RFC 792: the header and at least
   * its first 64 data bits): version 4 and a complete header of legal length, as check() but
   * without the total length (the quote is cut short); after Ok every header getter reads
   * inside `len`.
   */
  checkQuoted(): Ipv4CheckResult {
    if (this.len < IPV4_MIN_HEADER) return Ipv4Check.Truncated;
    const b0 = this.buf[this.off]!;
    if (b0 >>> 4 !== 4) return Ipv4Check.BadVersion;
    const hl = (b0 & 15) << 2;
    if (hl < IPV4_MIN_HEADER) return Ipv4Check.BadHeaderLength;
    return hl > this.len ? Ipv4Check.Truncated : Ipv4Check.Ok;
  }

  get version(): number {
    return this.buf[this.off]! >>> 4;
  }
  /** header length in octets (IHL * 4) */
  get headerLength(): number {
    return (this.buf[this.off]! & 15) << 2;
  }
  get tos(): number {
    return this.buf[this.off + IPV4.TOS]!;
  }
  /** total length in octets, header included */
  get totalLength(): number {
    return (this.buf[this.off + 2]! << 8) | this.buf[this.off + 3]!;
  }
  get id(): number {
    return (this.buf[this.off + 4]! << 8) | this.buf[this.off + 5]!;
  }
  /** the 16-bit flags + fragment offset word */
  get flagsFrag(): number {
    return (this.buf[this.off + 6]! << 8) | this.buf[this.off + 7]!;
  }
  /** true for any fragment: more-fragments set or a non-zero offset */
  get isFragment(): boolean {
    return (this.flagsFrag & (MF | OFFSET_MASK)) !== 0;
  }
  /** fragment offset in octets */
  get fragmentOffset(): number {
    return (this.flagsFrag & OFFSET_MASK) << 3;
  }
  get ttl(): number {
    return this.buf[this.off + IPV4.TTL]!;
  }
  get protocol(): number {
    return this.buf[this.off + IPV4.PROTOCOL]!;
  }
  get checksum(): number {
    return (this.buf[this.off + 10]! << 8) | this.buf[this.off + 11]!;
  }
  /** source address, uint32 host order */
  get src(): number {
    return readU32(this.buf, this.off + IPV4.SRC);
  }
  /** destination address, uint32 host order */
  get dst(): number {
    return readU32(this.buf, this.off + IPV4.DST);
  }

  set ttl(v: number) {
    this.buf[this.off + IPV4.TTL] = v;
  }
  set checksum(v: number) {
    this.buf[this.off + 10] = v >>> 8;
    this.buf[this.off + 11] = v & 0xff;
  }
  set src(v: number) {
    writeU32(this.buf, this.off + IPV4.SRC, v);
  }
  set dst(v: number) {
    writeU32(this.buf, this.off + IPV4.DST, v);
  }

  /** True when the header checksum verifies (sum over the header folds to 0xffff).
   *  Dedicated integer loop: at most 30 words, so the sum stays far below 2^31. */
  checksumOk(): boolean {
    const b = this.buf;
    const end = this.off + this.headerLength;
    let s = 0;
    for (let k = this.off; k < end; k += 2) s += (b[k]! << 8) | b[k + 1]!;
    s = (s & 0xffff) + (s >>> 16);
    s = (s & 0xffff) + (s >>> 16);
    return s === 0xffff;
  }

  /** Recompute the header checksum in full. */
  fillChecksum(): void {
    this.checksum = 0;
    this.checksum = finish(sumBytes(this.buf, this.off, this.headerLength, 0));
  }
}

export function readU16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}
export function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 8;
  b[o + 1] = v & 0xff;
}
export function readU32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}
/** Big-endian 32-bit read as a *signed* int32. The hot path keeps IPv4 addresses in this form:
 *  an int32 is always a small integer (Smi) in V8 on 64-bit Node, so passing it through calls
 *  never boxes it, unlike a uint32 >= 2^31, which is a heap number. `>>> 0` gives the uint32. */
export function readI32(b: Uint8Array, o: number): number {
  return (b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!;
}
export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v >>> 24;
  b[o + 1] = (v >>> 16) & 0xff;
  b[o + 2] = (v >>> 8) & 0xff;
  b[o + 3] = v & 0xff;
}
