/**
 * The worker pool over the typed protocol, without root: workers that speak protocol.ts without
 * a TUN (test/support/fake-worker.ts). Calls reach every worker, errors come back as IpvsError
 * with the worker's code, counters add up, life-cycle events come once each.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpvsError } from '../core/errors.js';
import type { Sysctls } from '../core/sysctl.js';
import { WorkerPool, type PoolEvents } from './worker-pool.js';

const FAKE = new URL('../../test/support/fake-worker.js', import.meta.url);

function pool(fds: number[], seeds: number[] = fds.map(() => 1), sysctl: Partial<Sysctls> = {}) {
  const seen: string[] = [];
  let resolveReady: (io: string[]) => void;
  const ready = new Promise<string[]>((r) => (resolveReady = r));
  let resolveStopped: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  let resolveDied: (m: string) => void;
  const died = new Promise<string>((r) => (resolveDied = r));
  const events: PoolEvents = {
    warn: (m) => seen.push(`warn ${m}`),
    ready: (io) => (seen.push('ready'), resolveReady(io)),
    fatal: (m) => seen.push(`fatal ${m}`),
    died: (m) => (seen.push(`died ${m}`), resolveDied(m)),
    stopped: () => (seen.push('stopped'), resolveStopped()),
  };
  const p = new WorkerPool(fds, (i) => ({ seed: seeds[i]!, maxConns: 16, ops: [], io: 'syscalls', busyPollUs: 0, localAddrs: [], sysctl, sharedState: new Int32Array(new SharedArrayBuffer(64)) }), events, FAKE);
  return { p, seen, ready, stopped, died };
}

test('calls on every worker, summed counters, a refusal as IpvsError, then a clean stop', async () => {
  const { p, seen, ready, stopped } = pool([5, 7]);
  assert.deepEqual(await ready, ['syscalls']);
  await p.apply([{ op: 'addService', spec: { proto: 6, addr: 1, port: 80 } }]);
  const c = await p.counters();
  assert.deepEqual(c, { engine: { calls: 4, applied: 2 }, datapath: { reads: 12 }, sync: { sync_tx_Datagrams: 2 }, workers: [{ reads: 5 }, { reads: 7 }] });
  await assert.rejects(p.apply([{ op: 'addService', spec: { proto: 6, addr: 1, port: 1 } }]), (e: unknown) => e instanceof IpvsError && e.code === 'EEXIST' && e.message === 'Service already exists');
  await assert.rejects(p.timeouts(), { code: 'internal', message: 'no timeouts here' });
  p.stop();
  await stopped;
  await new Promise((r) => setTimeout(r, 50)); // the threads exit after `stopped`: expected, not `died`
  assert.deepEqual(seen, ['ready', 'stopped']);
});

test('a worker that exits unasked is reported once as died', async () => {
  const { p, seen, died } = pool([3, 4], [1, 13]);
  assert.equal(await died, 'worker 1 exited');
  p.stop();
  assert.deepEqual(seen.filter((s) => s.startsWith('died')), ['died worker 1 exited']);
});

test('sysctls: start values from WorkerInit, a change reaches every worker, a refused one none', async () => {
  const { p, ready, stopped } = pool([5, 7], [1, 1], { syncRefreshPeriod: 10 });
  await ready;
  const each = () => Promise.all([p.call(0, 'sysctls'), p.call(1, 'sysctls')]);
  assert.deepEqual((await each()).map((s) => s.syncRefreshPeriod), [10, 10]);
  await p.setSysctls({ syncRetries: 2, syncThreshold: 3, syncPeriod: 0 });
  assert.deepEqual((await each()).map((s) => [s.syncRetries, s.syncThreshold, s.syncPeriod]), [[2, 3, 0], [2, 3, 0]]);
  // the engine's own check (a caller that skipped the control plane's): refused whole, by both
  await assert.rejects(p.setSysctls({ syncRetries: 1, syncThreshold: 9, syncPeriod: 5 }), (e: unknown) => e instanceof IpvsError && e.code === 'EINVAL' && /sync_threshold/.test(e.message));
  assert.deepEqual((await each()).map((s) => [s.syncRetries, s.syncThreshold, s.syncPeriod]), [[2, 3, 0], [2, 3, 0]]);
  assert.deepEqual(await p.sysctls(), (await each())[0]);
  p.stop();
  await stopped;
});
