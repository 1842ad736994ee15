/** PressureWatch on a fake clock: one line when a cause starts, the repeats counted into one
 *  line per repeatMs, one line when it stops; causes apart; the baseline is not an event. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PressureWatch } from './pressure-watch.js';

function watch() {
  const lines: [string, string, Record<string, unknown>][] = [];
  const w = new PressureWatch(
    { warn: (m, f) => lines.push(['warn', m, f]), info: (m, f) => lines.push(['info', m, f]) },
    [
      { key: 'a', what: 'A ran out' },
      { key: 'b', what: 'B ran out' },
    ],
    60_000,
    10_000,
  );
  return { w, lines };
}

test('baseline, first growth logged once, repeats held and counted, recovery logged once', () => {
  const { w, lines } = watch();
  w.observe({ a: 100 }, 0); // what a previous process or earlier pressure left: not an event
  w.observe({ a: 100 }, 1000);
  assert.equal(lines.length, 0);
  w.observe({ a: 105 }, 2000);
  assert.deepEqual(lines, [['warn', 'A ran out: 5 (total 105)', { cause: 'a', count: 5, total: 105 }]]);
  for (let t = 3000, v = 106; t < 62_000; t += 1000, v++) w.observe({ a: v }, t); // grows every second
  assert.equal(lines.length, 1, 'no line per repeat');
  w.observe({ a: 200 }, 62_000);
  assert.equal(lines.length, 2);
  assert.equal(lines[1]![1], 'A ran out: still, 95 more (total 200)');
  assert.equal(lines[1]![2]['suppressed'], 95);
  w.observe({ a: 200 }, 70_000);
  assert.equal(lines.length, 2, 'not recovered before recoverMs without growth');
  w.observe({ a: 200 }, 72_000);
  assert.deepEqual(lines[2]!.slice(0, 2), ['info', 'recovered: a has not grown for 10 s (total 200)']);
  w.observe({ a: 200 }, 90_000);
  assert.equal(lines.length, 3, 'recovery logged once');
  w.observe({ a: 201 }, 91_000);
  assert.equal(lines[3]![1], 'A ran out: 1 (total 201)', 'a new episode is a new first line');
});

test('causes are apart: B starting does not hide A', () => {
  const { w, lines } = watch();
  w.observe({ a: 0, b: 0 }, 0);
  w.observe({ a: 1 }, 1000); // b absent: left as it is, not read as 0
  w.observe({ a: 2, b: 1 }, 2000);
  assert.deepEqual(lines.map((l) => l[1]), ['A ran out: 1 (total 1)', 'B ran out: 1 (total 1)']);
});
