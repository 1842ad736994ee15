/**
 * The VS/NAT rewrite (ipvs-spec §4.3-4.5), in place, with incremental checksums:
 *   inbound  (client -> VIP):  destination VIP:vport -> RIP:rport   (IPVS dnat_handler)
 *   outbound (RS -> client):   source      RIP:rport -> VIP:vport   (IPVS snat_handler)
 *
 * Checksums:
 * - IPv4 header: RFC 1624 update for the changed address (equal to a full recompute).
 * - TCP/UDP, normal packet: RFC 1624 update for address + port together.
 * - Packet marked CsumPartial (NEEDS_CSUM): the L4 field holds the pseudo-header sum, so only
 *   the address change is applied to it; ports are covered when the checksum is completed.
 * - UDP with checksum 0 ("none"): a full checksum is computed, as IPVS does; a computed 0 is
 *   sent as 0xffff (RFC 768).
 */
import { csumReplace32, csumReplaceAddrPort, finish, partialReplace32, pseudoHeaderV4, sumBytes } from '../wire/checksum.js';
import { IPPROTO_TCP, IPV4, readI32, readU16, writeU16, writeU32 } from '../wire/ipv4.js';
import { TCP } from '../wire/tcp.js';
import { UDP } from '../wire/udp.js';

/** Which endpoint to rewrite: the destination (requests) or the source (replies). A small
 *  integer, not an object of offsets: the offsets below are then constants V8 folds in. */
export const NatSide = { DST: 0, SRC: 1 } as const;
export type NatSideCode = (typeof NatSide)[keyof typeof NatSide];
/** byte offset of the destination / source port in a TCP or UDP header */
const DST_PORT = 2;
const SRC_PORT = 0;

/**
 * Rewrite one endpoint of a TCP or UDP packet.
 * @param ipOff   offset of the IPv4 header
 * @param l4Off   offset of the TCP/UDP header
 * @param l4Len   IP payload length (total length - header length)
 * @param side    NatSide.DST (requests) or NatSide.SRC (replies)
 */
export function natRewrite(
  b: Uint8Array,
  ipOff: number,
  l4Off: number,
  l4Len: number,
  proto: number,
  side: NatSideCode,
  newAddr: number,
  newPort: number,
  partial: boolean,
): void {
  const dst = side === NatSide.DST;
  const aOff = ipOff + (dst ? IPV4.DST : IPV4.SRC);
  const oldAddr = readI32(b, aOff);
  writeU32(b, aOff, newAddr);
  writeU16(b, ipOff + IPV4.CHECKSUM, csumReplace32(readU16(b, ipOff + IPV4.CHECKSUM), oldAddr, newAddr));

  const pOff = l4Off + (dst ? DST_PORT : SRC_PORT);
  const oldPort = readU16(b, pOff);
  writeU16(b, pOff, newPort);

  if (proto === IPPROTO_TCP) {
    const cOff = l4Off + TCP.CHECKSUM;
    const c = readU16(b, cOff);
    writeU16(b, cOff, partial ? partialReplace32(c, oldAddr, newAddr) : csumReplaceAddrPort(c, oldAddr, newAddr, oldPort, newPort));
    return;
  }
  // UDP
  const cOff = l4Off + UDP.CHECKSUM;
  const c = readU16(b, cOff);
  if (partial) {
    writeU16(b, cOff, partialReplace32(c, oldAddr, newAddr));
  } else if (c === 0) {
    const pseudo = pseudoHeaderV4(readI32(b, ipOff + IPV4.SRC), readI32(b, ipOff + IPV4.DST), proto, l4Len);
    const full = finish(sumBytes(b, l4Off, l4Len, pseudo));
    writeU16(b, cOff, full === 0 ? 0xffff : full);
  } else {
    const n = csumReplaceAddrPort(c, oldAddr, newAddr, oldPort, newPort);
    writeU16(b, cOff, n === 0 ? 0xffff : n);
  }
}
