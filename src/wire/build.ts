/**
 * Packet builder for tests, benchmarks and tools. Not for the hot path (it allocates).
 *
 *   ipv4({ src: '198.51.100.2', dst: '203.0.113.10' }).tcp({ sport: 40000, dport: 80, flags: 'S' }).build()
 *
 * Checksums are computed in full unless overridden: the IPv4 header checksum, and the L4
 * checksum over pseudo-header + segment. `partial: true` writes the NEEDS_CSUM form instead
 * (folded pseudo-header sum, not complemented), as a TUN with offloads delivers it.
 */
import { parseIPv4 } from './addr.js';
import { finish, fold, pseudoHeaderV4, sumBytes } from './checksum.js';
import { IPPROTO_ICMP, IPPROTO_TCP, IPPROTO_UDP, writeU16, writeU32 } from './ipv4.js';
import { TcpFlag } from './tcp.js';

export type AddrInput = string | number;

export interface Ipv4Opts {
  src: AddrInput;
  dst: AddrInput;
  ttl?: number;
  id?: number;
  tos?: number;
  /** raw flags+fragment-offset word; default 0x4000 (DF) */
  flagsFrag?: number;
  /** IP options bytes (length multiple of 4, <= 40) */
  options?: Uint8Array;
  /** override the protocol number (for unknown protocols) */
  protocol?: number;
}

export interface TcpOpts {
  sport: number;
  dport: number;
  /** letters from "FSRPAUEC" or a number */
  flags?: string | number;
  seq?: number;
  ack?: number;
  window?: number;
  /** TCP option bytes (multiple of 4) */
  options?: Uint8Array;
}

export interface UdpOpts {
  sport: number;
  dport: number;
  /** send checksum 0 ("none") */
  noChecksum?: boolean;
}

export interface IcmpOpts {
  type: number;
  code: number;
  /** bytes 4..7 of the ICMP header (e.g. MTU for frag-needed in the low 16 bits) */
  rest?: number;
  /** quoted datagram (for errors) or echo payload */
  body?: Uint8Array;
}

export interface BuildOpts {
  /** write the L4 checksum as a NEEDS_CSUM partial (pseudo-header only) */
  partial?: boolean;
  /** force the L4 checksum field to this value after computing */
  l4Checksum?: number;
  /** force the IP header checksum field to this value */
  ipChecksum?: number;
}

const toAddr = (a: AddrInput): number => (typeof a === 'number' ? a >>> 0 : parseIPv4(a));

export function tcpFlags(f: string | number | undefined): number {
  if (f === undefined) return TcpFlag.ACK;
  if (typeof f === 'number') return f;
  const map: Record<string, number> = { F: TcpFlag.FIN, S: TcpFlag.SYN, R: TcpFlag.RST, P: TcpFlag.PSH, A: TcpFlag.ACK, U: TcpFlag.URG, E: TcpFlag.ECE, C: TcpFlag.CWR };
  let v = 0;
  for (const ch of f) {
    const bit = map[ch];
    if (bit === undefined) throw new Error(`unknown TCP flag letter ${JSON.stringify(ch)}`);
    v |= bit;
  }
  return v;
}

type L4 =
  | { kind: 'tcp'; o: TcpOpts }
  | { kind: 'udp'; o: UdpOpts }
  | { kind: 'icmp'; o: IcmpOpts }
  | { kind: 'raw'; proto: number };

export class PacketBuilder {
  #ip: Ipv4Opts;
  #l4: L4 = { kind: 'raw', proto: 0 };
  #payload: Uint8Array = new Uint8Array(0);

  constructor(ip: Ipv4Opts) {
    this.#ip = ip;
  }
  tcp(o: TcpOpts): this {
    this.#l4 = { kind: 'tcp', o };
    return this;
  }
  udp(o: UdpOpts): this {
    this.#l4 = { kind: 'udp', o };
    return this;
  }
  icmp(o: IcmpOpts): this {
    this.#l4 = { kind: 'icmp', o };
    return this;
  }
  raw(proto: number): this {
    this.#l4 = { kind: 'raw', proto };
    return this;
  }
  payload(p: Uint8Array | string): this {
    this.#payload = typeof p === 'string' ? Buffer.from(p) : p;
    return this;
  }

  build(opts: BuildOpts = {}): Buffer {
    const ip = this.#ip;
    const ipOpts = ip.options ?? new Uint8Array(0);
    const ihl = 20 + ipOpts.length;
    let l4hdr: number;
    let proto: number;
    switch (this.#l4.kind) {
      case 'tcp':
        l4hdr = 20 + (this.#l4.o.options?.length ?? 0);
        proto = IPPROTO_TCP;
        break;
      case 'udp':
        l4hdr = 8;
        proto = IPPROTO_UDP;
        break;
      case 'icmp':
        l4hdr = 8;
        proto = IPPROTO_ICMP;
        break;
      case 'raw':
        l4hdr = 0;
        proto = this.#l4.proto;
        break;
    }
    const body = this.#l4.kind === 'icmp' ? (this.#l4.o.body ?? new Uint8Array(0)) : this.#payload;
    const l4len = l4hdr + body.length;
    const total = ihl + l4len;
    const b = Buffer.alloc(total);
    const src = toAddr(ip.src);
    const dst = toAddr(ip.dst);
    b[0] = 0x40 | (ihl >> 2);
    b[1] = ip.tos ?? 0;
    writeU16(b, 2, total);
    writeU16(b, 4, ip.id ?? 0x1234);
    writeU16(b, 6, ip.flagsFrag ?? 0x4000);
    b[8] = ip.ttl ?? 64;
    b[9] = ip.protocol ?? proto;
    writeU32(b, 12, src);
    writeU32(b, 16, dst);
    b.set(ipOpts, 20);
    writeU16(b, 10, opts.ipChecksum ?? finish(sumBytes(b, 0, ihl, 0)));

    const l4 = ihl;
    let csumAt = -1;
    let udpNoCsum = false;
    switch (this.#l4.kind) {
      case 'tcp': {
        const o = this.#l4.o;
        writeU16(b, l4, o.sport);
        writeU16(b, l4 + 2, o.dport);
        writeU32(b, l4 + 4, o.seq ?? 1000);
        writeU32(b, l4 + 8, o.ack ?? 0);
        b[l4 + 12] = (l4hdr >> 2) << 4;
        b[l4 + 13] = tcpFlags(o.flags);
        writeU16(b, l4 + 14, o.window ?? 65535);
        if (o.options) b.set(o.options, l4 + 20);
        csumAt = l4 + 16;
        break;
      }
      case 'udp': {
        const o = this.#l4.o;
        writeU16(b, l4, o.sport);
        writeU16(b, l4 + 2, o.dport);
        writeU16(b, l4 + 4, l4len);
        csumAt = l4 + 6;
        udpNoCsum = o.noChecksum === true;
        break;
      }
      case 'icmp': {
        const o = this.#l4.o;
        b[l4] = o.type;
        b[l4 + 1] = o.code;
        writeU32(b, l4 + 4, o.rest ?? 0);
        break;
      }
      case 'raw':
        break;
    }
    b.set(body, l4 + l4hdr);

    if (this.#l4.kind === 'icmp') {
      writeU16(b, l4 + 2, finish(sumBytes(b, l4, l4len, 0)));
    } else if (csumAt >= 0) {
      const pseudo = pseudoHeaderV4(src, dst, proto, l4len);
      let c: number;
      if (opts.partial) c = fold(pseudo);
      else if (udpNoCsum) c = 0;
      else {
        c = finish(sumBytes(b, l4, l4len, pseudo));
        if (proto === IPPROTO_UDP && c === 0) c = 0xffff;
      }
      writeU16(b, csumAt, opts.l4Checksum ?? c);
    }
    return b;
  }
}

export function ipv4(o: Ipv4Opts): PacketBuilder {
  return new PacketBuilder(o);
}
