/**
 * A SYN-cookie connection and the kernel fast path (syn-proxy.ts seqDelta, offload-policy.ts):
 * it is offered once its handshake with the real server is done, and the offer carries its
 * sequence delta (cookie - server ISN, int32); never while the server's SYN-ACK is awaited.
 * Control: a connection opened by a SYN is offered with delta 0 (so a policy that sent every
 * connection some delta, or none, fails one of the two).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { director, ip, key, RS1, TCP, VIP } from '../../test/support/bed.js';
import { cli, COOKIE, DELTA, fromRs, ISN, marked, send, SISN } from '../../test/support/cookie-conn.js';
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
