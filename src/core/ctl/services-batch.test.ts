/**
 * ServiceTable.batch (rule-ops.ts applyOps): a sequence of control operations with one index
 * rebuild at its end. What the packet path and the control path see must be the same as
 * without the batch: the same services found, the same refusals, the same state after a
 * refused operation half-way. Control: each check is also run with the operations applied one
 * by one (no batch), and the two results compared.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../wire/build.js';
import { CLIENT, director, ip, key, RS1, TCP, VIP } from '../../../test/support/bed.js';
import { applyOps, type RuleOp } from '../rule-ops.js';
import { Verdict } from '../verdict.js';
import type { Director } from '../director.js';

const k = (port: number) => key(TCP, VIP, port);
const names = (d: Director) => d.services.map((s) => s.port).join(',');
const syn = (dport: number) => ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40000 + dport, dport, flags: 'S' }).build();
const forwarded = (d: Director, dport: number) => {
  const b = Buffer.from(syn(dport));
  return d.process(b, 0, b.length, 1000, 0) === Verdict.Forward;
};

function ops(n: number): RuleOp[] {
  const r: RuleOp[] = [];
  for (let p = 1; p <= n; p++) {
    r.push({ op: 'addService', spec: { ...k(p), scheduler: 'rr' } });
    r.push({ op: 'addDest', service: k(p), dest: { addr: ip(RS1), port: 8080 } });
  }
  for (let p = 2; p <= n; p += 2) r.push({ op: 'deleteService', service: k(p) }); // deletions inside the batch
  r.push({ op: 'addService', spec: { ...k(4), scheduler: 'wlc' } }); // added again after its deletion
  return r;
}

test('a batch of adds and deletes gives the same services, lookups and forwarding as one by one', () => {
  const batched = director();
  applyOps(batched, ops(50));
  const single = director();
  for (const o of ops(50)) applyOps(single, [o]);
  assert.equal(names(batched), names(single));
  for (const p of [1, 2, 3, 4, 49, 50]) {
    assert.equal(batched.getService(k(p)) !== null, single.getService(k(p)) !== null, `port ${p} found alike`);
    assert.equal(forwarded(batched, p), forwarded(single, p), `port ${p} forwarded alike`);
  }
  assert.equal(forwarded(batched, 1), true, 'an odd port is served');
  assert.equal(forwarded(batched, 2), false, 'a deleted one is not');
  assert.equal(batched.getService(k(4))?.schedName, 'wlc', 'the re-added one is the new one');
});

test('inside a batch a duplicate is refused as without one; the changes before the refusal stay and are indexed', () => {
  const d = director();
  const bad: RuleOp[] = [
    { op: 'addService', spec: { ...k(80), scheduler: 'rr' } },
    { op: 'addDest', service: k(80), dest: { addr: ip(RS1), port: 8080 } },
    { op: 'addService', spec: { ...k(80), scheduler: 'rr' } }, // EEXIST: seen through the batch's own keys
  ];
  assert.throws(() => applyOps(d, bad), /Service already exists/);
  assert.equal(names(d), '80');
  assert.equal(forwarded(d, 80), true, 'the index was rebuilt although the batch threw');
  const one = director();
  assert.throws(() => bad.forEach((o) => applyOps(one, [o])), /Service already exists/);
  assert.equal(names(one), names(d));
});

test('a delete of a service added in the same batch, and clear inside a batch', () => {
  const d = director();
  d.batch(() => {
    d.addService({ ...k(80), scheduler: 'rr' });
    d.addService({ ...k(81), scheduler: 'rr' });
    d.deleteService(k(80));
    assert.throws(() => d.deleteService(k(80)), /No such service/);
    assert.equal(names(d), '81', 'the list is right inside the batch too');
  });
  assert.equal(d.getService(k(80)), null);
  assert.notEqual(d.getService(k(81)), null);
  d.batch(() => {
    d.clear();
    d.addService({ ...k(82), scheduler: 'rr' });
  });
  assert.equal(names(d), '82');
  assert.notEqual(d.getService(k(82)), null);
  assert.equal(d.getService(k(81)), null);
});

test('65,537 services load in one batch (it took over a minute one index rebuild per service)', () => {
  const d = director();
  const many: RuleOp[] = [];
  for (let i = 0; i < 65_537; i++) many.push({ op: 'addService', spec: { ...key(TCP, i < 60_000 ? VIP : '203.0.113.11', 1 + (i % 60_000)), scheduler: 'rr' } });
  applyOps(d, many);
  assert.equal(d.services.length, 65_537);
  assert.notEqual(d.getService(key(TCP, '203.0.113.11', 5537)), null);
});
