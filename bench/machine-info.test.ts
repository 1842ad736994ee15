/** The machine description of the benchmark's report (machine-info.ts): parsing only. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cpuName, cpuTimes } from './machine-info.js';

test('busy share counts user, nice, system, irq, softirq and steal; idle and iowait are not busy', () => {
  //                user nice system idle iowait irq softirq steal
  assert.deepEqual(cpuTimes('cpu  100 1 50 800 40 0 5 4 0 0\ncpu0 1 2 3'), [160, 1000]);
});

test('CPU name with family and model, or the name alone', () => {
  assert.equal(cpuName('processor\t: 0\nmodel name\t: AMD EPYC\ncpu family\t: 26\nmodel\t\t: 2\n'), 'AMD EPYC (family 26, model 2)');
  assert.equal(cpuName('model name : Some CPU\n'), 'Some CPU');
  assert.equal(cpuName(''), 'unknown CPU');
});
