/**
 * What the engine knows about the packet in hand (IPVS's `struct ip_vs_iphdr`): one instance per
 * engine, filled once per packet by `parse`, then read by every step. Addresses are int32 (see
 * wire/ipv4.ts readI32) so they stay unboxed.
 */
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, IPV4, Ipv4Check, Ipv4View, readI32 } from '../wire/ipv4.js';
import { TcpCheck, TcpView } from '../wire/tcp.js';
import { UdpCheck, UdpView } from '../wire/udp.js';
import { Outcome, PacketFlag, type OutcomeCode } from './verdict.js';

/** Drop reason for each failed Ipv4View.check() (index = Ipv4Check code). */
const IPV4_CHECK_OUTCOME: readonly OutcomeCode[] = [
  Outcome.DropTruncated, // Ok (unused)
  Outcome.DropTruncated,
  Outcome.DropBadVersion,
  Outcome.DropBadHeaderLength,
  Outcome.DropBadTotalLength,
];

export class PacketMeta {
  buf: Buffer = Buffer.alloc(0);
  /** offset of the IPv4 header, of the L4 header; L4 length (total length - header length) */
  off = 0;
  l4off = 0;
  l4len = 0;
  /** IPv4 total length, bytes (what the counters count) */
  total = 0;
  proto = 0;
  saddr = 0;
  daddr = 0;
  /** TCP/UDP ports; 0 for ICMP */
  sport = 0;
  dport = 0;
  /** TCP flags; 0 for UDP and ICMP */
  tflags = 0;
  /** the L4 checksum holds a partial (pseudo-header) sum: virtio NEEDS_CSUM */
  partial = false;
  /** why parse() refused the packet */
  stop: OutcomeCode = Outcome.DropTruncated;
  readonly ip = new Ipv4View();
  readonly #tcp = new TcpView();
  readonly #udp = new UdpView();

  /**
   * Read the IPv4 packet at buf[off, off+len). True for a well-formed unfragmented TCP, UDP or
   * ICMP packet (every field above set); false with `stop` set to the outcome otherwise
   * (malformed: a drop; another protocol: PassProtocol).
   */
  parse(buf: Buffer, off: number, len: number, pflags: number): boolean {
    const ip = this.ip.reset(buf, off, len);
    const chk = ip.check();
    if (chk !== Ipv4Check.Ok) return this.#refuse(IPV4_CHECK_OUTCOME[chk]!);
    if (!ip.checksumOk()) return this.#refuse(Outcome.DropBadIpChecksum);
    if (ip.isFragment) return this.#refuse(Outcome.DropFragment);
    const proto = ip.protocol;
    const hl = ip.headerLength;
    const total = ip.totalLength;
    const l4off = off + hl;
    const l4len = total - hl;
    this.tflags = 0;
    if (proto === IPPROTO_TCP) {
      const t = this.#tcp.reset(buf, l4off);
      if (t.check(l4len) !== TcpCheck.Ok) return this.#refuse(Outcome.DropBadTcpHeader);
      this.sport = t.srcPort;
      this.dport = t.dstPort;
      this.tflags = t.flags;
    } else if (proto === IPPROTO_UDP) {
      const u = this.#udp.reset(buf, l4off);
      if (u.check(l4len) !== UdpCheck.Ok) return this.#refuse(Outcome.DropBadUdpLength);
      this.sport = u.srcPort;
      this.dport = u.dstPort;
    } else if (proto === IPPROTO_ICMP) {
      this.sport = 0;
      this.dport = 0;
    } else {
      return this.#refuse(Outcome.PassProtocol);
    }
    this.buf = buf;
    this.off = off;
    this.l4off = l4off;
    this.l4len = l4len;
    this.total = total;
    this.proto = proto;
    this.saddr = readI32(buf, off + IPV4.SRC);
    this.daddr = readI32(buf, off + IPV4.DST);
    this.partial = (pflags & PacketFlag.CsumPartial) !== 0;
    return true;
  }

  #refuse(o: OutcomeCode): boolean {
    this.stop = o;
    return false;
  }
}
