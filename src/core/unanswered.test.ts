/**
 * The engine's count of masqueraded TCP connections that the real server does not answer
 * through the director (RealServer.unanswered, proto/tcp.ts): a client SYN sent again while the
 * connection is in SYN_RECV and no packet of the server came back. Controls: the same
 * retransmission after the server's SYN-ACK passed through the director is not counted; a
 * connection is counted once however many SYNs follow; DR connections (whose replies never
 * pass through the director) are not counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../wire/build.js';
import { CLIENT, CLIENT2, director, ip, key, RS1, RS2, TCP, VIP } from '../../test/support/bed.js';
import { Fwd } from './service.js';
import { Verdict } from './verdict.js';
import type { Director } from './director.js';

const k80 = key(TCP, VIP, 80);
const send = (d: Director, pkt: Buffer, now: number) => d.process(Buffer.from(pkt), 0, pkt.length, now, 0);
const syn = (src: string, sport: number) => ipv4({ src, dst: VIP }).tcp({ sport, dport: 80, flags: 'S' }).build();
const dotted = (a: number) => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
const unanswered = (d: Director) => Object.fromEntries(d.snapshot().services[0]!.dests.map((x) => [dotted(x.addr), x.unanswered]));

/** Send `pkt` and return the forwarded packet's destination address. */
const forwardTo = (d: Director, pkt: Buffer, now: number): string => {
  const b = Buffer.from(pkt);
  assert.equal(d.process(b, 0, b.length, now, 0), Verdict.Forward);
  return dotted(b.readUInt32BE(16));
};

test('a client SYN sent again with no reply from the server through the director counts once per connection; control: after the SYN-ACK it does not', () => {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080, fwd: Fwd.MASQ });
  d.addDest(k80, { addr: ip(RS2), port: 8080, fwd: Fwd.MASQ });
  const silent = forwardTo(d, syn(CLIENT, 40000), 0);
  const answering = forwardTo(d, syn(CLIENT2, 40001), 0);
  assert.notEqual(silent, answering, 'rr: one connection to each server');
  assert.deepEqual(unanswered(d), { [silent]: 0, [answering]: 0 });
  // the answering server's SYN-ACK comes back through the director
  assert.equal(send(d, ipv4({ src: answering, dst: CLIENT2 }).tcp({ sport: 8080, dport: 40001, flags: 'SA' }).build(), 100), Verdict.Forward);
  // CLIENT's SYN again three times (1, 3, 7 s), no reply: counted once
  for (const t of [1000, 3000, 7000]) assert.equal(forwardTo(d, syn(CLIENT, 40000), t), silent);
  // control: CLIENT2's SYN again (its SYN-ACK was lost on the way to it) after the reply passed: not counted
  forwardTo(d, syn(CLIENT2, 40001), 1000);
  assert.deepEqual(unanswered(d), { [silent]: 1, [answering]: 0 });
});

test('control: DR connections are never counted (their replies bypass the director)', () => {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 80, fwd: Fwd.DROUTE });
  send(d, syn(CLIENT, 40000), 0);
  for (const t of [1000, 3000]) send(d, syn(CLIENT, 40000), t);
  assert.deepEqual(Object.values(unanswered(d)), [0]);
});

test('control: a SYN answered at once, then the handshake completes: nothing counted', () => {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080, fwd: Fwd.MASQ });
  send(d, syn(CLIENT, 40000), 0);
  send(d, ipv4({ src: RS1, dst: CLIENT }).tcp({ sport: 8080, dport: 40000, flags: 'SA' }).build(), 10);
  send(d, ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40000, dport: 80, flags: 'A' }).build(), 20);
  assert.deepEqual(Object.values(unanswered(d)), [0]);
});
