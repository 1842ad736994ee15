import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sumPerCpu } from './fast-verdicts.js';
import { FAST_VERDICTS } from './layouts.gen.js';

test('sumPerCpu adds each verdict over the CPUs (one FAST_VERDICTS element per CPU)', () => {
  const v = Buffer.alloc(FAST_VERDICTS.size * 2);
  [1, 2, 3, 4, 5].forEach((x, k) => v.writeBigUInt64LE(BigInt(x), k * 8));
  [10, 20, 30, 40, 2 ** 40].forEach((x, k) => v.writeBigUInt64LE(BigInt(x), FAST_VERDICTS.size + k * 8));
  assert.deepEqual(sumPerCpu(v, 2), { next: 11, redirect: 22, ok: 33, shot: 44, other: 2 ** 40 + 5 });
  assert.deepEqual(sumPerCpu(v, 1), { next: 1, redirect: 2, ok: 3, shot: 4, other: 5 });
});
