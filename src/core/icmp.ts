/**
 * ICMP handling for VS/NAT (ipvs-spec §4.6):
 * - translation of ICMP errors that quote a tracked connection, both directions
 *   (IPVS ip_vs_nat_icmp): outer address, quoted address and quoted port are rewritten, the
 *   quoted IP header checksum and the ICMP checksum are recomputed in full, the quoted L4
 *   checksum is left alone;
 * - generation of "port unreachable" for a client whose service has no usable real server.
 */
import { csumReplace32, finish, sumBytes } from '../wire/checksum.js';
import { IPPROTO_ICMP, IPV4, readI32, readU16, writeU16, writeU32 } from '../wire/ipv4.js';

/**
 * Rewrite an ICMP error about a connection.
 * @param toClient true for an error from the real-server side (quotes client -> RIP):
 *   outer source, quoted destination and quoted destination port become VIP:vport.
 *   false for an error from the client side (quotes VIP -> client): outer destination,
 *   quoted source and quoted source port become RIP:rport.
 * @param eOff offset of the quoted IPv4 header; eHl its length. Caller guarantees the quoted
 *   header and the first 4 bytes after it (the ports) are inside the packet.
 */
export function icmpTranslate(
  b: Uint8Array,
  ipOff: number,
  icmpOff: number,
  icmpLen: number,
  eOff: number,
  eHl: number,
  toClient: boolean,
  addr: number,
  port: number,
): void {
  const outerAt = ipOff + (toClient ? IPV4.SRC : IPV4.DST);
  const oldOuter = readI32(b, outerAt);
  writeU32(b, outerAt, addr);
  writeU16(b, ipOff + IPV4.CHECKSUM, csumReplace32(readU16(b, ipOff + IPV4.CHECKSUM), oldOuter, addr));

  writeU32(b, eOff + (toClient ? IPV4.DST : IPV4.SRC), addr);
  writeU16(b, eOff + IPV4.CHECKSUM, 0);
  writeU16(b, eOff + IPV4.CHECKSUM, finish(sumBytes(b, eOff, eHl, 0)));
  writeU16(b, eOff + eHl + (toClient ? 2 : 0), port);

  writeU16(b, icmpOff + 2, 0);
  writeU16(b, icmpOff + 2, finish(sumBytes(b, icmpOff, icmpLen, 0)));
}

/** Bytes of the offending datagram quoted in a generated error: as Linux, fill up to 576. */
export const ICMP_QUOTE_MAX = 576 - 20 - 8;

/**
 * Write an ICMP destination-unreachable (RFC 792) about the packet at `origOff` into `out`
 * (which must hold 576 bytes). Source = the address the client tried (the VIP), destination
 * = the client. Returns the length written.
 */
export function buildIcmpUnreach(
  out: Uint8Array,
  orig: Uint8Array,
  origOff: number,
  origLen: number,
  code: number,
  id: number,
): number {
  const quote = origLen < ICMP_QUOTE_MAX ? origLen : ICMP_QUOTE_MAX;
  const total = 20 + 8 + quote;
  out[0] = 0x45;
  out[1] = 0xc0; // precedence "internetwork control", as Linux's icmp_send
  writeU16(out, 2, total);
  writeU16(out, 4, id & 0xffff);
  writeU16(out, 6, 0);
  out[8] = 64;
  out[9] = IPPROTO_ICMP;
  writeU32(out, IPV4.SRC, readI32(orig, origOff + IPV4.DST));
  writeU32(out, IPV4.DST, readI32(orig, origOff + IPV4.SRC));
  writeU16(out, 10, 0);
  writeU16(out, 10, finish(sumBytes(out, 0, 20, 0)));
  out[20] = 3;
  out[21] = code;
  writeU32(out, 24, 0);
  writeU16(out, 22, 0);
  for (let k = 0; k < quote; k++) out[28 + k] = orig[origOff + k]!;
  writeU16(out, 22, finish(sumBytes(out, 20, 8 + quote, 0)));
  return total;
}
