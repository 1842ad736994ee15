import { test } from 'node:test';
import assert from 'node:assert/strict';
import { perCpuStride, possibleCpus, sumU64PerCpu } from './per-cpu.js';

test('possibleCpus reads the kernel list format, and refuses anything else', () => {
  assert.equal(possibleCpus('0\n'), 1);
  assert.equal(possibleCpus('0-1\n'), 2);
  assert.equal(possibleCpus('0-3,6\n'), 7);
  assert.throws(() => possibleCpus('zero'), /possible CPUs/);
});

test('perCpuStride rounds a value up to 8 bytes', () => {
  assert.deepEqual([4, 8, 12, 40].map(perCpuStride), [8, 8, 16, 40]);
});

test('sumU64PerCpu adds the u64 at one offset of every CPU\'s element', () => {
  const v = Buffer.alloc(16 * 3);
  [1, 10, 2 ** 40].forEach((x, c) => {
    v.writeBigUInt64LE(BigInt(x), c * 16 + 8);
    v.writeBigUInt64LE(7n, c * 16); // another element's field: not counted
  });
  assert.equal(sumU64PerCpu(v, 3, 16, 8), 2 ** 40 + 11);
  assert.equal(sumU64PerCpu(v, 2, 16, 8), 11, 'only `cpus` elements');
  assert.equal(sumU64PerCpu(v, 3, 16, 0), 21);
});
