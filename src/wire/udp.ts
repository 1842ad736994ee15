/**
 * UDP header view (RFC 768): | Source Port (0) | Destination Port (2) | Length (4) | Checksum (6) |
 * A checksum of 0 means "no checksum" over IPv4; a computed 0 is sent as 0xffff.
 *
 * Contract: after `check(l4len)` returns Ok, 8 <= length <= l4len.
 */
import { readU16, writeU16 } from './ipv4.js';
import { PortsView } from './view.js';

export const UDP_HEADER = 8;
export const UDP = { SPORT: 0, DPORT: 2, LENGTH: 4, CHECKSUM: 6 } as const;

export const UdpCheck = { Ok: 0, Truncated: 1, BadLength: 2 } as const;
export type UdpCheckResult = (typeof UdpCheck)[keyof typeof UdpCheck];

export class UdpView extends PortsView {
  check(l4len: number): UdpCheckResult {
    if (l4len < UDP_HEADER) return UdpCheck.Truncated;
    const ul = readU16(this.buf, this.off + UDP.LENGTH);
    if (ul < UDP_HEADER || ul > l4len) return UdpCheck.BadLength;
    return UdpCheck.Ok;
  }
  /** datagram length in octets, header included */
  get length(): number {
    return readU16(this.buf, this.off + UDP.LENGTH);
  }
  get checksum(): number {
    return readU16(this.buf, this.off + UDP.CHECKSUM);
  }
  set checksum(v: number) {
    writeU16(this.buf, this.off + UDP.CHECKSUM, v);
  }
}
