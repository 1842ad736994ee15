/**
 * The kernel set-up slots' bookkeeping (kernel-slots.ts) against a fake free queue (MapOps.push
 * recorded) and fake slot counts: a slot is held, harvested, released and pushed back exactly
 * once, only after its release, and counts reach the engine from zero (the kernel zeroed the
 * slot when it set the connection up). Controls: a second giveBack and a giveBack without a
 * release push nothing (counted), which a bookkeeping that pushed on every call would fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { OffloadReport } from '../../core/offload.js';
import { KernelSlots, type KernelSlotCounts, type SlotQueue } from './kernel-slots.js';

class FakeQueue implements SlotQueue {
  pushed: number[] = [];
  errno = 0;
  push(value: Buffer): number {
    if (this.errno !== 0) return this.errno;
    this.pushed.push(value.readUInt32LE(0));
    return 0;
  }
}

/** counts per local index: what the kernel counted (in, bytes in, out, bytes out) and what was reported */
class FakeCounts implements KernelSlotCounts {
  kernel = new Map<number, number[]>();
  rep = new Map<number, number[]>();
  closed = false;
  report(k: number, out: OffloadReport): boolean {
    const now = this.kernel.get(k) ?? [0, 0, 0, 0];
    const was = this.rep.get(k) ?? [0, 0, 0, 0];
    [out.inPkts, out.inBytes, out.outPkts, out.outBytes] = now.map((v, i) => v - was[i]!) as [number, number, number, number];
    out.lastSeenMs = 5;
    this.rep.set(k, [...now]);
    return out.inPkts !== 0 || out.outPkts !== 0;
  }
  reported(k: number, out: Float64Array): void {
    out.set(this.rep.get(k) ?? [0, 0, 0, 0]);
  }
  setReported(k: number, from: Float64Array): void {
    this.rep.set(k, [...from]);
  }
  close(): void {
    this.closed = true;
  }
}

const harvest = (ks: KernelSlots) => {
  const seen: number[][] = [];
  ks.harvest({ offloadActivity: (c, r) => void seen.push([c, r.inPkts, r.inBytes, r.outPkts, r.outBytes]) }, new OffloadReport());
  return seen;
};

test('held, harvested from zero, released, pushed back once after the release', () => {
  const q = new FakeQueue();
  const counts = new FakeCounts();
  const ks = new KernelSlots(1000, 8, q, counts);
  counts.rep.set(3, [9, 9, 9, 9]); // left by the slot's previous holder
  assert.equal(ks.free(1003), true);
  assert.equal(ks.free(999), false, 'below the range');
  assert.equal(ks.free(1008), false, 'above the range');
  const k = ks.hold(7, 1003);
  assert.equal(k, 3);
  assert.equal(ks.free(1003), false);
  assert.equal(ks.held, 1);
  counts.kernel.set(3, [2, 120, 1, 60]); // segments the kernel did not report
  assert.deepEqual(harvest(ks), [[7, 2, 120, 1, 60]], 'counted from zero');
  assert.deepEqual(harvest(ks), [], 'nothing new');
  counts.kernel.set(3, [3, 160, 1, 60]);
  const out = new OffloadReport();
  ks.release(k, out);
  assert.deepEqual([out.inPkts, out.inBytes, out.outPkts, out.outBytes], [1, 40, 0, 0], 'the last counts at the release');
  assert.deepEqual(q.pushed, [], 'not pushed while its entries may still exist');
  assert.equal(ks.free(1003), false, 'not taken again before it is back');
  assert.deepEqual(harvest(ks), [], 'a released slot is not harvested');
  ks.giveBack(k);
  assert.deepEqual(q.pushed, [1003]);
  assert.equal(ks.free(1003), true);
  assert.equal(ks.held, 0);
  ks.giveBack(k); // control: a second return
  assert.deepEqual(q.pushed, [1003], 'never pushed twice');
  assert.equal(ks.counters.kernel_slot_bad_returns, 1);
  assert.equal(ks.counters.kernel_slots_returned, 1);
});

test('a slot never held is not pushed; a refused push is counted; a restart keeps the reported baseline', () => {
  const q = new FakeQueue();
  const counts = new FakeCounts();
  const ks = new KernelSlots(0, 4, q, counts);
  ks.giveBack(2);
  assert.deepEqual(q.pushed, []);
  assert.equal(ks.counters.kernel_slot_bad_returns, 1);
  const k = ks.hold(1, 2, Float64Array.of(5, 500, 4, 400)); // a restart: the previous process reported these
  counts.kernel.set(k, [6, 600, 4, 400]);
  assert.deepEqual(harvest(ks), [[1, 1, 100, 0, 0]]);
  const rep = new Float64Array(4);
  ks.reported(k, rep);
  assert.deepEqual([...rep], [6, 600, 4, 400]);
  ks.release(k, new OffloadReport());
  q.errno = 28;
  ks.giveBack(k);
  assert.equal(ks.counters.kernel_slot_push_errors, 1);
  assert.equal(ks.free(2), true, 'not retried, not held');
  ks.close();
  assert.ok(counts.closed);
});

test('drop: a slot held and unusable goes back at once', () => {
  const q = new FakeQueue();
  const ks = new KernelSlots(10, 2, q, new FakeCounts());
  const k = ks.hold(4, 11);
  ks.drop(k);
  assert.deepEqual(q.pushed, [11]);
  assert.equal(ks.held, 0);
});
