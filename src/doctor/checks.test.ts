/**
 * checkDirector from facts: a healthy director (control: nothing fails), then each requirement
 * broken alone and named alone; without ulvsd the checks that need it are skipped.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { checkDirector, type Facts } from './checks.js';

const healthy = (): Facts => ({
  unreachable: null,
  services: [{ protocol: 'tcp', address: '203.0.113.10', port: 80, servers: [{ address: '192.0.2.11', port: 8080, method: 'masq', weight: 1, unanswered: 0, conns: 4 }, { address: '192.0.2.13', port: 80, method: 'route', weight: 1, unanswered: 0, conns: 0 }] }],
  clients: ['198.51.100.2'],
  ipForward: '1\n',
  addrs: [
    { ifname: 'lo', local: '127.0.0.1', prefixlen: 8 },
    { ifname: 'pubbr', local: '198.51.100.1', prefixlen: 24 },
    { ifname: 'br0', local: '192.0.2.1', prefixlen: 24 },
  ],
  routes: { '192.0.2.11': { dev: 'br0', prefsrc: '192.0.2.1' } },
});
const failed = (f: Facts) => checkDirector(f).filter((x) => x.status === 'fail').map((x) => x.check);

test('control: a healthy director fails nothing', () => {
  assert.deepEqual(failed(healthy()), []);
  assert.deepEqual(checkDirector(healthy()).map((x) => x.check), ['ulvsd', 'forwarding', 'vip', 'dip', 'gateway', 'clients']);
});

test('each requirement broken alone is named alone', () => {
  const cases: [string, (f: Facts) => void][] = [
    ['forwarding', (f) => (f.ipForward = '0\n')],
    ['vip', (f) => f.addrs.push({ ifname: 'pubbr', local: '203.0.113.1', prefixlen: 24 })],
    ['dip', (f) => (f.routes['192.0.2.11'] = { dev: 'eth9', gateway: '10.0.0.1', prefsrc: '10.0.0.2' })],
    ['dip', (f) => (f.routes['192.0.2.11'] = { error: 'RTNETLINK answers: Network is unreachable' })],
    ['dip', (f) => (f.routes['192.0.2.11'] = { type: 'local', dev: 'lo' })],
    ['gateway', (f) => (f.services[0]!.servers[0]!.unanswered = 2)],
    ['clients', (f) => f.clients.push('192.0.2.50')],
  ];
  for (const [check, br] of cases) {
    const f = healthy();
    br(f);
    assert.deepEqual(failed(f), [check], check);
  }
});

test('without ulvsd: named, with the reason; the checks that need it skipped', () => {
  const f = { ...healthy(), unreachable: 'ulvsd is not running: ...' };
  const r = checkDirector(f);
  assert.deepEqual(r.map((x) => [x.check, x.status]), [['ulvsd', 'fail'], ['forwarding', 'ok'], ['vip', 'skipped'], ['dip', 'skipped'], ['gateway', 'skipped'], ['clients', 'skipped']]);
});

test('no connection yet: notes, not failures', () => {
  const f = healthy();
  f.clients = [];
  f.services[0]!.servers[0]!.conns = 0;
  const r = checkDirector(f);
  assert.deepEqual(r.filter((x) => x.status === 'note').map((x) => x.check), ['vip', 'gateway', 'clients']);
});
