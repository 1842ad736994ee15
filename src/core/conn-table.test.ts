import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnFlag, ConnTable, WHEEL_SLOTS } from './conn-table.js';
import { Prng } from '../../test/support/prng.js';

const T = 6;

test('insert / findIn / findOut / remove, both directions through one hash chain', () => {
  const t = new ConnTable({ capacity: 8, seed: 1 });
  const i = t.insert(T, 0xc6336402, 40000, 0xcb00710a, 80, 0xc000020b, 8080, 1, 0, 100, 0);
  assert.ok(i >= 0);
  assert.equal(t.findIn(T, 0xc6336402, 40000, 0xcb00710a, 80), i);
  assert.equal(t.findOut(T, 0xc6336402, 40000, 0xc000020b, 8080), i);
  assert.equal(t.findIn(17, 0xc6336402, 40000, 0xcb00710a, 80), -1, 'protocol is part of the key');
  assert.equal(t.findIn(T, 0xc6336402, 40001, 0xcb00710a, 80), -1);
  assert.equal(t.findOut(T, 0xc6336402, 40000, 0xc000020b, 8081), -1);
  t.remove(i);
  assert.equal(t.findIn(T, 0xc6336402, 40000, 0xcb00710a, 80), -1);
  assert.equal(t.count, 0);
});

test('templates are found only by findTemplate, connections only by findIn/findOut', () => {
  const t = new ConnTable({ capacity: 8, seed: 1 });
  const tp = t.insert(T, 0xc6336400, 0, 0xcb00710a, 443, 0xc000020b, 443, 1, ConnFlag.TEMPLATE, 100, 0);
  assert.equal(t.findTemplate(T, 0xc6336400, 0xcb00710a, 443), tp);
  assert.equal(t.findIn(T, 0xc6336400, 0, 0xcb00710a, 443), -1);
  assert.equal(t.ctl[tp], 0, 'a template starts controlling nothing');
  assert.equal(t.templates, 1);
});

test('a full table refuses inserts (the caller counts the drop) and recovers after removals', () => {
  const t = new ConnTable({ capacity: 4, seed: 1 });
  const ids = [0, 1, 2, 3].map((k) => t.insert(T, k + 1, k, 9, 80, 7, 80, 1, 0, 10, 0));
  assert.ok(ids.every((x) => x >= 0));
  assert.equal(t.insert(T, 99, 1, 9, 80, 7, 80, 1, 0, 10, 0), -1);
  t.remove(ids[2]!);
  assert.ok(t.insert(T, 99, 1, 9, 80, 7, 80, 1, 0, 10, 0) >= 0);
});

test('random workload: the table agrees with a Map model (inserts, removals, lookups)', () => {
  const r = new Prng(11);
  const t = new ConnTable({ capacity: 2000, seed: 7 });
  const model = new Map<string, number>();
  for (let step = 0; step < 50000; step++) {
    const c = r.int(64);
    const p = r.int(50);
    const v = r.int(3);
    const k = `${c}:${p}:${v}`;
    const found = t.findIn(T, c, p, v, 80);
    assert.equal(found, model.get(k) ?? -1, `step ${step}`);
    if (found < 0 && t.count < 2000) {
      const i = t.insert(T, c, p, v, 80, c ^ 0xff, p + 1, 1, 0, 5, 0);
      model.set(k, i);
      assert.equal(t.findOut(T, c, p, c ^ 0xff, p + 1), i);
    } else if (found >= 0 && r.int(2) === 0) {
      t.remove(found);
      model.delete(k);
    }
  }
  assert.equal(t.count, model.size);
});

test('timer wheel: entries expire at their tick, extensions are lazy, shortening re-queues', () => {
  const t = new ConnTable({ capacity: 64, seed: 3 });
  const due: [number, number][] = [];
  const now = { tick: 0 };
  const onDue = (i: number) => {
    due.push([i, now.tick]);
    t.remove(i);
  };
  const a = t.insert(T, 1, 1, 1, 1, 1, 1, 1, 0, 10, 0);
  const b = t.insert(T, 2, 2, 2, 2, 2, 2, 1, 0, 20, 0);
  const c = t.insert(T, 3, 3, 3, 3, 3, 3, 1, 0, 30, 0);
  t.rearm(b, 25); // extend: lazy
  t.rearm(c, 5); // shorten: re-queued
  for (now.tick = 1; now.tick <= 40; now.tick++) t.advance(now.tick, onDue);
  assert.deepEqual(due, [
    [c, 5],
    [a, 10],
    [b, 25],
  ]);
});

test('timer wheel: expiries beyond one revolution, long pauses, and entries added behind the wheel', () => {
  const t = new ConnTable({ capacity: 64, seed: 3 });
  const due: number[] = [];
  const far = t.insert(T, 1, 1, 1, 1, 1, 1, 1, 0, WHEEL_SLOTS * 3 + 7, 0);
  t.advance(100, (i) => {
    due.push(i);
    t.remove(i);
  });
  assert.equal(due.length, 0);
  // a pause of many revolutions: one call walks at most one revolution but expires everything due
  const b = t.insert(T, 2, 2, 2, 2, 2, 2, 1, 0, 50, 100); // already behind: due at the next advance
  t.advance(WHEEL_SLOTS * 10, (i) => {
    due.push(i);
    t.remove(i);
  });
  assert.deepEqual(due.sort(), [far, b].sort());
  assert.equal(t.count, 0);
});

test('timer wheel: onDue may re-arm instead of removing (templates that still control conns)', () => {
  const t = new ConnTable({ capacity: 8, seed: 3 });
  const x = t.insert(T, 1, 1, 1, 1, 1, 1, 1, 0, 10, 0);
  let calls = 0;
  for (let k = 1; k <= 200; k++)
    t.advance(k, (i) => {
      calls++;
      if (calls < 3) t.rearm(i, k + 60);
      else t.remove(i);
    });
  assert.equal(calls, 3);
  assert.equal(t.count, 0);
  void x;
});

test('memory: 50 bytes per entry plus rounding of the bucket array', () => {
  const n = 1 << 16;
  const t = new ConnTable({ capacity: n, seed: 1 });
  assert.equal(t.byteLength, n * 50 + WHEEL_SLOTS * 8);
});
