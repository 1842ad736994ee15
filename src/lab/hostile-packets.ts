/**
 * The packet classes of the hostile generator (hostile.ts, issue 14 "Hostile and malformed
 * packets through the live data path"): each writes one IPv4 packet, malformed or mutated in
 * its own way, into a buffer, from a seeded PRNG, so a run is reproduced by its seed. Lab
 * code: it allocates nothing per packet but is not tuned beyond that.
 *
 * Targets: the VIP:ports of the bed's services, the real servers' addresses, and the exact
 * tuples of live connections (client -> VIP:vport requests, RIP:rport -> client replies).
 * Sources are spoofed from SPOOF_BASE (198.51.100.128/25) unless the class is about a live
 * tuple. A packet on a live tuple that a TCP endpoint could accept would corrupt that
 * connection (any attacker who knows the tuple and the sequence numbers can; IPVS does not
 * track sequence numbers and neither does ulvs), so a live-tuple segment with a valid checksum
 * never carries ACK (Linux discards a segment without ACK, SYN or RST in a synchronized state,
 * and answers SYN or RST with a random sequence number only with a challenge ACK, RFC 5961);
 * with a bad checksum it carries any flags.
 */
import { finish, sumBytes } from '../wire/checksum.js';

/** xorshift32: small, seeded, reproducible */
export class Xorshift {
  #s: number;
  constructor(seed: number) {
    this.#s = seed >>> 0 || 0x9e3779b9;
  }
  u32(): number {
    let x = this.#s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.#s = x >>> 0;
    return this.#s;
  }
  /** uniform integer in [0, n) */
  int(n: number): number {
    return Math.floor((this.u32() / 0x100000000) * n);
  }
}

export interface Endpoint {
  proto: 6 | 17;
  addr: number;
  port: number;
}

/** A live connection: its request tuple (client -> VIP:vport) and real server (RIP:rport). */
export interface LiveTuple {
  proto: 6 | 17;
  caddr: number;
  cport: number;
  vaddr: number;
  vport: number;
  daddr: number;
  dport: number;
}

export interface Targets {
  services: Endpoint[];
  realServers: Endpoint[];
  live: LiveTuple[];
}

export const CLASSES = [
  'tcp_flags', // valid TCP to a service, random flags, sequence numbers, TTL and payload
  'udp', // valid UDP to a service (random length, sometimes checksum 0)
  'bad_l4_checksum', // TCP or UDP to a service, L4 checksum wrong
  'bad_ip_checksum', // IPv4 header checksum wrong
  'truncated', // the frame ends before the IPv4 total length (or before the headers)
  'bad_header', // version, header length or total length wrong (checksum right)
  'ip_options', // IPv4 options (random, record route, NOPs), to a service
  'fragment', // more-fragments or an offset, to a service
  'icmp_garbage', // ICMP errors (and others) quoting random bytes, to a VIP
  'icmp_live', // ICMP errors quoting a live connection's VIP:vport -> client packet
  'unknown_proto', // IP protocols ulvs does not serve, to a VIP
  'garbage', // random bytes as an IPv4 packet
  'live_tuple', // TCP on the exact request tuple of a live connection
  'live_reply', // TCP on the exact reply tuple (RIP:rport -> client) of a live connection
  'at_rs', // TCP and UDP straight at the real servers' addresses
  'other_host', // a valid packet to a service in a frame for another host's MAC
] as const;
export type HostileClass = (typeof CLASSES)[number];

/** 198.51.100.128/25: the spoofed sources (the bed's clients are 198.51.100.2..) */
const SPOOF_BASE = 0xc6336480;
const IP_FLAGS_OFF = 6;

const TCP_FLAGS = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16, URG: 32 } as const;

/** IPv4 header at `off` (20 bytes, no options), checksum computed. */
function ipHeader(b: Buffer, off: number, proto: number, src: number, dst: number, totalLen: number, ttl: number, flagsFrag: number, id: number): void {
  b[off] = 0x45;
  b[off + 1] = 0;
  b.writeUInt16BE(totalLen & 0xffff, off + 2);
  b.writeUInt16BE(id & 0xffff, off + 4);
  b.writeUInt16BE(flagsFrag & 0xffff, off + IP_FLAGS_OFF);
  b[off + 8] = ttl;
  b[off + 9] = proto;
  b.writeUInt32BE(src >>> 0, off + 12);
  b.writeUInt32BE(dst >>> 0, off + 16);
  ipChecksum(b, off);
}

function ipChecksum(b: Buffer, off: number): void {
  const hl = (b[off]! & 0x0f) * 4;
  b.writeUInt16BE(0, off + 10);
  b.writeUInt16BE(finish(sumBytes(b, off, hl, 0)), off + 10);
}

/** L4 checksum over the pseudo-header and `len` bytes at `l4` (TCP: at 16, UDP: at 6). */
function l4Checksum(b: Buffer, ip: number, l4: number, len: number, proto: number): void {
  const at = l4 + (proto === 6 ? 16 : 6);
  b.writeUInt16BE(0, at);
  let s = sumBytes(b, ip + 12, 8, proto + len);
  s = sumBytes(b, l4, len, s);
  const c = finish(s);
  b.writeUInt16BE(proto === 17 && c === 0 ? 0xffff : c, at);
}

function randomBytes(r: Xorshift, b: Buffer, off: number, n: number): void {
  for (let k = 0; k < n; k++) b[off + k] = r.u32() & 0xff;
}

/** A TCP or UDP packet at `ip` (IPv4 without options), checksums right; returns its length. */
function segment(r: Xorshift, b: Buffer, ip: number, proto: number, src: number, sport: number, dst: number, dport: number, flags: number, payload: number, ttl = 64): number {
  const hl = proto === 6 ? 20 : 8;
  const len = 20 + hl + payload;
  ipHeader(b, ip, proto, src, dst, len, ttl, 0x4000, r.u32());
  const l4 = ip + 20;
  b.writeUInt16BE(sport, l4);
  b.writeUInt16BE(dport, l4 + 2);
  if (proto === 6) {
    b.writeUInt32BE(r.u32(), l4 + 4);
    b.writeUInt32BE(r.u32(), l4 + 8);
    b[l4 + 12] = 0x50;
    b[l4 + 13] = flags;
    b.writeUInt16BE(r.u32() & 0xffff, l4 + 14);
    b.writeUInt16BE(0, l4 + 18);
  } else {
    b.writeUInt16BE(8 + payload, l4 + 4);
  }
  randomBytes(r, b, l4 + hl, payload);
  l4Checksum(b, ip, l4, hl + payload, proto);
  return len;
}

const spoofed = (r: Xorshift) => (SPOOF_BASE + 1 + r.int(126)) >>> 0;
const ephemeral = (r: Xorshift) => 1024 + r.int(64512);

/**
 * Write one packet of class `c` at `b[ip..]` (room for 256 bytes); returns the IPv4 packet's
 * length as written into the frame (truncated packets: the shortened length). A class whose
 * targets are missing (no live tuple) writes a tcp_flags packet instead and returns its length;
 * the caller counts by the class it asked for, so a run without live tuples says so in `live: 0`.
 */
export function writePacket(c: HostileClass, r: Xorshift, t: Targets, b: Buffer, ip: number): number {
  const svc = t.services[r.int(t.services.length)]!;
  const live = t.live.length ? t.live[r.int(t.live.length)]! : null;
  switch (c) {
    case 'tcp_flags':
    case 'other_host': {
      const tcp = t.services.find((s) => s.proto === 6) ?? svc;
      const ttl = r.int(16) === 0 ? r.int(2) : 64;
      return segment(r, b, ip, tcp.proto, spoofed(r), ephemeral(r), tcp.addr, tcp.port, r.u32() & 0xff, r.int(65), ttl);
    }
    case 'udp': {
      const udp = t.services.find((s) => s.proto === 17) ?? svc;
      const len = segment(r, b, ip, 17, spoofed(r), ephemeral(r), udp.addr, udp.port, 0, r.int(97));
      if (r.int(4) === 0) b.writeUInt16BE(0, ip + 26); // no checksum
      return len;
    }
    case 'bad_l4_checksum': {
      const len = segment(r, b, ip, svc.proto, spoofed(r), ephemeral(r), svc.addr, svc.port, r.u32() & 0xff, r.int(65));
      const at = ip + 20 + (svc.proto === 6 ? 16 : 6);
      b.writeUInt16BE(b.readUInt16BE(at) ^ (1 + r.int(0xfffe)), at);
      return len;
    }
    case 'bad_ip_checksum': {
      const len = segment(r, b, ip, svc.proto, spoofed(r), ephemeral(r), svc.addr, svc.port, TCP_FLAGS.SYN, r.int(33));
      b.writeUInt16BE(b.readUInt16BE(ip + 10) ^ (1 + r.int(0xfffe)), ip + 10);
      return len;
    }
    case 'truncated': {
      const len = segment(r, b, ip, svc.proto, spoofed(r), ephemeral(r), svc.addr, svc.port, r.u32() & 0xff, r.int(65));
      return 1 + r.int(len - 1);
    }
    case 'bad_header': {
      const len = segment(r, b, ip, svc.proto, spoofed(r), ephemeral(r), svc.addr, svc.port, r.u32() & 0xff, r.int(65));
      const what = r.int(3);
      if (what === 0) {
        const v = r.int(15);
        b[ip] = ((v >= 4 ? v + 1 : v) << 4) | 5; // version != 4
      }
      else if (what === 1) b[ip] = 0x40 | r.int(5); // header length < 20 bytes
      else b.writeUInt16BE(r.int(2) ? r.int(20) : len + 1 + r.int(1000), ip + 2); // total length
      ipChecksum(b, ip);
      return len;
    }
    case 'ip_options': {
      const words = 1 + r.int(10);
      const payload = r.int(33);
      const l4len = (svc.proto === 6 ? 20 : 8) + payload;
      // build without options 4*words further on, then move the IP header in front
      segment(r, b, ip + 4 * words, svc.proto, spoofed(r), ephemeral(r), svc.addr, svc.port, r.u32() & 0xff, payload);
      b.copy(b, ip, ip + 4 * words, ip + 4 * words + 20);
      const opt = ip + 20;
      const kind = r.int(3);
      if (kind === 0) b.fill(1, opt, opt + 4 * words); // NOPs
      else if (kind === 1) {
        b[opt] = 7; // record route
        b[opt + 1] = Math.min(39, 4 * words - 1);
        b[opt + 2] = 4;
        b.fill(0, opt + 3, opt + 4 * words);
      } else randomBytes(r, b, opt, 4 * words);
      b[ip] = 0x40 | (5 + words);
      b.writeUInt16BE(20 + 4 * words + l4len, ip + 2);
      ipChecksum(b, ip);
      return 20 + 4 * words + l4len;
    }
    case 'fragment': {
      const len = segment(r, b, ip, svc.proto, spoofed(r), ephemeral(r), svc.addr, svc.port, TCP_FLAGS.SYN, 8 * r.int(8));
      const ff = r.int(3) === 0 ? 0x2000 : (r.int(2) ? 0x2000 : 0) | (1 + r.int(0x1fff));
      b.writeUInt16BE(ff, ip + IP_FLAGS_OFF);
      ipChecksum(b, ip);
      return len;
    }
    case 'icmp_garbage':
    case 'icmp_live': {
      const quoted = ip + 28;
      let qlen: number;
      if (c === 'icmp_live' && live) {
        // a packet the director sent to the client: VIP:vport -> client:cport
        const full = segment(r, b, quoted, live.proto, live.vaddr, live.vport, live.caddr, live.cport, TCP_FLAGS.ACK, 0);
        qlen = 28 + r.int(full - 27);
      } else {
        qlen = r.int(97);
        randomBytes(r, b, quoted, qlen);
        if (qlen > 0 && r.int(2)) b[quoted] = 0x45;
      }
      const types = [3, 3, 4, 5, 11, 12, 0, 8, 13];
      const type = c === 'icmp_live' ? (r.int(2) ? 3 : 11) : types[r.int(types.length)]!;
      const code = type === 3 ? r.int(16) : r.int(2);
      ipHeader(b, ip, 1, spoofed(r), live && c === 'icmp_live' ? live.vaddr : svc.addr, 28 + qlen, 64, 0, r.u32());
      b[ip + 20] = type;
      b[ip + 21] = code;
      b.writeUInt16BE(0, ip + 22);
      b.writeUInt32BE(type === 3 && code === 4 ? 68 + r.int(1500) : 0, ip + 24);
      b.writeUInt16BE(finish(sumBytes(b, ip + 20, 8 + qlen, 0)), ip + 22);
      if (c === 'icmp_garbage' && r.int(4) === 0) b.writeUInt16BE(b.readUInt16BE(ip + 22) ^ 0x5a5a, ip + 22);
      return 28 + qlen;
    }
    case 'unknown_proto': {
      const protos = [0, 2, 4, 41, 47, 50, 51, 58, 103, 112, 132, 136, 253, 255];
      const n = r.int(65);
      ipHeader(b, ip, protos[r.int(protos.length)]!, spoofed(r), svc.addr, 20 + n, 64, r.int(2) ? 0x4000 : 0, r.u32());
      randomBytes(r, b, ip + 20, n);
      return 20 + n;
    }
    case 'garbage': {
      const n = 1 + r.int(120);
      randomBytes(r, b, ip, n);
      if (r.int(2)) b[ip] = 0x45;
      return n;
    }
    case 'live_tuple':
    case 'live_reply': {
      if (!live) return writePacket('tcp_flags', r, t, b, ip);
      const good = r.int(2) === 0;
      let flags = r.u32() & 0x3f;
      if (good) flags &= ~TCP_FLAGS.ACK; // never acceptable to the endpoint (header comment)
      const len =
        c === 'live_tuple'
          ? segment(r, b, ip, live.proto, live.caddr, live.cport, live.vaddr, live.vport, flags, r.int(65))
          : segment(r, b, ip, live.proto, live.daddr, live.dport, live.caddr, live.cport, flags, r.int(65));
      if (!good) {
        const at = ip + 20 + (live.proto === 6 ? 16 : 6);
        b.writeUInt16BE(b.readUInt16BE(at) ^ (1 + r.int(0xfffe)), at);
      }
      return len;
    }
    case 'at_rs': {
      const rs = t.realServers[r.int(t.realServers.length)]!;
      const port = r.int(2) ? rs.port : ephemeral(r);
      return segment(r, b, ip, rs.proto, spoofed(r), ephemeral(r), rs.addr, port, r.u32() & 0xff & ~TCP_FLAGS.SYN, r.int(65));
    }
  }
}
