import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FLOOR_MS, legit, normalLatencyMs, recoveryMs, streamRatio, type Probe } from './flood-metrics.js';

/** probes every 50 ms from t = 0 to 10 s; `ms(t)` gives each one's answer time */
const probes = (ms: (t: number) => number): Probe[] => Array.from({ length: 200 }, (_, i) => [i * 50, ms(i * 50)] as const);
const flood = { start: 3000, end: 6000 };

test('legit: only the probes that started during the flood, answered share and quantiles', () => {
  // during the flood every 4th lost, every 4th answered after a retransmission (1 s)
  const p = probes((t) => (t >= 3000 && t < 6000 && t % 200 === 0 ? -1 : t >= 3000 && t < 6000 && t % 200 === 50 ? 1002 : 2));
  const f = legit(p, flood, 100);
  assert.deepEqual([f.total, f.answered, f.success, f.prompt, f.p50_ms, f.p99_ms], [60, 45, 0.75, 0.5, 2, 1002]);
  assert.ok(Number.isNaN(legit([], flood, 100).success));
});

test('normal latency: 3 x the pre-flood p99, at least the floor', () => {
  assert.equal(normalLatencyMs(probes(() => 2), flood.start), FLOOR_MS);
  assert.equal(normalLatencyMs(probes((t) => (t < 3000 ? 50 : 1)), flood.start), 150);
});

test('recovery: from the flood end to the last run of normal answers', () => {
  // answers are slow (1 s retransmission) until 7.2 s, normal after
  assert.equal(recoveryMs(probes((t) => (t < 7200 ? 1000 : 2)), flood.end, 100), 1200);
  // normal at once: 0
  assert.equal(recoveryMs(probes(() => 2), flood.end, 100), 0);
  // one late failure after a normal stretch restarts the clock
  assert.equal(recoveryMs(probes((t) => (t === 8000 ? -1 : 2)), flood.end, 100), 2050);
  // the last probe still failing: not recovered within the window
  assert.equal(recoveryMs(probes((t) => (t >= 9950 ? -1 : 2)), flood.end, 100), null);
  assert.equal(recoveryMs([], flood.end, 100), null);
});

test('stream ratio: intervals wholly before (after warm-up) and wholly inside the flood', () => {
  const iv = Array.from({ length: 20 }, (_, i) => ({ start: i * 500, end: (i + 1) * 500, bps: i < 2 ? 1 : i >= 6 && i < 12 ? 400 : 1000 }));
  const f = streamRatio(iv, 0, flood);
  assert.deepEqual([f.before_bps, f.during_bps, f.ratio], [1000, 400, 0.4]);
});
