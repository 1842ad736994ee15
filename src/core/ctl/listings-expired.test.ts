/** Listings hold live entries only: an entry whose expiry has come but which the timer wheel has
 *  not collected yet (no tick since) is not listed (the kernel's timer would have removed it:
 *  ip_vs_conn_expire). Control: one tick (125 ms) earlier it is listed with its time left. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../wire/build.js';
import { CLIENT, director, ip, key, RS1, UDP, VIP } from '../../../test/support/bed.js';

test('an expired, uncollected entry is not listed; one tick before its expiry it is', () => {
  const d = director();
  const k = key(UDP, VIP, 53);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 53 });
  const p = ipv4({ src: CLIENT, dst: VIP }).udp({ sport: 40000, dport: 53 }).payload(new Uint8Array(4)).build();
  const b = Buffer.from(p);
  d.process(b, 0, b.length, 0, 0);
  assert.equal(d.connections(0).length, 1);
  const udpMs = d.timeouts.udp * 1000; // 300 s
  // control: 125 ms (one tick) before the expiry it is listed, with that time left
  const before = d.connections(udpMs - 125);
  assert.equal(before.length, 1);
  assert.equal(before[0]!.expiresInMs, 125);
  // at and after the expiry, with no tick in between, the table still holds it but lists nothing
  assert.equal(d.conns.count, 1, 'not collected yet');
  assert.deepEqual(d.connections(udpMs), []);
  assert.deepEqual(d.connections(udpMs + 60_000), []);
  // the timers then collect it
  d.tick(udpMs);
  assert.equal(d.conns.count, 0);
});
