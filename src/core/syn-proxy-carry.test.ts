/**
 * A SYN-cookie connection over a restart (conn/handover.ts record field seq_delta, syn-proxy.ts
 * restore): the next engine translates its sequence numbers as the first did, and hands the delta
 * to the fast path when it adopts the connection. Controls: the same record with seq_delta 0
 * leaves the server's seq untranslated (so the round-trip check can fail); a connection still
 * awaiting its server's SYN-ACK is not written (its client's next ACK opens it anew).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { director, ip, key, RS1, TCP, UDP, VIP } from '../../test/support/bed.js';
import { cli, COOKIE, cookieConn, DELTA, fromRs, ISN, send, SISN } from '../../test/support/cookie-conn.js';
import type { Director } from './director.js';
import { checkRecords, REC } from './conn/handover.js';
import { OffloadReport, type OffloadPort } from './offload.js';

function engine(port?: OffloadPort): Director {
  const d = director({ sysctl: { synCookies: 1 }, ...(port ? { offload: { port: () => port, after: 2 } } : {}) });
  d.addService({ ...key(TCP, VIP, 80), scheduler: 'rr' });
  d.addDest(key(TCP, VIP, 80), { addr: ip(RS1), port: 8080 });
  d.addService({ ...key(UDP, VIP, 53), scheduler: 'rr' });
  d.addDest(key(UDP, VIP, 53), { addr: ip(RS1), port: 5353 });
  return d;
}
const seqOf = (p: Buffer) => p.readUInt32BE(24);
const ackOf = (p: Buffer) => p.readUInt32BE(28);

test('restart: the record carries the delta; the next engine translates as the first', () => {
  const a = engine();
  cookieConn(a);
  const x = a.exportConns(1000);
  assert.equal(x.count, 1);
  assert.equal(x.buf.readInt32LE(REC.seqDelta), DELTA);
  assert.equal(checkRecords(x.buf, x.count), null);
  const b = engine();
  assert.equal(b.importConns(x.buf, x.count, 0).imported, 1);
  const reply = fromRs('PA', SISN + 1, ISN + 1, 40000, 'hello');
  const outA = send(a, reply);
  assert.equal(seqOf(outA), (COOKIE + 1) >>> 0);
  assert.deepEqual(send(b, reply, 10), outA, 'the reply byte for byte as the first engine sends it');
  const req = cli('PA', ISN + 1, COOKIE + 6, 40000, 'world');
  const inB = send(b, req, 11);
  assert.equal(ackOf(inB), (SISN + 6) >>> 0);
  assert.deepEqual(inB, send(a, req), 'the request too');

  const zero = Buffer.from(x.buf);
  zero.writeInt32LE(0, REC.seqDelta);
  const c = engine();
  c.importConns(zero, 1, 0);
  assert.equal(seqOf(send(c, reply, 10)), SISN + 1, 'control: without the delta the seq goes out untranslated');
});

test("restart: a connection awaiting its server's SYN-ACK is not written; a finished handshake is", () => {
  const a = engine();
  cookieConn(a, 40000, true);
  cookieConn(a, 40001);
  const x = a.exportConns(1000);
  assert.equal(x.count, 1);
  assert.equal(x.buf.readUInt16LE(REC.cport), 40001);
});

test('restart: an offloaded cookie connection is adopted with its delta; one the kernel cannot take back is offered later with it', () => {
  const calls: string[] = [];
  let adopting = true;
  const port: OffloadPort = {
    offer: (c, delta) => (calls.push(`offer ${c} ${delta}`), true),
    withdraw: (_c, out: OffloadReport) => void out.clear(),
    route: () => {},
    unroute: () => {},
    slotOf: () => 5,
    adopt: (c, slot, _rep, delta) => (calls.push(`adopt ${c} ${slot} ${delta}`), adopting),
  };
  const a = engine(port);
  cookieConn(a);
  send(a, cli('A', ISN + 1, COOKIE + 1));
  send(a, cli('A', ISN + 1, COOKIE + 1)); // offered after 2 in ESTABLISHED
  assert.deepEqual(calls, [`offer 0 ${DELTA}`]);
  const x = a.exportConns(1000);
  assert.equal(x.buf.readInt32LE(REC.slot), 5);
  const b = engine(port);
  assert.equal(b.importConns(x.buf, x.count, 0).adopted, 1);
  assert.deepEqual(calls.slice(1), [`adopt 0 5 ${DELTA}`]);
  adopting = false;
  const c = engine(port);
  assert.equal(c.importConns(x.buf, x.count, 0).adopted, 0);
  send(c, cli('A', ISN + 1, COOKIE + 1));
  send(c, cli('A', ISN + 1, COOKIE + 1));
  assert.deepEqual(calls.slice(2), [`adopt 0 5 ${DELTA}`, `offer 0 ${DELTA}`]);
});

test('checkRecords refuses a sequence delta on a record that is no NAT TCP connection', () => {
  const a = engine();
  cookieConn(a);
  const x = a.exportConns(1000);
  const udp = Buffer.from(x.buf);
  udp[REC.proto] = 17;
  udp[REC.state] = 0;
  assert.match(checkRecords(udp, 1)?.reason ?? '', /sequence delta/);
  const ok = Buffer.from(udp);
  ok.writeInt32LE(0, REC.seqDelta);
  assert.equal(checkRecords(ok, 1), null, 'control: the same UDP record without a delta passes');
});
