/**
 * VRRP states from keepalived's notify FIFO lines: the line grammar (notify_fifo of
 * keepalived 2.2.7), states per instance and group, the sync-daemon role and its hook, and
 * bad lines counted, never thrown. The lines are those keepalived wrote in the pair test bed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseNotifyLine } from '../control/keepalived/notify-line.js';
import { loadKeepalived } from '../control/keepalived/config.js';
import { VrrpRoles, type SyncRole, type SyncRoleHook } from './vrrp-roles.js';
import type { DaemonLog } from './log.js';

test('notify FIFO lines: states, events, checker lines, malformed', () => {
  assert.deepEqual(parseNotifyLine('INSTANCE "VI_1" MASTER 100'), { kind: 'state', type: 'INSTANCE', name: 'VI_1', state: 'MASTER', priority: 100 });
  assert.deepEqual(parseNotifyLine('GROUP "G NAT" FAULT 0'), { kind: 'state', type: 'GROUP', name: 'G NAT', state: 'FAULT', priority: 0 });
  assert.deepEqual(parseNotifyLine('INSTANCE "VI_1" MASTER_RX_LOWER_PRI 150'), { kind: 'event', type: 'INSTANCE', name: 'VI_1', event: 'MASTER_RX_LOWER_PRI', priority: 150 });
  assert.deepEqual(parseNotifyLine('VS [203.0.113.10]:tcp:80 UP'), { kind: 'other' });
  for (const bad of ['', 'INSTANCE VI_1 MASTER 100', 'INSTANCE "VI_1" MASTER', 'INSTANCE "VI_1" PRIMARY 100', 'INSTANCE "" MASTER 1', 'INSTANCE "VI_1" MASTER 256', 'HOST "x" MASTER 1'])
    assert.equal(parseNotifyLine(bad).kind, 'malformed', JSON.stringify(bad));
});

const CONF = `global_defs {
  notify_fifo /run/ulvs/vrrp.fifo
  @ulvs lvs_sync_daemon i0 VI_INT id 52
}
vrrp_sync_group G_NAT {
  group {
    VI_EXT
    VI_INT
  }
}
vrrp_instance VI_EXT {
  interface o0
  virtual_router_id 51
}
vrrp_instance VI_INT {
  interface i0
  virtual_router_id 52
}
`;

function harness(text = CONF) {
  const lines: string[] = [];
  const log: DaemonLog = { info: (m) => lines.push(`I ${m}`), warn: (m) => lines.push(`W ${m}`) };
  const roles: [SyncRole, string][] = [];
  const hook: SyncRoleHook = { setRole: (r, why) => roles.push([r, why]) };
  let t = 1000;
  const r = new VrrpRoles(loadKeepalived('/k.conf', () => text).vrrp, log, hook, () => t++);
  return { r, lines, roles };
}

test('a master, then a fault: states per instance and group, the sync role follows VI_INT', () => {
  const { r, roles } = harness();
  assert.deepEqual(roles, [['backup', 'configuration; lvs_sync_daemon follows instance VI_INT']], 'keepalived starts its daemon as BACKUP');
  // as keepalived 2.2.7 wrote them in the pair bed
  for (const l of ['INSTANCE "VI_INT" BACKUP 150', 'INSTANCE "VI_EXT" BACKUP 150', 'GROUP "G_NAT" BACKUP 0']) r.feed(l);
  assert.equal(roles.length, 1, 'BACKUP keeps the role');
  for (const l of ['INSTANCE "VI_EXT" MASTER 150', 'INSTANCE "VI_INT" MASTER 150', 'GROUP "G_NAT" MASTER 0']) r.feed(l);
  assert.deepEqual(roles[1], ['master', 'keepalived: instance VI_INT MASTER; lvs_sync_daemon follows instance VI_INT']);
  const s = r.status();
  assert.deepEqual(s.instances.map((i) => [i.name, i.state, i.priority, i.group]), [['VI_EXT', 'MASTER', 150, 'G_NAT'], ['VI_INT', 'MASTER', 150, 'G_NAT']]);
  assert.deepEqual(s.groups.map((g) => [g.name, g.state]), [['G_NAT', 'MASTER']]);
  assert.deepEqual(s.syncDaemon, { interface: 'i0', instance: 'VI_INT', syncId: 52, role: 'master' });
  r.feed('GROUP "G_NAT" FAULT 0'); // the group line alone moves its members
  assert.deepEqual(r.status().instances.map((i) => i.state), ['FAULT', 'FAULT']);
  assert.deepEqual(roles.map((x) => x[0]), ['backup', 'master', 'backup']);
  assert.deepEqual(r.status().counters, { lines: 7, transitions: 9, events: 0, ignored: 0, malformed: 0, unknownNames: 0, roleChanges: 3 });
});

test('bad lines are counted and logged, never thrown; events change no state', () => {
  const { r, lines, roles } = harness();
  r.feed('garbage');
  r.feed('INSTANCE "VI_OTHER" MASTER 100');
  r.feed('VS [203.0.113.10]:tcp:80 UP');
  r.feed('INSTANCE "VI_INT" BACKUP_PRIORITY 90');
  const s = r.status();
  assert.deepEqual(s.counters, { lines: 4, transitions: 0, events: 1, ignored: 1, malformed: 1, unknownNames: 1, roleChanges: 1 });
  assert.equal(s.instances[1]!.priority, 90);
  assert.equal(s.instances[1]!.state, null);
  assert.deepEqual(roles.length, 1);
  assert.ok(lines.some((l) => /^W vrrp notify FIFO: malformed line ignored/.test(l)));
  assert.ok(lines.some((l) => /^W vrrp notify FIFO: instance "VI_OTHER" is not in the configuration/.test(l)));
});

test('lvs_sync_daemon without an instance: both roles, whatever VRRP says; none without lvs_sync_daemon', () => {
  const both = harness(CONF.replace('@ulvs lvs_sync_daemon i0 VI_INT id 52', '@ulvs lvs_sync_daemon i0'));
  both.r.feed('GROUP "G_NAT" MASTER 0');
  assert.deepEqual(both.roles.map((x) => x[0]), ['both']);
  const none = harness(CONF.replace('@ulvs lvs_sync_daemon i0 VI_INT id 52', ''));
  none.r.feed('GROUP "G_NAT" MASTER 0');
  assert.deepEqual(none.roles, []);
  assert.equal(none.r.status().syncDaemon, null);
});

test('reconfigure keeps the states of what remains', () => {
  const { r } = harness();
  r.feed('GROUP "G_NAT" MASTER 0');
  r.reconfigure(loadKeepalived('/k.conf', () => CONF.replace('VI_EXT\n', '').replace(/vrrp_instance VI_EXT \{[^}]*\}\n/, '')).vrrp);
  assert.deepEqual(r.status().instances.map((i) => [i.name, i.state]), [['VI_INT', 'MASTER']]);
  assert.equal(r.role, 'master');
});
