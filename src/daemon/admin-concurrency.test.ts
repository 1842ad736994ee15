/**
 * Concurrent admin requests against the real admin server and the real control plane (no root):
 * the workers are one in-process engine that applies operations after a random delay, as a
 * worker's reply would come. Every request must be applied or refused with its own error, none
 * lost (architecture-review F5: before `mutate`, 30 concurrent adds kept 1 service).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { Director } from '../core/director.js';
import { applyOps } from '../core/rule-ops.js';
import { defaultRegistry } from '../sched/index.js';
import { createAdminServer, type AdminControlPlane } from '../control/admin.js';
import { callAdmin } from '../control/admin-client.js';
import { formatRules, parseRules } from '../control/rules.js';
import { SchedStateSlots } from '../control/sched-slots.js';
import { ControlPlane, validateOnScratch } from './control-plane.js';

const V = '203.0.113.10';
const rs = (i: number) => `192.0.2.${i}`;

describe('admin API under concurrent changes', () => {
  let dir: string;
  let socket: string;
  let server: Server;
  let cp: ControlPlane;
  /** the engine the fake workers run: what it holds is what would forward */
  let engine: Director;
  const api = (m: string, p: string, b?: object) => callAdmin(socket, m, p, b);
  const engineRules = () => {
    const s = engine.snapshot();
    return s.services.reduce((n, x) => n + x.dests.length, 0) + s.services.length;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ulvs-admin-'));
    socket = join(dir, 'admin.sock');
    engine = new Director({ schedulers: defaultRegistry(), maxConns: 64 });
    const initial = parseRules(`-A -t ${V}:80 -s rr\n`);
    const slots = new SchedStateSlots(256);
    const start = slots.assign([{ op: 'addService', spec: initial.services[0]! }]);
    applyOps(engine, start.ops);
    start.commit();
    cp = new ControlPlane(
      initial,
      {
        validate: validateOnScratch,
        stageSteering: () => null,
        applyOps: async (ops) => {
          await new Promise((r) => setTimeout(r, Math.random() * 3));
          applyOps(engine, ops);
        },
        route: () => ({ added: 0, removed: 0 }),
        log: () => undefined,
      },
      slots,
    );
    const backend: AdminControlPlane = {
      rules: () => cp.rules(),
      mutate: async (fn) => void (await cp.mutate(fn)),
      snapshot: async () => engine.snapshot(),
      connections: async () => [],
      timeouts: async () => engine.timeouts,
      setTimeouts: (t) => cp.serial(() => engine.setTimeouts(t)),
      zero: (k) => cp.serial(() => engine.zero(k)),
      counters: async () => ({ engine: engine.counters() }),
      reload: async () => 'reloaded',
    };
    server = createAdminServer(backend);
    await new Promise<void>((r) => server.listen(socket, r));
  });
  after(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('30 concurrent POST /v1/services: 30 created, 30 kept', async () => {
    const replies = await Promise.all(Array.from({ length: 30 }, (_, i) => api('POST', '/v1/services', { protocol: 'tcp', address: V, port: 1000 + i, scheduler: 'rr' })));
    assert.deepEqual(replies.map((r) => r.status), Array(30).fill(201));
    const kept = cp.rules().services.filter((s) => s.port >= 1000).length;
    assert.equal(kept, 30, `kept ${kept} of 30 services`);
  });

  test('100 concurrent POST .../servers to one service: 100 created, 100 kept', async () => {
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => api('POST', `/v1/services/tcp/${V}/80/servers`, { address: rs(1 + i), port: 8080 })));
    assert.deepEqual(replies.map((r) => r.status), Array(100).fill(201));
    const kept = cp.rules().dests.filter((x) => x.service.port === 80).length;
    assert.equal(kept, 100, `kept ${kept} of 100 real servers`);
  });

  test('a mix of add, edit, delete and duplicates: each applied or refused with its own error', async () => {
    // before: 100 servers rs(1..100) on :80 with weight 1
    const reqs: { m: string; p: string; b?: object; want: number[] }[] = [];
    const srv = (i: number) => `/v1/services/tcp/${V}/80/servers/${rs(i)}/8080`;
    for (let i = 101; i <= 140; i++) reqs.push({ m: 'POST', p: `/v1/services/tcp/${V}/80/servers`, b: { address: rs(i), port: 8080, weight: 3 }, want: [201] });
    for (let i = 1; i <= 30; i++) reqs.push({ m: 'PUT', p: srv(i), b: { weight: 5 }, want: [200] });
    for (let i = 31; i <= 60; i++) reqs.push({ m: 'DELETE', p: srv(i), want: [200] });
    // the same server deleted twice, added twice: exactly one of each pair wins
    for (let i = 61; i <= 70; i++) reqs.push({ m: 'DELETE', p: srv(i), want: [200, 404] }, { m: 'DELETE', p: srv(i), want: [200, 404] });
    for (let i = 141; i <= 150; i++) for (let k = 0; k < 2; k++) reqs.push({ m: 'POST', p: `/v1/services/tcp/${V}/80/servers`, b: { address: rs(i), port: 8080 }, want: [201, 409] });
    // refused by validation, in the middle of the rest: 400 with the engine's errno
    reqs.push({ m: 'POST', p: `/v1/services/tcp/${V}/80/servers`, b: { address: rs(200), port: 8080, uThreshold: 5, lThreshold: 9 }, want: [400] });
    for (let i = 0; i < 10; i++) reqs.push({ m: 'PUT', p: `/v1/services/tcp/${V}/${1000 + i}`, b: { scheduler: 'wrr' }, want: [200] });
    for (let i = 10; i < 20; i++) reqs.push({ m: 'DELETE', p: `/v1/services/tcp/${V}/${1000 + i}`, want: [200] });
    const replies = await Promise.all(reqs.map((q) => api(q.m, q.p, q.b)));
    replies.forEach((r, i) => assert.ok(reqs[i]!.want.includes(r.status), `${reqs[i]!.m} ${reqs[i]!.p}: ${r.status} ${r.text}`));
    for (let k = 0; k < 20; k++) {
      const pair = replies.slice(100 + 2 * k, 102 + 2 * k).map((r) => r.status);
      assert.equal(pair.filter((s) => s === 200 || s === 201).length, 1, `pair ${k}: ${pair}`);
      assert.ok(pair.includes(404) || pair.includes(409), `pair ${k}: ${pair}`);
    }
    const refused = replies[140]!;
    assert.equal(refused.json.error.code, 'ERANGE');

    const r = cp.rules();
    const on80 = new Map(r.dests.filter((x) => x.service.port === 80).map((x) => [x.dest.addr >>> 0, x.dest.weight]));
    const n = (i: number) => Number(`0x${rs(i).split('.').map((o) => Number(o).toString(16).padStart(2, '0')).join('')}`);
    for (let i = 1; i <= 30; i++) assert.equal(on80.get(n(i)), 5, `server ${i} edited`);
    for (let i = 31; i <= 70; i++) assert.equal(on80.has(n(i)), false, `server ${i} deleted`);
    for (let i = 71; i <= 100; i++) assert.equal(on80.get(n(i)), 1, `server ${i} untouched`);
    for (let i = 101; i <= 140; i++) assert.equal(on80.get(n(i)), 3, `server ${i} added`);
    for (let i = 141; i <= 150; i++) assert.equal(on80.get(n(i)), 1, `server ${i} added once`);
    assert.equal(on80.size, 30 + 30 + 40 + 10);
    const byPort = r.services.filter((s) => s.port >= 1000).sort((a, b) => a.port - b.port);
    assert.deepEqual(byPort.map((s) => `${s.port} ${s.scheduler}`), [
      ...Array.from({ length: 10 }, (_, i) => `${1000 + i} wrr`),
      ...Array.from({ length: 10 }, (_, i) => `${1020 + i} rr`),
    ]);
    // the engine holds exactly the rules the control plane reports, and GET /v1/rules says the same
    assert.equal(engineRules(), r.services.length + r.dests.length);
    assert.equal((await api('GET', '/v1/rules')).text, formatRules(r));
  });
});
