/**
 * rr and wrr sharing one state slot across real threads (as data-path workers do): two worker
 * threads pick as fast as they can at the same time. Every committed pick advances the one shared
 * cursor, so together they hand out IPVS's sequence: rr gives every server the same count, wrr
 * counts in proportion to the weights, off by at most the picks that went unsynced (a writer
 * stalled mid-write, or a pick that lost 64 races; sched-state.ts), which must be rare.
 * No thread ever sleeps on another (no lock; sched-state.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SLOT_INTS } from '../core/sched-state.js';

const PICKS = 1_000_000;

async function race(name: 'rr' | 'wrr', weights: number[]): Promise<{ counts: number[]; unsynced: number }> {
  const state = new Int32Array(new SharedArrayBuffer(4 * SLOT_INTS * 4));
  const gate = new Int32Array(new SharedArrayBuffer(4));
  const url = new URL('../../test/support/slot-picker.js', import.meta.url);
  const results = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<{ counts: number[]; unsynced: number }>((resolve, reject) => {
          const w = new Worker(url, { workerData: { name, state, gate, weights, picks: PICKS } });
          w.once('message', resolve);
          w.once('error', reject);
        }),
    ),
  );
  return { counts: weights.map((_, i) => results[0]!.counts[i]! + results[1]!.counts[i]!), unsynced: results[0]!.unsynced + results[1]!.unsynced };
}

for (const [name, weights] of [
  ['rr', [1, 1, 1, 1]],
  ['wrr', [4, 3, 2, 1]],
] as const) {
  test(`${name}: two threads picking at once share one sequence (weights ${weights.join(',')})`, async () => {
    const { counts, unsynced } = await race(name, [...weights]);
    const total = 2 * PICKS;
    const sum = weights.reduce((a, b) => a + b, 0);
    assert.equal(counts.reduce((a, b) => a + b, 0), total);
    assert.ok(unsynced < total / 1000, `unsynced picks ${unsynced} of ${total}`);
    // a whole number of cycles plus one partial cycle, give or take the unsynced picks
    for (let i = 0; i < weights.length; i++) {
      const want = (total * weights[i]!) / sum;
      assert.ok(Math.abs(counts[i]! - want) <= weights[i]! + unsynced, `server ${i}: ${counts[i]} picks, want ${want} (unsynced ${unsynced}; all: ${counts.join('/')})`);
    }
  });
}
