/**
 * TCP header view (RFC 9293 §3.1). Offsets relative to the start of the TCP header.
 *
 *   | Source Port (0) | Destination Port (2) |
 *   | Sequence Number (4)                    |
 *   | Acknowledgment Number (8)              |
 *   |DOff(12)| Flags (13) | Window (14)      |
 *   | Checksum (16)   | Urgent Pointer (18)  |
 *
 * Contract: after `check(l4len)` returns Ok, every getter reads inside the segment.
 */
import { readU16, readU32, writeU16 } from './ipv4.js';
import { PortsView } from './view.js';

export const TCP_MIN_HEADER = 20;
export const TCP = { SPORT: 0, DPORT: 2, SEQ: 4, ACK: 8, DOFF: 12, FLAGS: 13, WINDOW: 14, CHECKSUM: 16, URGENT: 18 } as const;

export const TcpFlag = { FIN: 0x01, SYN: 0x02, RST: 0x04, PSH: 0x08, ACK: 0x10, URG: 0x20, ECE: 0x40, CWR: 0x80 } as const;

export const TcpCheck = { Ok: 0, Truncated: 1, BadDataOffset: 2 } as const;
export type TcpCheckResult = (typeof TcpCheck)[keyof typeof TcpCheck];

export class TcpView extends PortsView {
  /** `l4len`: bytes of TCP segment (IP total length - IP header length). */
  check(l4len: number): TcpCheckResult {
    if (l4len < TCP_MIN_HEADER) return TcpCheck.Truncated;
    const hl = (this.buf[this.off + TCP.DOFF]! >>> 4) << 2;
    if (hl < TCP_MIN_HEADER || hl > l4len) return TcpCheck.BadDataOffset;
    return TcpCheck.Ok;
  }
  get seq(): number {
    return readU32(this.buf, this.off + TCP.SEQ);
  }
  get ack(): number {
    return readU32(this.buf, this.off + TCP.ACK);
  }
  /** header length in octets */
  get headerLength(): number {
    return (this.buf[this.off + TCP.DOFF]! >>> 4) << 2;
  }
  get flags(): number {
    return this.buf[this.off + TCP.FLAGS]!;
  }
  get window(): number {
    return readU16(this.buf, this.off + TCP.WINDOW);
  }
  get checksum(): number {
    return readU16(this.buf, this.off + TCP.CHECKSUM);
  }
  set checksum(v: number) {
    writeU16(this.buf, this.off + TCP.CHECKSUM, v);
  }
}
