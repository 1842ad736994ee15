/**
 * GET /v1/explain and `ulvsadm --explain` through the real admin server (no root), with a real
 * engine as the worker that owns every flow. Controls: after an explain the engine's connection
 * count and the rr cursor are unchanged (the next real SYN goes where explain said, and a second
 * explain agrees with the first); an unknown service, a bad address and a bad flag are refused
 * with ipvsadm's exit statuses, and a bad command line never reaches the daemon.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { createAdminServer, type AdminControlPlane } from './admin.js';
import { callAdmin } from './admin-client.js';
import { explainCommand, parseExplainArgs } from './explain-cli.js';
import { explainQuery } from './explain-api.js';
import { ipv4 } from '../wire/build.js';
import { CLIENT, director, ip, key, RS1, RS2, RS3, TCP, VIP } from '../../test/support/bed.js';

describe('admin API /v1/explain and ulvsadm --explain', () => {
  let dir: string;
  let socket: string;
  let server: Server;
  let calls = 0;
  const d = director();
  const k80 = key(TCP, VIP, 80);
  const unused = () => Promise.reject(new Error('not used here'));
  const syn = (sport: number) => {
    const b = Buffer.from(ipv4({ src: CLIENT, dst: VIP }).tcp({ sport, dport: 80, flags: 'S' }).build());
    d.process(b, 0, b.length, 0, 0);
    return `${[12, 13, 14, 15].map((i) => b[16 + i - 12]).join('.')}:${b.readUInt16BE(22)}`;
  };
  const cli = async (...argv: string[]) => {
    let out = '';
    let err = '';
    const code = await explainCommand(argv, (m, p, b) => callAdmin(socket, m, p, b), { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  };

  before(async () => {
    d.addService({ ...k80, scheduler: 'rr' });
    d.addDest(k80, { addr: ip(RS1), port: 8080, weight: 0 });
    d.addDest(k80, { addr: ip(RS2), port: 8080 });
    d.addDest(k80, { addr: ip(RS3), port: 8080 });
    dir = mkdtempSync(join(tmpdir(), 'ulvs-explain-'));
    socket = join(dir, 'admin.sock');
    const cp: AdminControlPlane = {
      rules: () => ({ services: [], dests: [] }) as never,
      mutate: unused,
      snapshot: unused,
      connections: unused,
      timeouts: unused,
      setTimeouts: unused,
      zero: unused,
      counters: unused,
      reload: unused,
      explain: async (q) => (calls++, { worker: 0, explanation: d.explain(q, 0) }),
    };
    server = createAdminServer(cp);
    await new Promise<void>((r) => server.listen(socket, r));
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a new flow: the scheduler, its pick, the quiesced server skipped; nothing changes and the real SYN goes there', async () => {
    const before = d.snapshot().connections;
    const r = await callAdmin(socket, 'GET', `/v1/explain?protocol=tcp&service=${VIP}:80&client=${CLIENT}:40000`);
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.path, 'scheduler');
    assert.equal(r.json.scheduler, 'rr');
    assert.deepEqual(r.json.skipped, [{ server: `${RS1}:8080`, why: 'quiesced' }]);
    const again = await callAdmin(socket, 'GET', `/v1/explain?protocol=tcp&service=${VIP}:80&client=${CLIENT}:40000`);
    assert.equal(again.json.dest, r.json.dest, 'the rr cursor did not move');
    assert.equal(d.snapshot().connections, before, 'no connection was created');
    assert.equal(syn(40000), r.json.dest, 'the real SYN went where explain said');
    const text = await cli('-t', `${VIP}:80`, '--client', `${CLIENT}:40000`);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, new RegExp(`-> ${r.json.dest.replace(/\./g, '\\.')}\\s+\\[connection\\]`));
    assert.match(text.out, /why: existing connection in state SYN_RECV/);
  });

  test('text output of a new flow names the skipped server; --json is the API body', async () => {
    const t = await cli('-t', `${VIP}:80`, '--client', `${CLIENT}:40001`);
    assert.equal(t.code, 0, t.err);
    assert.match(t.out, /\[scheduler, scheduler rr\]/);
    assert.match(t.out, new RegExp(`skipped: ${RS1.replace(/\./g, '\\.')}:8080 \\(quiesced, weight 0\\)`));
    const j = await cli('--explain-ignored-is-refused');
    assert.equal(j.code, 2);
    const js = await cli('-t', `${VIP}:80`, '--client', `${CLIENT}:40001`, '--json');
    assert.equal(JSON.parse(js.out).path, 'scheduler');
  });

  test('a non-SYN segment without a connection is not scheduled (--flags ACK)', async () => {
    const t = await cli('-t', `${VIP}:80`, '--client', `${CLIENT}:40002`, '--flags', 'ack');
    assert.equal(t.code, 0, t.err);
    assert.match(t.out, /\[not-syn\]/);
  });

  test('errors: unknown service exit 1 "No such service", bad address or flag exit 2 without a request', async () => {
    const n = calls;
    const unknown = await cli('-t', `${VIP}:81`, '--client', `${CLIENT}:1`);
    assert.deepEqual([unknown.code, unknown.err], [1, 'No such service\n']);
    assert.equal(calls, n + 1);
    const r = await callAdmin(socket, 'GET', `/v1/explain?protocol=tcp&service=${VIP}:81&client=${CLIENT}:1`);
    assert.deepEqual([r.status, r.json.error.code], [404, 'ESRCH']);
    assert.equal(calls, n + 2);
    for (const argv of [
      ['-t', '203.0.113.300:80', '--client', `${CLIENT}:1`],
      ['-t', `${VIP}:80`, '--client', 'nope'],
      ['-t', `${VIP}:80`, '--client', `${CLIENT}:1`, '--flags', 'SYN,BOGUS'],
      ['-u', `${VIP}:53`, '--client', `${CLIENT}:1`, '--flags', 'SYN'],
      ['-t', `${VIP}:80`],
    ]) {
      const x = await cli(...argv);
      assert.equal(x.code, 2, argv.join(' '));
      assert.match(x.err, /^ulvsadm --explain: /);
    }
    assert.equal(calls, n + 2, 'no request for a bad command line');
    const bad = await callAdmin(socket, 'GET', `/v1/explain?protocol=sctp&service=${VIP}:80&client=${CLIENT}:1`);
    assert.deepEqual([bad.status, bad.json.error.code], [400, 'validation']);
    assert.equal(calls, n + 2, 'the API refuses before asking a worker');
  });

  test('query and argument parsers', () => {
    assert.deepEqual(explainQuery(new URLSearchParams({ protocol: 'tcp', service: `${VIP}:80`, client: `${CLIENT}:9`, flags: 'SYN,ACK' })), { proto: 6, caddr: ip(CLIENT), cport: 9, vaddr: ip(VIP), vport: 80, tcpFlags: 0x12 });
    assert.throws(() => explainQuery(new URLSearchParams({ protocol: 'tcp', service: `${VIP}:80`, client: `${CLIENT}:70000` })), /client/);
    assert.throws(() => explainQuery(new URLSearchParams({ protocol: 'tcp', service: `${VIP}:80`, client: `${CLIENT}:1`, x: '1' })), /unknown parameter/);
    assert.deepEqual(parseExplainArgs(['--tcp-service=203.0.113.10:80', '--client', '198.51.100.2:5', '--json']), { protocol: 'tcp', service: '203.0.113.10:80', client: '198.51.100.2:5', json: true });
  });
});
