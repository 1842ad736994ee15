/**
 * A full connection table makes room for a new connection by evicting a half-open TCP entry
 * (ConnLifecycle.#evictEmbryonic): a SYN flood that filled the table does not lock real clients
 * out. Controls: a table full of established connections still refuses (nothing half-open to
 * evict), and the entries a real client is using are never the ones evicted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../wire/build.js';
import { director, ip, key, RS1, RS2, TCP, VIP } from '../../../test/support/bed.js';
import { Verdict } from '../verdict.js';
import type { Director } from '../director.js';

const k80 = key(TCP, VIP, 80);
const CAP = 256;

function setUp(): Director {
  const d = director({ maxConns: CAP });
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  d.addDest(k80, { addr: ip(RS2), port: 8080 });
  return d;
}
function send(d: Director, src: string, sport: number, flags: string, now: number): number {
  const b = ipv4({ src, dst: VIP }).tcp({ sport, dport: 80, flags }).build();
  return d.process(b, 0, b.length, now, 0);
}
/** spoofed source n (documentation range 198.51.100.0/24, ports from 1024) */
const spoofed = (n: number): [string, number] => [`198.51.100.${10 + (n % 200)}`, 1024 + Math.floor(n / 200)];
const count = (d: Director, name: string) => d.counters()[name] ?? 0;

test('a SYN flood that fills the table: new SYNs evict the oldest half-open entries, a real client completes its handshake', () => {
  const d = setUp();
  let t = 1000;
  for (let n = 0; n < CAP; n++, t += 2) assert.equal(send(d, ...spoofed(n), 'S', t), Verdict.Forward);
  assert.equal(d.connections(t).length, CAP, 'the flood filled the table');
  // the flood goes on: each new SYN takes the place of an old one
  for (let n = CAP; n < CAP * 3; n++, t += 2) assert.equal(send(d, ...spoofed(n), 'S', t), Verdict.Forward, `flood SYN ${n}`);
  assert.equal(count(d, 'embryonic_evicted'), CAP * 2);
  assert.equal(count(d, 'drop_conn_table_full'), 0);
  // a real client among the flood: SYN, then its ACK a round trip later, then data
  assert.equal(send(d, '192.0.2.200', 40000, 'S', t), Verdict.Forward);
  for (let n = CAP * 3; n < CAP * 3 + 50; n++) assert.equal(send(d, ...spoofed(n), 'S', (t += 1)), Verdict.Forward);
  assert.equal(send(d, '192.0.2.200', 40000, 'A', (t += 1)), Verdict.Forward);
  assert.equal(send(d, '192.0.2.200', 40000, 'PA', (t += 1)), Verdict.Forward);
  const mine = d.connections(t).find((c) => c.cport === 40000);
  assert.equal(mine?.state, 'ESTABLISHED', 'the real client was not evicted while its handshake ran');
  // the oldest flood entries went first: the first SYNs are gone, the latest are there
  const held = new Set(d.connections(t).map((c) => `${c.caddr >>> 0}:${c.cport}`));
  const id = (n: number) => `${ip(spoofed(n)[0]) >>> 0}:${spoofed(n)[1]}`;
  assert.ok(!held.has(id(0)), 'the first flood SYN was evicted');
  assert.ok(held.has(id(CAP * 3 + 49)), 'the latest flood SYN holds an entry');
});

test('control: a table full of established connections refuses a new one (nothing half-open to evict)', () => {
  const d = setUp();
  let t = 1000;
  for (let n = 0; n < CAP; n++) {
    const [src, sport] = spoofed(n);
    send(d, src, sport, 'S', (t += 1));
    assert.equal(send(d, src, sport, 'A', (t += 1)), Verdict.Forward);
  }
  assert.ok(d.connections(t).every((c) => c.state === 'ESTABLISHED'));
  assert.equal(send(d, '192.0.2.200', 40000, 'S', (t += 1)), Verdict.Drop);
  assert.equal(count(d, 'drop_conn_table_full'), 1);
  assert.equal(count(d, 'embryonic_evicted'), 0);
  assert.equal(d.connections(t).length, CAP, 'no established connection was removed');
});

test('an established connection in the queue before the half-open ones is skipped, not evicted', () => {
  const d = setUp();
  let t = 1000;
  // the first connections complete their handshake; then half-open ones fill the rest
  for (let n = 0; n < 10; n++) {
    const [src, sport] = spoofed(n);
    send(d, src, sport, 'S', (t += 1));
    send(d, src, sport, 'A', (t += 1));
  }
  for (let n = 10; n < CAP; n++) send(d, ...spoofed(n), 'S', (t += 1));
  for (let n = CAP; n < CAP + 100; n++) assert.equal(send(d, ...spoofed(n), 'S', (t += 1)), Verdict.Forward);
  assert.equal(d.connections(t).filter((c) => c.state === 'ESTABLISHED').length, 10);
  assert.equal(count(d, 'embryonic_evicted'), 100);
});

test('after the flood: its half-open entries, re-queued at their 60 s SYN_RECV timeout, are still evicted for a new client', () => {
  const d = setUp();
  let t = 1000;
  for (let n = 0; n < CAP; n++, t += 2) assert.equal(send(d, ...spoofed(n), 'S', t), Verdict.Forward);
  // the flood stops; 15 s later its entries have passed their 3 s creation timer and wait for
  // SYN_RECV's 60 s (ulvs's timer wheel re-queues them when the first timer comes due)
  for (const step of [4000, 8000, 15000]) d.tick(t + step);
  t += 15000;
  assert.equal(d.connections(t).length, CAP, 'the flood entries are still there');
  assert.equal(send(d, '192.0.2.200', 40000, 'S', t), Verdict.Forward, 'a new client is not refused');
  assert.equal(count(d, 'embryonic_evicted'), 1);
  assert.equal(count(d, 'drop_conn_table_full'), 0);
});
