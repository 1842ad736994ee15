/**
 * A rules change that needs more scheduler-state slots than there are (control/sched-slots.ts),
 * through the real admin server, the real control plane and real slots (fake workers only): 507
 * with the ENOSPC text, counted as `no_space`, and nothing changed — not the rules, not the slots,
 * no worker asked. Control: the same request with one slot free is served (201), so the test
 * fails if the limit were elsewhere; before the fix this request was a 500 `internal`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import type { RuleOp } from '../core/rule-ops.js';
import { createAdminServer, type AdminControlPlane } from '../control/admin.js';
import { callAdmin } from '../control/admin-client.js';
import { ADMIN_LIMITS, newAdminCounters, type AdminCounters } from '../control/admin-limits.js';
import { parseRules } from '../control/rules.js';
import { SchedStateSlots } from '../control/sched-slots.js';
import { ControlPlane, validateOnScratch, type ControlTargets } from './control-plane.js';

describe('scheduler slots exhausted through the admin API', () => {
  let dir: string;
  let socket: string;
  let server: Server;
  let counters: AdminCounters;
  const applied: RuleOp[][] = [];
  const slots = new SchedStateSlots(2);
  const initial = parseRules('-A -t 203.0.113.10:80 -s rr\n');
  slots.assign([{ op: 'addService', spec: initial.services[0]! }]).commit();
  const targets: ControlTargets = {
    validate: validateOnScratch,
    stageSteering: () => null,
    applyOps: async (ops) => void applied.push(ops),
    route: () => ({ added: 0, removed: 0 }),
    log: () => {},
  };
  const cp = new ControlPlane(initial, targets, slots);
  const backend: AdminControlPlane = {
    rules: () => cp.rules(),
    mutate: async (fn) => void (await cp.mutate(fn)),
    snapshot: async () => ({ services: [], connections: 0 }) as never,
    connections: async () => [],
    timeouts: async () => ({ tcp: 900, tcpfin: 120, udp: 300 }),
    setTimeouts: async () => {},
    zero: async () => {},
    counters: async () => ({}),
    reload: async () => 'reloaded',
  };
  const svc = (port: number) => ({ protocol: 'tcp', address: '203.0.113.10', port, scheduler: 'rr' });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'qx-slots-'));
    socket = join(dir, 'admin.sock');
    counters = newAdminCounters();
    server = createAdminServer(backend, ADMIN_LIMITS, counters);
    await new Promise<void>((r) => server.listen(socket, r));
  });
  after(() => {
    server?.close();
    server?.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  });

  test('the last free slot is served; one more service is 507 ENOSPC, counted, nothing changed', async () => {
    const ok = await callAdmin(socket, 'POST', '/v1/services', svc(81));
    assert.equal(ok.status, 201, ok.text); // control: with a slot free the same request works
    assert.equal(slots.used, 2);
    const rulesBefore = (await callAdmin(socket, 'GET', '/v1/rules')).text;
    const appliedBefore = applied.length;

    const full = await callAdmin(socket, 'POST', '/v1/services', svc(82));
    assert.equal(full.status, 507, full.text);
    assert.equal(full.json.error.code, 'ENOSPC');
    assert.match(full.json.error.message, /^No space left on device \(no scheduler state slot left \(2 in all/);
    assert.equal(counters.no_space, 1);
    assert.equal((await callAdmin(socket, 'GET', '/v1/counters')).json.admin.no_space, 1, 'in GET /v1/counters');
    assert.equal((await callAdmin(socket, 'GET', '/v1/rules')).text, rulesBefore, 'rules unchanged');
    assert.equal(applied.length, appliedBefore, 'no worker was asked');
    assert.equal(slots.used, 2);
  });

  test('a whole rules file needing two slots with one free: 507, all or nothing', async () => {
    assert.equal((await callAdmin(socket, 'DELETE', '/v1/services/tcp/203.0.113.10/81')).status, 200);
    const rulesBefore = (await callAdmin(socket, 'GET', '/v1/rules')).text;
    const two = '-A -t 203.0.113.10:80 -s rr\n-A -t 203.0.113.10:90 -s rr\n-A -t 203.0.113.10:91 -s wrr\n';
    const r = await callAdmin(socket, 'PUT', '/v1/rules', two);
    assert.equal(r.status, 507, r.text);
    assert.equal(r.json.error.code, 'ENOSPC');
    assert.equal(counters.no_space, 2);
    assert.equal((await callAdmin(socket, 'GET', '/v1/rules')).text, rulesBefore, 'neither service was added');
    assert.equal(slots.used, 1);
    const one = await callAdmin(socket, 'PUT', '/v1/rules', '-A -t 203.0.113.10:80 -s rr\n-A -t 203.0.113.10:90 -s rr\n');
    assert.equal(one.status, 200, one.text); // control: one new service fits
  });
});
