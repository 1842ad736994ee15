/**
 * kernel-tables.ts against fake maps that keep the kernel's state and record the order of the
 * operations: the new region is complete before the value flips; the region in use is never
 * written; a region flipped less than 50 ms ago waits; a removed service's entry is deleted before
 * its number is reused (and not within 50 ms); unchanged tables are not written; kernel errors
 * are counted and leave the service on the user-space path without a throw.
 *
 * Controls: the order checker `flipViolations` is run on a log with the value written before the
 * batch and must report it; the fake's state check reads the table back through the value (a
 * publisher writing the wrong region would read back other elements).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Director } from '../../core/director.js';
import { defaultRegistry } from '../../sched/index.js';
import { KTAB_REGION, kernelTable, type KernelTable } from '../../sched/kernel-table.js';
import { KDEST_LAYOUT, KSVC_KEY_LAYOUT, KSVC_VALUE_LAYOUT, writeKdest } from './ksetup-layout.js';
import { GRACE_MS, KernelTables } from './kernel-tables.js';
import { FakeKernelTableMaps as FakeMaps, type KtabOp as Op } from '../../../test/support/fake-ktab-maps.js';

/** Every value update must come after a batch (in the same log) covering exactly its region,
 *  and no batch may write the region a live value points at. Returns the violations. */
function flipViolations(log: readonly Op[]): string[] {
  const bad: string[] = [];
  const live = new Map<string, { base: number; size: number }>();
  const written: { from: number; count: number }[] = [];
  for (const o of log) {
    if (o.op === 'batch') {
      for (const [k, r] of live) if (o.from < r.base + r.size && r.base < o.from + o.count) bad.push(`batch ${o.from}+${o.count} writes ${k}'s live region`);
      written.push(o);
    } else if (o.op === 'update') {
      if (o.size > 0 && !written.some((w) => w.from === o.base && w.count === o.size)) bad.push(`value of ${o.key} points at ${o.base}+${o.size} before it was written`);
      live.set(o.key, { base: o.base, size: o.size });
    } else live.delete(o.key);
  }
  return bad;
}

const TCP = 6;
const VIP = 0xcb007111; // 203.0.113.17
const rip = (i: number) => (0xc0000200 + i) >>> 0;

function bed(ksvcMax = 4) {
  const d = new Director({ schedulers: defaultRegistry(), maxConns: 16 });
  const fake = new FakeMaps();
  let now = 1000;
  const pub = new KernelTables(fake, ksvcMax, () => now);
  const add = (port: number, sched: string, weights: number[]) => {
    const k = { proto: TCP, addr: VIP, port };
    d.addService({ ...k, scheduler: sched });
    weights.forEach((w, i) => d.addDest(k, { addr: rip(i + 1), port: 8080, weight: w }));
    return k;
  };
  const keyHex = (port: number) => {
    const b = Buffer.alloc(KSVC_KEY_LAYOUT.size);
    b.writeUInt32BE(VIP, 0);
    b.writeUInt16BE(port, 4);
    b[6] = TCP;
    return b.toString('hex');
  };
  const expect = (t: KernelTable) => t.elements.map((e) => {
    const b = Buffer.alloc(KDEST_LAYOUT.size);
    writeKdest(b, 0, e);
    return b;
  });
  const tableOf = (port: number) => kernelTable(d.getService({ proto: TCP, addr: VIP, port })!) as KernelTable;
  return { d, fake, pub, add, keyHex, expect, tableOf, sync: (enabled = true) => pub.sync(d.services, null, enabled), advance: (ms: number) => void (now += ms) };
}

test('a new service: its whole table is written, then the value; the program reads exactly the table', () => {
  const b = bed();
  b.add(80, 'mh', [3, 1, 2]);
  b.add(81, 'wrr', [4, 2]);
  assert.deepEqual(b.sync(), { retryInMs: null });
  assert.deepEqual(flipViolations(b.fake.log), []);
  assert.deepEqual(b.fake.log.map((o) => o.op), ['batch', 'update', 'batch', 'update']);
  assert.deepEqual(b.fake.readBack(b.keyHex(80)), b.expect(b.tableOf(80)));
  assert.deepEqual(b.fake.readBack(b.keyHex(81)), b.expect(b.tableOf(81)));
  const v = b.fake.ksvcMap.get(b.keyHex(81))!;
  assert.deepEqual([v.readUInt32LE(8), v[16], v.readUInt32LE(0)], [1, 4, 2 * KTAB_REGION]); // number 1, KSCHED_SEQ, its first region
  assert.equal(b.pub.counters()['ksetup_published'], 2);
});

test('unchanged tables are not written again', () => {
  const b = bed();
  b.add(80, 'sh', [1, 2]);
  b.sync();
  const n = b.fake.log.length;
  b.advance(1000);
  b.sync();
  assert.equal(b.fake.log.length, n);
  assert.equal(b.pub.counters()['ksetup_unchanged'], 1);
});

test('a change goes into the other region, complete before the flip; the region in use is never written', () => {
  const b = bed();
  const k = b.add(80, 'sh', [1, 2, 3]);
  b.sync();
  const first = b.fake.ksvcMap.get(b.keyHex(80))!.readUInt32LE(0);
  b.advance(GRACE_MS);
  b.d.editDest(k, { addr: rip(2), port: 8080, weight: 0 }); // a health check quiesces it
  b.sync();
  const second = b.fake.ksvcMap.get(b.keyHex(80))!.readUInt32LE(0);
  assert.equal(Math.abs(second - first), KTAB_REGION);
  assert.deepEqual(flipViolations(b.fake.log), []);
  assert.deepEqual(b.fake.readBack(b.keyHex(80)), b.expect(b.tableOf(80)));
  b.advance(GRACE_MS);
  b.d.deleteDest(k, rip(3), 8080);
  b.sync();
  assert.equal(b.fake.ksvcMap.get(b.keyHex(80))!.readUInt32LE(0), first); // back to the first region
  assert.deepEqual(flipViolations(b.fake.log), []);
});

test('the order checker catches a value written before its region (control)', () => {
  assert.ok(flipViolations([{ op: 'update', key: 'k', base: 0, size: 3 }, { op: 'batch', from: 0, count: 3 }]).length > 0);
  assert.equal(flipViolations([{ op: 'batch', from: 0, count: 3 }, { op: 'update', key: 'k', base: 0, size: 3 }, { op: 'batch', from: 1, count: 1 }]).length, 1);
});

test('a region flipped less than 50 ms ago is not rewritten: the change waits, retryInMs says how long', () => {
  const b = bed();
  const k = b.add(80, 'dh', [1, 1]);
  b.sync();
  b.advance(GRACE_MS);
  b.d.editDest(k, { addr: rip(1), port: 8080, weight: 0 });
  b.sync(); // flips to the second region
  const n = b.fake.log.length;
  b.advance(20);
  b.d.editDest(k, { addr: rip(1), port: 8080, weight: 5 });
  assert.deepEqual(b.sync(), { retryInMs: GRACE_MS - 20 });
  assert.equal(b.fake.log.length, n, 'nothing written within the grace period');
  assert.equal(b.pub.counters()['ksetup_deferred'], 1);
  b.advance(GRACE_MS - 20);
  assert.deepEqual(b.sync(), { retryInMs: null });
  assert.deepEqual(b.fake.readBack(b.keyHex(80)), b.expect(b.tableOf(80)));
  assert.deepEqual(flipViolations(b.fake.log), []);
});

test("a removed service's entry is deleted before its number is reused, and not reused within 50 ms", () => {
  const b = bed(1); // one number: the next service must wait for it
  b.add(80, 'rr', [1, 1]);
  b.sync();
  b.d.deleteService({ proto: TCP, addr: VIP, port: 80 });
  b.add(81, 'rr', [1]);
  const r = b.sync();
  assert.equal(r.retryInMs, GRACE_MS);
  assert.equal(b.fake.readBack(b.keyHex(80)), null);
  assert.equal(b.fake.readBack(b.keyHex(81)), null, 'not published within the grace period');
  assert.equal(b.pub.counters()['ksetup_no_number'], 1);
  b.advance(GRACE_MS);
  b.sync();
  const ops = b.fake.log.map((o) => `${o.op}${'key' in o ? ` ${o.key === b.keyHex(80) ? 80 : 81}` : ''}`);
  assert.deepEqual(ops, ['batch', 'update 80', 'delete 80', 'batch', 'update 81']);
  assert.deepEqual(b.fake.readBack(b.keyHex(81)), b.expect(b.tableOf(81)));
  assert.equal(b.fake.ksvcMap.get(b.keyHex(81))!.readUInt32LE(8), 0); // the number 0 again
});

test('ineligible services and kernel_setup=0: entries deleted, counted by reason', () => {
  const b = bed();
  b.add(80, 'sh', [1]);
  const k81 = b.add(81, 'rr', [1]);
  b.add(82, 'wlc', [1]);
  b.sync();
  assert.equal(b.fake.ksvcMap.size, 2);
  assert.equal(b.pub.counters()['ksetup_ineligible_sched'], 1);
  b.d.editService({ ...k81, scheduler: 'rr', schedFlags: 0x8000 }); // ulvs-exact
  b.sync();
  assert.equal(b.fake.readBack(b.keyHex(81)), null);
  assert.equal(b.pub.counters()['ksetup_ineligible_exact'], 1);
  b.sync(false);
  assert.equal(b.fake.ksvcMap.size, 0);
  assert.deepEqual([b.pub.counters()['ksetup_ineligible_off'], b.pub.counters()['ksetup_deleted'], b.pub.counters()['ksetup_services']], [3, 2, 0]);
});

test('kernel errors: counted, the service stays on the user-space path, never a throw', () => {
  const b = bed();
  const k = b.add(80, 'sh', [1, 2]);
  b.fake.failBatch = 7; // E2BIG
  b.sync();
  assert.equal(b.fake.readBack(b.keyHex(80)), null);
  assert.equal(b.pub.counters()['ksetup_errors'], 1);
  assert.match(b.pub.lastError, /UPDATE_BATCH.*errno 7/);
  b.fake.failBatch = 0;
  b.advance(GRACE_MS);
  b.sync(); // published by a later sync
  assert.deepEqual(b.fake.readBack(b.keyHex(80)), b.expect(b.tableOf(80)));
  b.advance(GRACE_MS);
  b.d.editDest(k, { addr: rip(1), port: 8080, weight: 4 });
  b.fake.failUpdate = true;
  b.sync(); // the flip fails: the entry is deleted, the SYNs go to ulvsd
  assert.equal(b.fake.readBack(b.keyHex(80)), null);
  assert.equal(b.pub.counters()['ksetup_errors'], 2);
  b.fake.failUpdate = false;
  b.advance(GRACE_MS);
  b.sync();
  b.fake.failDelete = true;
  b.advance(GRACE_MS);
  b.d.deleteService(k);
  assert.doesNotThrow(() => b.sync());
  assert.equal(b.pub.counters()['ksetup_errors'], 3);
});

test('the steering mask of a masked service endpoint goes into the value', () => {
  const b = bed();
  b.add(80, 'sh', [1]);
  b.pub.sync(b.d.services, { vips: [VIP], inbound: [{ proto: TCP, addr: VIP, port: 0, mask: 0xffffff00 }], outbound: [] }, true);
  assert.equal(b.fake.ksvcMap.get(b.keyHex(80))!.readUInt32LE(12), 0xffffff00);
});

test('clear(): entries a previous process left are deleted; no number is used within 50 ms', () => {
  const b = bed(2);
  for (const port of [90, 91, 92]) {
    const k = Buffer.from(b.keyHex(port), 'hex');
    b.fake.ksvcMap.set(k.toString('hex'), Buffer.alloc(KSVC_VALUE_LAYOUT.size));
  }
  assert.equal(b.pub.clear(), 3);
  assert.equal(b.fake.ksvcMap.size, 0);
  b.add(80, 'rr', [1]);
  assert.deepEqual(b.sync(), { retryInMs: GRACE_MS });
  assert.equal(b.fake.ksvcMap.size, 0);
  b.advance(GRACE_MS);
  b.sync();
  assert.deepEqual(b.fake.readBack(b.keyHex(80)), b.expect(b.tableOf(80)));
});
