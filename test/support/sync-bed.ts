/**
 * Helpers for the sync tests: a master's sink that keeps every datagram, the records inside
 * them (decoded with ulvs's decoder, fields copied), and TCP/UDP packets of one flow.
 */
import type { Director } from '../../src/core/director.js';
import { ipv4 } from '../../src/wire/build.js';
import { formatIPv4 } from '../../src/wire/addr.js';
import { SyncDecoder } from '../../src/wire/ipvs-sync/decode.js';
import { SyncReason } from '../../src/wire/ipvs-sync/reasons.js';
import { VIP } from './bed.js';

export interface Captured {
  datagrams: Buffer[];
  sink: (bytes: Uint8Array, length: number) => boolean;
}

export function capture(accept = true): Captured {
  const datagrams: Buffer[] = [];
  return { datagrams, sink: (b, n) => (datagrams.push(Buffer.from(b.subarray(0, n))), accept) };
}

export interface Rec {
  version: number;
  proto: number;
  flags: number;
  state: number;
  client: string;
  vip: string;
  rs: string;
  timeout: number;
}

/** Every record of these datagrams, in order (throws on a datagram ulvs's decoder refuses). */
export function records(datagrams: Buffer[]): Rec[] {
  const out: Rec[] = [];
  const d = new SyncDecoder();
  for (const g of datagrams) {
    const code = d.decode(g, 0, g.length, 0, (r) => {
      out.push({ version: r.version, proto: r.protocol, flags: r.flags, state: r.state, client: `${formatIPv4(r.caddr)}:${r.cport}`, vip: `${formatIPv4(r.vaddr)}:${r.vport}`, rs: `${formatIPv4(r.daddr)}:${r.dport}`, timeout: r.timeout });
      return true;
    });
    if (code !== SyncReason.Ok) throw new Error(`datagram refused: ${code}`);
  }
  return out;
}

/** Process a copy of pkt; returns the verdict and the (rewritten) copy. */
export function send(d: Director, pkt: Buffer, now: number): { v: number; out: Buffer } {
  const b = Buffer.from(pkt);
  return { v: d.process(b, 0, b.length, now, 0), out: b };
}

export const tcp = (src: string, sport: number, flags: string, dst = VIP, dport = 80) => ipv4({ src, dst }).tcp({ sport, dport, flags }).build();
export const udp = (src: string, sport: number, dst = VIP, dport = 53) => ipv4({ src, dst }).udp({ sport, dport }).payload(Buffer.from('q')).build();
/** destination address and port of a packet (IPv4 without options) */
export const dstOf = (b: Buffer) => `${formatIPv4(b.readUInt32BE(16))}:${b.readUInt16BE(22)}`;
export const srcOf = (b: Buffer) => `${formatIPv4(b.readUInt32BE(12))}:${b.readUInt16BE(20)}`;
