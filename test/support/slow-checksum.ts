/**
 * Deliberately slow, obviously-correct Internet checksum (RFC 1071) used as the oracle for the
 * fast code: words are added one at a time with the end-around carry applied at every step.
 * Test-only.
 */
export function slowSum(bytes: Uint8Array): number {
  let s = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    const hi = bytes[i]!;
    const lo = i + 1 < bytes.length ? bytes[i + 1]! : 0;
    s += hi * 256 + lo;
    if (s > 0xffff) s -= 0xffff;
  }
  return s;
}

export function slowChecksum(bytes: Uint8Array): number {
  return 0xffff - slowSum(bytes);
}

function u32(a: number): number[] {
  return [(a >>> 24) & 255, (a >>> 16) & 255, (a >>> 8) & 255, a & 255];
}

/** L4 checksum over the IPv4 pseudo-header and the segment (with its checksum field as given). */
export function slowL4Checksum(src: number, dst: number, proto: number, segment: Uint8Array): number {
  const pseudo = [...u32(src), ...u32(dst), 0, proto, segment.length >> 8, segment.length & 255];
  return slowChecksum(Uint8Array.from([...pseudo, ...segment]));
}

/** True when an IPv4 packet's header checksum and (TCP/UDP/ICMP) L4 checksum both verify.
 *  UDP checksum 0 counts as valid ("none"). */
export function packetChecksumsOk(pkt: Uint8Array): { ip: boolean; l4: boolean } {
  const ihl = (pkt[0]! & 15) * 4;
  const total = (pkt[2]! << 8) | pkt[3]!;
  const ip = slowSum(pkt.subarray(0, ihl)) === 0xffff;
  const proto = pkt[9]!;
  const seg = pkt.subarray(ihl, total);
  const src = ((pkt[12]! << 24) | (pkt[13]! << 16) | (pkt[14]! << 8) | pkt[15]!) >>> 0;
  const dst = ((pkt[16]! << 24) | (pkt[17]! << 16) | (pkt[18]! << 8) | pkt[19]!) >>> 0;
  let l4 = true;
  if (proto === 6) l4 = slowL4Checksum(src, dst, proto, seg) === 0 || slowL4Checksum(src, dst, proto, seg) === 0xffff;
  else if (proto === 17) {
    const c = (seg[6]! << 8) | seg[7]!;
    l4 = c === 0 || slowL4Checksum(src, dst, proto, seg) === 0 || slowL4Checksum(src, dst, proto, seg) === 0xffff;
  } else if (proto === 1) l4 = slowSum(seg) === 0xffff || slowSum(seg) === 0;
  return { ip, l4 };
}
