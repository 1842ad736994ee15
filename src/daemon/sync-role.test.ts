/** SyncRoleDriver: VRRP roles carried out on the sync daemon as keepalived's lvs_sync_daemon
 *  does (stop the other role first), roles kept until the daemon exists, refusals retried. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpvsError } from '../core/errors.js';
import type { LvsSyncDaemonConfig } from '../control/keepalived/vrrp.js';
import type { SyncDaemonStart, SyncState } from '../control/daemon-listing.js';
import type { DaemonLog } from './log.js';
import { SyncRoleDriver, type RoleTarget } from './sync-role.js';

const quiet: DaemonLog = { info: () => undefined, warn: () => undefined } as unknown as DaemonLog;
const cfg: LvsSyncDaemonConfig = { interface: 'i0', instance: 'VI_INT', syncId: 52, port: 8848, ttl: 1, group: '224.0.0.81', conditional: true, pos: { file: 'k', line: 1, col: 1 } } as LvsSyncDaemonConfig;

function fakeTarget(refuse = 0) {
  const running = new Set<SyncState>();
  const calls: string[] = [];
  const t: RoleTarget = {
    status: () => [...running].map((state) => ({ state })),
    start: async (c: SyncDaemonStart) => {
      if (refuse-- > 0) throw new IpvsError('EADDRNOTAVAIL', 'no address yet');
      calls.push(`start ${c.state} ${c.iface} ${c.syncid} ${c.maxlen}`);
      running.add(c.state);
    },
    stop: async (s: SyncState) => {
      calls.push(`stop ${s}`);
      running.delete(s);
    },
  };
  return { t, calls, running };
}

test('master / backup / both as keepalived drives the kernel daemon; a role before attach waits', async () => {
  const d = new SyncRoleDriver(quiet, () => cfg);
  const f = fakeTarget();
  d.setRole('backup', 'start');
  await d.settled();
  assert.deepEqual(f.calls, [], 'nothing before the daemon exists');
  d.attach(f.t);
  await d.settled();
  d.setRole('master', 'VI_INT MASTER');
  await d.settled();
  d.setRole('backup', 'VI_INT FAULT');
  await d.settled();
  d.setRole('both', 'no instance');
  await d.settled();
  assert.deepEqual(f.calls, ['start backup i0 52 0', 'stop backup', 'start master i0 52 0', 'stop master', 'start backup i0 52 0', 'start master i0 52 0']);
  assert.deepEqual([...f.running].sort(), ['backup', 'master']);
  d.close();
});

test('a refused start is tried again until it succeeds', async () => {
  const d = new SyncRoleDriver(quiet, () => cfg);
  const f = fakeTarget(1);
  d.attach(f.t);
  d.setRole('master', 'x');
  await d.settled();
  assert.equal(d.failures, 1);
  assert.deepEqual(f.calls, []);
  for (let t0 = Date.now(); f.calls.length === 0; await new Promise((r) => setTimeout(r, 50))) assert.ok(Date.now() - t0 < 5000, 'retried');
  assert.deepEqual(f.calls, ['start master i0 52 0']);
  d.close();
});

test('reload: a changed line restarts the running role with its settings at once; unchanged, nothing; removed, stopped', async () => {
  let now: LvsSyncDaemonConfig | null = cfg;
  const d = new SyncRoleDriver(quiet, () => now);
  const f = fakeTarget();
  d.attach(f.t);
  d.setRole('master', 'VI_INT MASTER');
  await d.settled();
  assert.deepEqual(f.calls, ['start master i0 52 0']);
  // control: the same line read again changes nothing
  d.reconfigure();
  await d.settled();
  assert.deepEqual(f.calls, ['start master i0 52 0']);
  assert.equal(d.restarts, 0);
  // another id and maxlen: restarted in the role it has (master), no VRRP change needed
  now = { ...cfg, syncId: 53, maxlen: 1200 };
  d.reconfigure();
  await d.settled();
  assert.deepEqual(f.calls.slice(1), ['stop master', 'start master i0 53 1200']);
  assert.equal(d.restarts, 1);
  // the role then changes as before, with the new settings
  d.setRole('backup', 'VI_INT BACKUP');
  await d.settled();
  assert.deepEqual(f.calls.slice(3), ['stop master', 'start backup i0 53 1200']);
  // the line removed: what it started stops
  now = null;
  d.reconfigure();
  await d.settled();
  assert.deepEqual(f.calls.slice(5), ['stop backup']);
  assert.deepEqual([...f.running], []);
  d.close();
});

test('reload: a role started by hand (ulvsadm --start-daemon) is left alone', async () => {
  let now: LvsSyncDaemonConfig | null = cfg;
  const d = new SyncRoleDriver(quiet, () => now);
  const f = fakeTarget();
  f.running.add('master'); // started by hand before the driver had any role
  d.attach(f.t);
  d.setRole('master', 'VI_INT MASTER');
  await d.settled();
  now = { ...cfg, syncId: 60 };
  d.reconfigure();
  await d.settled();
  assert.deepEqual(f.calls, []);
  now = null;
  d.reconfigure();
  await d.settled();
  assert.deepEqual(f.calls, []);
  assert.deepEqual([...f.running], ['master']);
  d.close();
});
