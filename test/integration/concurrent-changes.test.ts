/**
 * Concurrent configuration changes against a running ulvsd (two workers), as a user makes them:
 * `for rs in ...; do ulvsadm -a ... & done`, mixed with -e/-d and direct API calls. Every
 * command is applied or refused with its own error, none is lost, and the workers' engines hold
 * exactly the rules the daemon reports (architecture-review F5: before `mutate`, 100 parallel
 * -a kept 3 of 100 real servers).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { callAdmin } from '../../src/control/admin-client.js';
import { needsRoot } from '../support/root.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
/** real servers of the rules (not hosts of the bed: only the rules matter here) */
const rs = (i: number) => `192.0.2.${i}`;

describe('concurrent changes against ulvsd', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  /** ulvsadm as a separate process, without waiting for the others */
  const adm = (args: string) =>
    new Promise<{ code: number | null; err: string; args: string }>((resolve) => {
      const p = spawn(process.execPath, [ULVSADM, ...args.split(' ')], { env: { ...process.env, ULVS_SOCKET: bed.socket }, stdio: ['ignore', 'ignore', 'pipe'] });
      let err = '';
      p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
      p.on('close', (code) => resolve({ code, err, args }));
    });
  // connection: close, so that no idle keep-alive socket is reused after the daemon closed it
  // (this process is busy spawning ulvsadm and would see the close too late: EPIPE)
  const api = (m: string, p: string, b?: object) => callAdmin(bed.socket, m, p, b, { connection: 'close' });
  /** as api(), a failure to connect reported as status 0 (the promise may be awaited late) */
  const apiLater = (m: string, p: string, b?: object) => api(m, p, b).catch((e: Error) => ({ status: 0, text: `${m} ${p}: ${e.message}` }));
  /** the rules as the daemon reports them, and as its workers' engines hold them */
  const servers = async (port: number) => {
    const saved = (await api('GET', '/v1/rules')).text as string;
    const re = new RegExp(`^-a -t ${V.replace(/\./g, '\\.')}:${port} -r (\\S+):8080 -m -w (\\d+)$`, 'gm');
    const rules = new Map([...saved.matchAll(re)].map((m) => [m[1]!, Number(m[2])]));
    const svc = ((await api('GET', `/v1/services/tcp/${V}/${port}`)).json as { servers: { address: string; weight: number }[] }).servers;
    const engine = new Map(svc.map((s) => [s.address, s.weight]));
    assert.deepEqual([...engine].sort(), [...rules].sort(), 'the workers run what the daemon reports');
    return rules;
  };

  before(async () => {
    // --capture rules: with tc capture every change rewrites the whole filter set (capture.ts
    // updateCapture), ~0.5 s per change at 100 real servers; what is tested here is the order
    // and completeness of changes, the same with either capture
    bed = await new DirectorBed({ rules: `-A -t ${V}:80 -s rr\n`, realServers: 1, httpPort: 8080, ulvsdArgs: ['--workers', '2', '--capture', 'rules'] }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('100 ulvsadm -a run in parallel against one service: 100 applied', async () => {
    const runs = await Promise.all(Array.from({ length: 100 }, (_, i) => adm(`-a -t ${V}:80 -r ${rs(100 + i)}:8080 -m`)));
    for (const r of runs) assert.equal(r.code, 0, `ulvsadm ${r.args}: ${r.err}`);
    const kept = await servers(80);
    assert.equal(kept.size, 100, `kept ${kept.size} of 100 real servers`);
  });

  test('a mix of -a/-e/-d, refusals and API calls in parallel: each applied or refused with its own error', async () => {
    // before: rs(100..199) on :80, weight 1
    const cmds: { run: Promise<{ code: number | null; err: string; args: string }>; code: number; err?: RegExp }[] = [];
    const c = (args: string, code: number, err?: RegExp) => cmds.push({ run: adm(args), code, ...(err ? { err } : {}) });
    for (let i = 200; i < 230; i++) c(`-a -t ${V}:80 -r ${rs(i)}:8080 -m -w 3`, 0);
    for (let i = 100; i < 130; i++) c(`-e -t ${V}:80 -r ${rs(i)}:8080 -m -w 5`, 0);
    for (let i = 130; i < 160; i++) c(`-d -t ${V}:80 -r ${rs(i)}:8080`, 0);
    for (let i = 160; i < 170; i++) c(`-a -t ${V}:80 -r ${rs(i)}:8080 -m`, 255, /^Destination already exists\n$/);
    for (let i = 230; i < 240; i++) c(`-d -t ${V}:80 -r ${rs(i)}:8080`, 255, /^No such destination\n$/);
    c(`-a -t ${V}:80 -r ${rs(240)}:8080 -m -x 5 -y 9`, 255, /^Numerical result out of range\n$/);
    for (let p = 1000; p < 1010; p++) c(`-A -t ${V}:${p} -s wrr`, 0);
    const calls = [
      ...Array.from({ length: 10 }, (_, i) => ({ req: apiLater('PUT', `/v1/services/tcp/${V}/80/servers/${rs(170 + i)}/8080`, { weight: 7 }), status: 200 })),
      ...Array.from({ length: 10 }, (_, i) => ({ req: apiLater('POST', '/v1/services', { protocol: 'tcp', address: V, port: 2000 + i }), status: 201 })),
      ...Array.from({ length: 5 }, (_, i) => ({ req: apiLater('POST', `/v1/services/tcp/${V}/80/servers`, { address: rs(241 + i), port: 8080, weight: 2 }), status: 201 })),
      ...Array.from({ length: 5 }, (_, i) => ({ req: apiLater('POST', `/v1/services/tcp/${V}/80/servers`, { address: rs(180 + i), port: 8080 }), status: 409 })),
    ];
    for (const x of cmds) {
      const r = await x.run;
      assert.equal(r.code, x.code, `ulvsadm ${r.args}: ${r.err}`);
      if (x.err) assert.match(r.err, x.err, `ulvsadm ${r.args}`);
    }
    for (const x of calls) {
      const r = await x.req;
      assert.equal(r.status, x.status, r.text);
    }

    const want = new Map<string, number>();
    for (let i = 100; i < 200; i++) want.set(rs(i), 1);
    for (let i = 200; i < 230; i++) want.set(rs(i), 3);
    for (let i = 100; i < 130; i++) want.set(rs(i), 5);
    for (let i = 130; i < 160; i++) want.delete(rs(i));
    for (let i = 170; i < 180; i++) want.set(rs(i), 7);
    for (let i = 241; i < 246; i++) want.set(rs(i), 2);
    const got = await servers(80);
    assert.deepEqual([...got].sort(), [...want].sort());
    const saved = (await api('GET', '/v1/rules')).text as string;
    for (const p of [...Array.from({ length: 10 }, (_, i) => 1000 + i), ...Array.from({ length: 10 }, (_, i) => 2000 + i)]) assert.match(saved, new RegExp(`^-A -t ${V.replace(/\./g, '\\.')}:${p} `, 'm'), `service :${p} kept`);
  });
});
