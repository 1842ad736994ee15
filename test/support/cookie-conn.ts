/**
 * A SYN-cookie connection driven through an engine (core/syn-proxy.ts) by hand: the client's
 * checked ACK (TCP_VALIDATED_BIT set as the kernel marks it), the server's SYN-ACK, then data
 * both ways. Constants make the delta easy to check. Test-only.
 */
import { ipv4 } from '../../src/wire/build.js';
import type { Director } from '../../src/core/director.js';
import { CLIENT, RS1, VIP } from './bed.js';
import { slowL4Checksum } from './slow-checksum.js';

export const ISN = 0x10000000; // the client's
export const COOKIE = 0xfffffff0; // the kernel's SYN-ACK sequence number
export const SISN = 0x00007000; // the real server's
/** cookie - server ISN, int32: what the fast path's entries and a restart carry */
export const DELTA = (COOKIE - SISN) | 0;

export const cli = (flags: string, seq: number, ack: number, sport = 40000, payload = '') => ipv4({ src: CLIENT, dst: VIP }).tcp({ sport, dport: 80, flags, seq: seq >>> 0, ack: ack >>> 0 }).payload(payload).build();
export const fromRs = (flags: string, seq: number, ack: number, dport = 40000, payload = '') => ipv4({ src: RS1, dst: CLIENT }).tcp({ sport: 8080, dport, flags, seq: seq >>> 0, ack: ack >>> 0 }).payload(payload).build();
/** process a copy of `p`; returns the copy as the engine left it */
export function send(d: Director, p: Buffer, now = 1000): Buffer {
  const b = Buffer.from(p);
  d.process(b, 0, b.length, now, 0);
  return b;
}

/** `p` (IPv4, TCP) with TCP_VALIDATED_BIT set, checksum right */
export function marked(p: Buffer): Buffer {
  const out = Buffer.from(p);
  out[32] = out[32]! | 0x02;
  out.writeUInt16BE(0, 36);
  out.writeUInt16BE(slowL4Checksum(out.readUInt32BE(12), out.readUInt32BE(16), 6, out.subarray(20)), 36);
  return out;
}

/** The cookie handshake of client port `sport` through `d` up to ESTABLISHED (with the
 *  server's SYN-ACK unless `awaitSynAck`); returns the connection's index. */
export function cookieConn(d: Director, sport = 40000, awaitSynAck = false): number {
  send(d, marked(cli('A', ISN + 1, COOKIE + 1, sport)));
  const c = d.lastConn;
  if (!awaitSynAck) send(d, fromRs('SA', SISN, ISN + 1, sport));
  return c;
}
