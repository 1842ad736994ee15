import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventRing, MAX_MESSAGE, recordingLog } from './event-ring.js';
import type { DaemonLog } from './log.js';

test('the ring keeps the last N events, newest first, with their time, level and kind', () => {
  let t = 1000;
  const r = new EventRing(3, () => t++);
  assert.deepEqual(r.list(), []);
  for (const m of ['a', 'b', 'c', 'd']) r.push('info', `kind-${m}`, m);
  assert.deepEqual(r.list().map((e) => e.msg), ['d', 'c', 'b']);
  assert.deepEqual(r.list()[0], { at: 1003, level: 'info', kind: 'kind-d', msg: 'd' });
  assert.equal(r.recorded, 4);
});

test('a storm of one kind keeps at most half the ring: the last events of other kinds stay', () => {
  const r = new EventRing(10);
  r.push('info', 'health', 'rs1 down');
  r.push('info', 'vrrp', 'MASTER');
  for (let i = 0; i < 1000; i++) r.push('warn', 'pressure', `p${i}`);
  const l = r.list();
  assert.equal(l.length, 7);
  assert.deepEqual(l.slice(0, 5).map((e) => e.msg), ['p999', 'p998', 'p997', 'p996', 'p995']);
  assert.deepEqual(l.slice(5).map((e) => e.msg), ['MASTER', 'rs1 down']);
  // other kinds fill the rest; the whole stays within capacity, oldest first out
  for (let i = 0; i < 20; i++) r.push('info', `k${i % 4}`, `x${i}`);
  assert.equal(r.list().length, 10);
  assert.equal(r.list()[0]!.msg, 'x19');
  assert.equal(r.recorded, 1022);
});

test('a long message is cut; a bad capacity is refused', () => {
  const r = new EventRing(2);
  r.push('warn', 'x', 'y'.repeat(5000));
  assert.equal(r.list()[0]!.msg.length, MAX_MESSAGE);
  assert.throws(() => new EventRing(0), RangeError);
  assert.throws(() => new EventRing(1.5), RangeError);
});

test('recordingLog passes every line on and records it, kind daemon by default', () => {
  const seen: string[] = [];
  const inner: DaemonLog = { info: (m, k) => seen.push(`info ${k ?? '-'} ${m}`), warn: (m, k) => seen.push(`warn ${k ?? '-'} ${m}`) };
  const r = new EventRing(10);
  const log = recordingLog(inner, r);
  log.info('vrrp: instance VI_1 BACKUP -> MASTER', 'vrrp', { to: 'MASTER' });
  log.warn('reloaded x');
  assert.deepEqual(seen, ['info vrrp vrrp: instance VI_1 BACKUP -> MASTER', 'warn daemon reloaded x']);
  assert.deepEqual(r.list().map((e) => `${e.level} ${e.kind} ${e.msg}`), ['warn daemon reloaded x', 'info vrrp vrrp: instance VI_1 BACKUP -> MASTER']);
});
