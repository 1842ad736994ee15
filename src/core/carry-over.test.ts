import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../wire/build.js';
import { CLIENT, director, ip, key, RS1, RS2, RS3, TCP, VIP } from '../../test/support/bed.js';
import { exportCarry, importCarry, mergeCarries, restoreCursors } from './carry-over.js';
import type { Director } from './director.js';
import { mergeSnapshots } from './snapshot-merge.js';
import { holdingSlots, holdSlots } from './sched-state.js';

const k80 = key(TCP, VIP, 80);
const k81 = key(TCP, VIP, 81);

/** Engines of one director: rr on :80 and wrr (3, 2, 1) on :81 over one shared slot array. */
function engines(n: number, shared = new Int32Array(new SharedArrayBuffer(16)), order = [RS1, RS2, RS3]): Director[] {
  return Array.from({ length: n }, () => {
    const d = director({ sharedState: shared });
    d.addService({ ...k80, scheduler: 'rr', stateSlot: 0 });
    d.addService({ ...k81, scheduler: 'wrr', stateSlot: 1 });
    for (const rs of order) {
      d.addDest(k80, { addr: ip(rs), port: 8080 });
      d.addDest(k81, { addr: ip(rs), port: 8080, weight: rs === RS1 ? 3 : rs === RS2 ? 2 : 1 });
    }
    return d;
  });
}

let port = 10000;
/** A SYN to the service on `vport` through engine d: the real server it went to. */
function connect(d: Director, vport: number, now = 1000): number {
  const b = Buffer.from(ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: port++, dport: vport, flags: 'S' }).build());
  d.process(b, 0, b.length, now, 0);
  return b.readUInt32BE(16);
}

test('counters and rates: the workers\' sum goes on in one engine of the next process, whatever the worker count', () => {
  const old = engines(2);
  for (let i = 0; i < 7; i++) connect(old[i % 2]!, 80, 1000);
  for (let i = 0; i < 5; i++) connect(old[i % 2]!, 81, 1000);
  for (const d of old) d.tick(1000), d.tick(3000); // one estimator step: rates are not zero
  const before = mergeSnapshots(old.map((d) => d.snapshot()));
  assert.ok(before.services[0]!.rates[3]! > 0, 'rates before (inbps)');
  const carry = mergeCarries(old.map(exportCarry))!;
  const next = engines(3);
  const r = importCarry(next[0]!, JSON.parse(JSON.stringify(carry)));
  assert.deepEqual(r, { services: 2, dests: 6, unmatched: 0 });
  const after = mergeSnapshots(next.map((d) => d.snapshot()));
  // counters exactly; rates as the sum of the estimates, which ipvsadm's sum of the workers'
  // rounded rates matches to within one unit per worker
  const strip = (x: typeof before) => JSON.stringify([x.totals.counters, x.services.map((v) => [v.counters, v.dests.map((d) => d.counters)])]);
  assert.equal(strip(after), strip(before), 'counters per service and server, totals');
  const rates = (x: typeof before) => [x.totals.rates, ...x.services.flatMap((v) => [v.rates, ...v.dests.map((d) => d.rates)])].flat();
  rates(after).forEach((r, i) => assert.ok(Math.abs(r - rates(before)[i]!) <= 2, `rate ${i}: ${r} vs ${rates(before)[i]}`));
  assert.ok(after.services[0]!.rates[3]! > 0);
  const sum = (ds: Director[], n: string) => ds.reduce((a, d) => a + d.counters()[n]!, 0);
  for (const n of Object.keys(old[0]!.counters())) assert.equal(sum(next, n), sum(old, n), n);
  // control: one worker's carry alone is not the sum (so the check above sees a lost worker)
  const partial = engines(1);
  importCarry(partial[0]!, exportCarry(old[0]!));
  assert.notDeepEqual(partial[0]!.snapshot().totals.counters, before.totals.counters);
});

test('a server or service the new rules lack: its counts are dropped and counted as unmatched, the rest imported', () => {
  const old = engines(1);
  for (let i = 0; i < 6; i++) connect(old[0]!, 80);
  const next = director();
  next.addService({ ...k80, scheduler: 'rr' });
  next.addDest(k80, { addr: ip(RS1), port: 8080 });
  assert.deepEqual(importCarry(next, exportCarry(old[0]!)), { services: 1, dests: 1, unmatched: 1 + 3 + 2 });
  assert.equal(next.getService(k80)!.stats.c[0], 6);
  assert.equal(next.getService(k80)!.dests[0]!.stats.c[0], 2);
});

test('rr and wrr cursors: the next process picks the server the old one would have picked next', () => {
  const oldShared = new Int32Array(new SharedArrayBuffer(16));
  const old = engines(2, oldShared);
  const seen80 = Array.from({ length: 4 }, (_, i) => connect(old[i % 2]!, 80));
  const seen81 = Array.from({ length: 11 }, (_, i) => connect(old[i % 2]!, 81));
  assert.equal(new Set(seen80.slice(0, 3)).size, 3, 'rr: three servers in turn');
  const carry = JSON.parse(JSON.stringify(mergeCarries(old.map(exportCarry)))) as ReturnType<typeof exportCarry>;
  // what the old engines would do next (they share the cursor, so either one)
  const wouldBe = { rr: Array.from({ length: 3 }, () => connect(old[0]!, 80)), wrr: Array.from({ length: 6 }, () => connect(old[1]!, 81)) };
  assert.deepEqual(wouldBe.rr, [seen80[1], seen80[2], seen80[0]], 'rr continues its period of 3');
  assert.deepEqual(wouldBe.wrr, [...seen81.slice(5, 6), ...seen81.slice(0, 5)], 'wrr continues its period of 6');

  // the new process: a scratch engine over the new slots sets the cursors, then its workers pick
  const fresh = () => {
    const shared = new Int32Array(new SharedArrayBuffer(16));
    const [scratch, ...workers] = engines(3, shared);
    return { scratch: scratch!, workers };
  };
  const n = fresh();
  assert.equal(restoreCursors(n.scratch, carry), 2);
  assert.deepEqual(Array.from({ length: 3 }, () => connect(n.workers[1]!, 80)), wouldBe.rr);
  assert.deepEqual(Array.from({ length: 6 }, (_, i) => connect(n.workers[i % 2]!, 81)), wouldBe.wrr);

  // control: without the cursors, rr and wrr start again at the head
  const c = fresh();
  assert.notDeepEqual(Array.from({ length: 3 }, () => connect(c.workers[0]!, 80)), wouldBe.rr);
  assert.notDeepEqual(Array.from({ length: 6 }, () => connect(c.workers[0]!, 81)), wouldBe.wrr);
});

test('a cursor on a server the new rules lack starts at the head; another scheduler is not touched', () => {
  const old = engines(1);
  connect(old[0]!, 80);
  const carry = exportCarry(old[0]!);
  const next = director({ sharedState: new Int32Array(new SharedArrayBuffer(16)) });
  next.addService({ ...k80, scheduler: 'rr', stateSlot: 0 });
  next.addService({ ...k81, scheduler: 'wlc', stateSlot: 1 });
  for (const rs of [RS1, RS2]) next.addDest(k80, { addr: ip(rs), port: 8080 });
  const lacking = { ...carry, services: carry.services.map((s) => ({ ...s, cursor: s.cursor && { ...s.cursor, server: { addr: ip('192.0.2.99') >>> 0, port: 8080 } } })) };
  assert.equal(restoreCursors(next, lacking), 1, 'rr set (to the head), wrr -> wlc skipped');
  assert.equal(connect(next, 80), next.getService(k80)!.dests[0]!.addr >>> 0, 'the head');
});

test('as ulvsd starts: cursors set on a scratch engine first, then the workers built; holdingSlots keeps the cursors through their start-up operations', () => {
  const old = engines(1);
  for (let i = 0; i < 11; i++) connect(old[0]!, 81);
  const carry = exportCarry(old[0]!);
  const wouldBe = Array.from({ length: 6 }, () => connect(old[0]!, 81));
  const start = (keep: boolean) => {
    const shared = new Int32Array(new SharedArrayBuffer(16));
    restoreCursors(engines(1, shared)[0]!, carry);
    let w: Director[] = [];
    if (keep) holdingSlots(shared, () => (w = engines(2, shared)));
    else w = engines(2, shared);
    return Array.from({ length: 6 }, (_, i) => connect(w[i % 2]!, 81));
  };
  assert.deepEqual(start(true), wouldBe);
  // control: the workers' server additions move wrr's cursor back to the head
  assert.notDeepEqual(start(false), wouldBe);
});

test('holdingSlots: a fresh slot (0) keeps what the start-up operations made of it', () => {
  const shared = new Int32Array(new SharedArrayBuffer(16));
  let d: Director[] = [];
  holdingSlots(shared, () => (d = engines(1, shared)));
  const plain = engines(1);
  assert.deepEqual(Array.from({ length: 6 }, () => connect(d[0]!, 81)), Array.from({ length: 6 }, () => connect(plain[0]!, 81)));
});

test('two workers starting at once (their start-up operations interleaved, each with its own view of the slots) keep the carried wrr cursor; control: letting the updates write and putting the slot back afterwards loses it', () => {
  const old = engines(1);
  for (let i = 0; i < 11; i++) connect(old[0]!, 81);
  const carry = exportCarry(old[0]!);
  const wouldBe = Array.from({ length: 6 }, () => connect(old[0]!, 81));
  /** worker A's start-up begins, worker B's begins while A's is under way, A's ends, then B's
   *  operations run and it ends: the order a loaded machine gave in the full test run */
  const start = (hold: boolean) => {
    const sab = new SharedArrayBuffer(16);
    const [va, vb] = [new Int32Array(sab), new Int32Array(sab)]; // one view per worker thread
    restoreCursors(engines(1, new Int32Array(sab))[0]!, carry); // the control plane's scratch engine
    let a: Director[] = [];
    let b: Director[] = [];
    if (hold) {
      const releaseA = holdSlots(va);
      a = engines(1, va);
      const releaseB = holdSlots(vb);
      releaseA();
      b = engines(1, vb);
      releaseB();
    } else {
      // the previous keepingSlots: snapshot, operations, put back what changed (if unchanged since)
      const beforeA = va.slice();
      a = engines(1, va);
      const beforeB = vb.slice();
      const afterA = va.slice();
      afterA.forEach((x, i) => beforeA[i] !== 0 && x !== beforeA[i] && Atomics.compareExchange(va, i, x, beforeA[i]!));
      b = engines(1, vb);
      const afterB = vb.slice();
      afterB.forEach((x, i) => beforeB[i] !== 0 && x !== beforeB[i] && Atomics.compareExchange(vb, i, x, beforeB[i]!));
    }
    return Array.from({ length: 6 }, (_, i) => connect((i % 2 ? b : a)[0]!, 81));
  };
  assert.deepEqual(start(true), wouldBe);
  assert.notDeepEqual(start(false), wouldBe, 'control: the put-back lost the cursor');
});
