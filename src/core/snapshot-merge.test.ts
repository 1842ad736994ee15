import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mergeSnapshots } from './snapshot-merge.js';
import { director, ip, key, RS1, RS2, TCP, VIP } from '../../test/support/bed.js';
import { ipv4 } from '../wire/build.js';

test('snapshots of two workers add up per service and per server', () => {
  const k = key(TCP, VIP, 80);
  const ws = [director(), director()];
  for (const d of ws) {
    d.addService({ ...k, scheduler: 'rr' });
    d.addDest(k, { addr: ip(RS1), port: 8080 });
    d.addDest(k, { addr: ip(RS2), port: 8080, weight: 2 });
  }
  // worker 0 gets 3 clients, worker 1 gets 2
  const syn = (c: string) => ipv4({ src: c, dst: VIP }).tcp({ sport: 1000, dport: 80, flags: 'S' }).build();
  ['198.51.100.2', '198.51.100.3', '198.51.100.4'].forEach((c) => ws[0]!.process(syn(c), 0, 40, 0, 0));
  ['198.51.100.5', '198.51.100.6'].forEach((c) => ws[1]!.process(syn(c), 0, 40, 0, 0));
  const m = mergeSnapshots(ws.map((d) => d.snapshot()));
  assert.equal(m.connections, 5);
  assert.equal(m.services.length, 1);
  assert.equal(m.services[0]!.counters[0], 5);
  assert.equal(m.services[0]!.dests.reduce((n, d) => n + d.activeConns, 0), 5);
  assert.equal(m.services[0]!.dests.reduce((n, d) => n + d.counters[1]!, 0), 5);
  assert.equal(m.totals.counters[3], 200);
  assert.equal(m.buckets, ws[0]!.conns.bucketCount * 2);
  assert.equal(m.services[0]!.dests.find((d) => d.addr === ip(RS2))!.weight, 2, 'settings are not added');
});
