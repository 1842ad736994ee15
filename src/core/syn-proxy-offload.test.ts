/**
 * A SYN-cookie connection and the kernel fast path (syn-proxy.ts seqDelta, offload-policy.ts):
 * it is offered once its handshake with the real server is done, and the offer carries its
 * sequence delta (cookie - server ISN, int32); never while the server's SYN-ACK is awaited.
 * Control: a connection opened by a SYN is offered with delta 0 (so a policy that sent every
 * connection some delta, or none, fails one of the two).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../wire/build.js';
import { CLIENT, director, ip, key, RS1, TCP, VIP } from '../../test/support/bed.js';
import { slowL4Checksum } from '../../test/support/slow-checksum.js';
import type { Director } from './director.js';
import { OffloadReport, type OffloadPort } from './offload.js';
import { ConnFlag } from './conn-table.js';

class RecordingPort implements OffloadPort {
  offers: [number, number][] = [];
  offer(c: number, seqDelta = 0): boolean {
    this.offers.push([c, seqDelta]);
    return true;
  }
  withdraw(_c: number, out: OffloadReport): void {
    out.clear();
  }
  route(): void {}
  unroute(): void {}
}

const ISN = 0x10000000; // the client's
const COOKIE = 0xfffffff0; // the kernel's SYN-ACK sequence number
const SISN = 0x00007000; // the real server's
const DELTA = (COOKIE - SISN) | 0;
const cli = (flags: string, seq: number, ack: number, sport = 40000) => ipv4({ src: CLIENT, dst: VIP }).tcp({ sport, dport: 80, flags, seq: seq >>> 0, ack: ack >>> 0 }).build();
const fromRs = (flags: string, seq: number, ack: number, dport = 40000) => ipv4({ src: RS1, dst: CLIENT }).tcp({ sport: 8080, dport, flags, seq: seq >>> 0, ack: ack >>> 0 }).build();
const send = (d: Director, p: Buffer) => d.process(Buffer.from(p), 0, p.length, 1000, 0);
/** `p` with TCP_VALIDATED_BIT set (as the kernel marks a checked ACK), checksum right */
function marked(p: Buffer): Buffer {
  const out = Buffer.from(p);
  out[32] = out[32]! | 0x02;
  out.writeUInt16BE(0, 36);
  out.writeUInt16BE(slowL4Checksum(out.readUInt32BE(12), out.readUInt32BE(16), 6, out.subarray(20)), 36);
  return out;
}

function setup(): { d: Director; port: RecordingPort } {
  const port = new RecordingPort();
  const d = director({ sysctl: { synCookies: 1 }, offload: { port: () => port, after: 2 } });
  d.addService({ ...key(TCP, VIP, 80), scheduler: 'rr' });
  d.addDest(key(TCP, VIP, 80), { addr: ip(RS1), port: 8080 });
  return { d, port };
}

test('a SYN-cookie connection is offered after its handshake with the server, with delta = cookie - server ISN', () => {
  const { d, port } = setup();
  send(d, marked(cli('A', ISN + 1, COOKIE + 1))); // the checked ACK: the SYN to the server
  const c = d.lastConn;
  assert.ok(c >= 0);
  for (let i = 0; i < 5; i++) send(d, cli('PA', ISN + 1, COOKIE + 1)); // awaiting the SYN-ACK: never offered
  assert.deepEqual(port.offers, []);
  assert.ok((d.conns.flags(c) & ConnFlag.SYNPROXY_WAIT) !== 0);
  send(d, fromRs('SA', SISN, ISN + 1)); // the director's ACK to the server: ESTABLISHED
  send(d, cli('PA', ISN + 1, COOKIE + 1)); // 1
  assert.deepEqual(port.offers, []);
  send(d, fromRs('PA', SISN + 1, ISN + 1)); // 2: offered
  assert.deepEqual(port.offers, [[c, DELTA]]);
  assert.ok((d.conns.flags(c) & ConnFlag.OFFLOADED) !== 0);
});

test('control: a connection opened by a SYN is offered with delta 0', () => {
  const { d, port } = setup();
  send(d, cli('S', ISN, 0, 40001));
  const c = d.lastConn;
  send(d, fromRs('SA', SISN, ISN + 1, 40001));
  send(d, cli('A', ISN + 1, SISN + 1, 40001));
  send(d, cli('PA', ISN + 1, SISN + 1, 40001));
  assert.deepEqual(port.offers, [[c, 0]]);
});
