/**
 * ICMPv4 header view (RFC 792): | Type (0) | Code (1) | Checksum (2) | rest-of-header (4..7) |
 * followed, for error messages, by the quoted IP header + at least 8 bytes of its payload.
 */
import { finish, sumBytes } from './checksum.js';
import { readU16, writeU16 } from './ipv4.js';
import { ByteView } from './view.js';

export const ICMP_HEADER = 8;

export const IcmpType = {
  ECHO_REPLY: 0,
  DEST_UNREACH: 3,
  SOURCE_QUENCH: 4,
  REDIRECT: 5,
  ECHO_REQUEST: 8,
  TIME_EXCEEDED: 11,
  PARAM_PROBLEM: 12,
} as const;

export const IcmpUnreachCode = { NET: 0, HOST: 1, PROTOCOL: 2, PORT: 3, FRAG_NEEDED: 4 } as const;

/** The ICMP error types IPVS translates (ip_vs_in_icmp / ip_vs_out_icmp). */
export function isTranslatedIcmpError(type: number): boolean {
  return type === IcmpType.DEST_UNREACH || type === IcmpType.SOURCE_QUENCH || type === IcmpType.TIME_EXCEEDED;
}

export class IcmpView extends ByteView {
  get type(): number {
    return this.buf[this.off]!;
  }
  get code(): number {
    return this.buf[this.off + 1]!;
  }
  get checksum(): number {
    return readU16(this.buf, this.off + 2);
  }
  set checksum(v: number) {
    writeU16(this.buf, this.off + 2, v);
  }
  /** next-hop MTU of a fragmentation-needed message (RFC 1191) */
  get mtu(): number {
    return readU16(this.buf, this.off + 6);
  }
  /** Recompute the checksum over `len` bytes of ICMP message. */
  fillChecksum(len: number): void {
    this.checksum = 0;
    this.checksum = finish(sumBytes(this.buf, this.off, len, 0));
  }
}
