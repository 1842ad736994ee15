/**
 * Internet checksum (RFC 1071) and its incremental update (RFC 1624, equation 3).
 *
 * Conventions used throughout ulvs:
 * - A *sum* is an unfolded one's-complement accumulator held in a JS number (safe up to 2^53,
 *   i.e. far beyond any 64 KiB packet); `fold()` reduces it to 16 bits.
 * - A *checksum* is the 16-bit value stored in a header: `~fold(sum) & 0xffff`.
 * - A *partial* checksum is what a packet marked NEEDS_CSUM (virtio_net_hdr, CHECKSUM_PARTIAL)
 *   carries in its L4 checksum field: the folded pseudo-header sum, NOT complemented. The
 *   kernel or NIC later adds the L4 header+payload and complements (perf-notes §2.4).
 *
 * Nothing here allocates; all functions are monomorphic over `Uint8Array` (Buffer included).
 */

/** One's-complement sum of `len` bytes at `off` as big-endian 16-bit words, added to `initial`.
 *  An odd trailing byte is padded with a zero byte (RFC 1071). Result is unfolded. */
export function sumBytes(b: Uint8Array, off: number, len: number, initial: number): number {
  let s = initial;
  const end = off + (len & ~1);
  let i = off;
  // Unrolled by 4 words; the accumulator is a double, so carries are deferred to fold().
  for (; i + 8 <= end; i += 8) {
    s += ((b[i]! << 8) | b[i + 1]!) + ((b[i + 2]! << 8) | b[i + 3]!) + ((b[i + 4]! << 8) | b[i + 5]!) + ((b[i + 6]! << 8) | b[i + 7]!);
  }
  for (; i < end; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (len & 1) s += b[end]! << 8;
  return s;
}

/** Fold an unfolded sum to 16 bits with end-around carry. */
export function fold(sum: number): number {
  let s = sum;
  // A double may exceed 32 bits; reduce with division first, then the classic folds.
  while (s > 0xffff) s = (s % 0x10000) + Math.floor(s / 0x10000);
  return s;
}

/** The checksum to store for a sum: ones' complement of the folded sum. */
export function finish(sum: number): number {
  return ~fold(sum) & 0xffff;
}

/** Unfolded IPv4 pseudo-header sum (RFC 793 §3.1 / RFC 768): src, dst, zero+proto, L4 length. */
export function pseudoHeaderV4(src: number, dst: number, proto: number, l4len: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + proto + l4len;
}

/** Fold a sum known to be < 2^32 (cheaper than fold() on the hot path). */
function fold32(s: number): number {
  s = (s & 0xffff) + (s >>> 16);
  return (s & 0xffff) + (s >>> 16);
}

/** RFC 1624 eq. 3: new checksum after one 16-bit word changed from `oldW` to `newW`. */
export function csumReplace16(check: number, oldW: number, newW: number): number {
  return ~fold32((~check & 0xffff) + (~oldW & 0xffff) + (newW & 0xffff)) & 0xffff;
}

/** RFC 1624 eq. 3 for a 32-bit field (an IPv4 address) changed from `oldV` to `newV`. */
export function csumReplace32(check: number, oldV: number, newV: number): number {
  return (
    ~fold32(
      (~check & 0xffff) + (~(oldV >>> 16) & 0xffff) + (~oldV & 0xffff) + (newV >>> 16) + (newV & 0xffff),
    ) & 0xffff
  );
}

/** RFC 1624 eq. 3 for a NAT rewrite: a 32-bit address and a 16-bit port changed together.
 *  This is the TCP/UDP checksum update IPVS does in `tcp_fast_csum_update`. */
export function csumReplaceAddrPort(check: number, oldA: number, newA: number, oldP: number, newP: number): number {
  return (
    ~fold32(
      (~check & 0xffff) +
        (~(oldA >>> 16) & 0xffff) + (~oldA & 0xffff) + (newA >>> 16) + (newA & 0xffff) +
        (~oldP & 0xffff) + (newP & 0xffff),
    ) & 0xffff
  );
}

/** Update a *partial* (pseudo-header only, not complemented) checksum field for an address
 *  change. Ports are not part of the pseudo-header, so a port change leaves it alone. */
export function partialReplace32(partial: number, oldV: number, newV: number): number {
  return fold32((partial & 0xffff) + (~(oldV >>> 16) & 0xffff) + (~oldV & 0xffff) + (newV >>> 16) + (newV & 0xffff));
}
