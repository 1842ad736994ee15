/**
 * The follower behind a real ControlPlane whose fake workers are real engines: what the kernel
 * maps hold is, for every eligible service, the table of the workers' own engine (their server
 * order, which a server removed and added again changes), after start, after a health-style
 * weight change, after kernel_setup 0 and 1; a change within the grace period is published by the
 * retry timer; without maps nothing happens.
 *
 * Control: 'the order the workers saw matters' shows that a table built from a fresh load of the
 * same final rules differs from the workers', so comparing with the workers' engine can fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Director } from '../core/director.js';
import { applyOps, diffRules } from '../control/diff.js';
import { editDest } from '../control/rule-edits.js';
import { parseRules, type Rules } from '../control/rules.js';
import { SchedStateSlots } from '../control/sched-slots.js';
import { defaultRegistry } from '../sched/index.js';
import { kernelTable, type KernelTable } from '../sched/kernel-table.js';
import { KDEST_LAYOUT, KSVC_KEY_LAYOUT, writeKdest } from '../datapath/tun/ksetup-layout.js';
import { FakeKernelTableMaps } from '../../test/support/fake-ktab-maps.js';
import { ControlPlane } from './control-plane.js';
import { KernelTableFollower } from './kernel-tables-follower.js';

const V = 0xcb007112; // 203.0.113.18
const k80 = { proto: 6, addr: V, port: 80 };
const RULES = [
  '-A -t 203.0.113.18:80 -s sh',
  '-a -t 203.0.113.18:80 -r 192.0.2.11:8080 -m -w 1',
  '-a -t 203.0.113.18:80 -r 192.0.2.12:8080 -m -w 2',
  '-a -t 203.0.113.18:80 -r 192.0.2.13:8080 -m -w 3',
  '-A -t 203.0.113.18:81 -s wlc',
  '-a -t 203.0.113.18:81 -r 192.0.2.11:8081 -m',
  '',
].join('\n');
const quiet = { info: () => {}, warn: () => {} };

function keyHex(port: number): string {
  const b = Buffer.alloc(KSVC_KEY_LAYOUT.size);
  b.writeUInt32BE(V, 0);
  b.writeUInt16BE(port, 4);
  b[6] = 6;
  return b.toString('hex');
}
const bytes = (t: KernelTable) => t.elements.map((e) => {
  const b = Buffer.alloc(KDEST_LAYOUT.size);
  writeKdest(b, 0, e);
  return b;
});

/** A control plane whose one worker is a real engine, and the follower on fake maps. */
function bed(clock: { now: number }) {
  const rules = parseRules(RULES);
  const slots = new SchedStateSlots(16);
  const initial = slots.assign(diffRules({ services: [], dests: [] }, rules));
  initial.commit();
  const worker = new Director({ schedulers: defaultRegistry(), maxConns: 16 });
  applyOps(worker, initial.ops);
  const fake = new FakeKernelTableMaps();
  let closed = 0;
  const follower = new KernelTableFollower({ maps: fake, ksvcMax: 8, close: () => closed++ }, initial.ops, rules, 1, true, quiet, () => clock.now);
  const cp = new ControlPlane(rules, { validate: () => {}, stageSteering: () => null, applyOps: async (ops) => applyOps(worker, ops), route: () => ({ added: 0, removed: 0 }), log: () => {}, published: (ops, next) => follower.applied(ops, next) }, slots);
  const workerTable = (port: number) => kernelTable(worker.getService({ ...k80, port })!) as KernelTable;
  return { fake, follower, cp, worker, workerTable, closed: () => closed };
}

test('start publishes the workers\' tables; a health-style weight change is published after the workers have it', async () => {
  const clock = { now: 1000 };
  const b = bed(clock);
  assert.equal(b.fake.ksvcMap.size, 0, 'nothing before the workers forward');
  b.follower.start();
  assert.deepEqual(b.fake.readBack(keyHex(80)), bytes(b.workerTable(80)));
  assert.equal(b.fake.readBack(keyHex(81)), null, 'wlc keeps the user-space path');
  assert.equal(b.follower.counters()['ksetup_ineligible_sched'], 1);
  clock.now += 100;
  await b.cp.mutate((r: Rules) => editDest(r, k80, { addr: 0xc000020c, port: 8080, weight: 0 })); // quiesce 192.0.2.12
  assert.deepEqual(b.fake.readBack(keyHex(80)), bytes(b.workerTable(80)));
  assert.ok(b.fake.readBack(keyHex(80))!.some((e) => e[6] === 0xff), 'its buckets go to ulvsd now');
  b.follower.close();
  assert.equal(b.closed(), 1);
});

test('the order the workers saw matters: a reload listing the servers in another order (control: a fresh load differs)', async () => {
  const clock = { now: 1000 };
  const b = bed(clock);
  b.follower.start();
  clock.now += 100;
  const reordered = RULES.split('\n');
  [reordered[1], reordered[3]] = [reordered[3]!, reordered[1]!];
  await b.cp.replace(parseRules(reordered.join('\n').replace('192.0.2.12:8080 -m -w 2', '192.0.2.12:8080 -m -w 5')));
  assert.deepEqual(b.fake.readBack(keyHex(80)), bytes(b.workerTable(80)));
  const fresh = new Director({ schedulers: defaultRegistry(), maxConns: 16 });
  applyOps(fresh, diffRules({ services: [], dests: [] }, b.cp.rules()));
  assert.notDeepEqual(bytes(kernelTable(fresh.getService(k80)!) as KernelTable), bytes(b.workerTable(80)));
  b.follower.close();
});

test('kernel_setup 0 takes every service out, 1 puts them back', () => {
  const clock = { now: 1000 };
  const b = bed(clock);
  b.follower.start();
  clock.now += 100;
  b.follower.setEnabled(false);
  assert.equal(b.fake.ksvcMap.size, 0);
  assert.equal(b.follower.counters()['ksetup_ineligible_off'], 2);
  clock.now += 100;
  b.follower.setEnabled(true);
  assert.deepEqual(b.fake.readBack(keyHex(80)), bytes(b.workerTable(80)));
  b.follower.close();
});

test('a change within the grace period is published by the retry timer', async () => {
  const clock = { now: 0 };
  const b = bed(clock);
  const real = () => (clock.now = performance.now());
  real();
  b.follower.start();
  real();
  await b.cp.mutate((r) => editDest(r, k80, { addr: 0xc000020d, port: 8080, weight: 7 }));
  real();
  const want = bytes(b.workerTable(80));
  // the timer fires >= 50 ms after the flip; wait for it (bounded generously, no upper timing claim)
  for (let i = 0; i < 500 && JSON.stringify(b.fake.readBack(keyHex(80))) !== JSON.stringify(want); i++) await new Promise((r) => setTimeout(r, 10)).then(real);
  assert.deepEqual(b.fake.readBack(keyHex(80)), want);
  b.follower.close();
});

test('without maps: nothing happens', async () => {
  const f = new KernelTableFollower(null, [], { services: [], dests: [] }, 1, true, quiet);
  f.start();
  f.applied([{ op: 'addService', spec: { ...k80, scheduler: 'sh' } }], { services: [], dests: [] });
  f.setEnabled(false);
  assert.deepEqual(f.counters(), {});
  f.close();
});
