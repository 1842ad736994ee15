/**
 * `ulvsadm --explain` against a running ulvsd with two workers: for a new flow it names rr, the
 * server rr will pick and the quiesced server it skips; it changes nothing (the connection table
 * stays as it was, a second explain gives the same server: the shared rr cursor did not move),
 * and the real connection from that client port then goes exactly there (control: the server
 * that answered the HTTP request, by its name). Asked with --flags ACK afterwards, it finds the
 * connection on the worker that owns it (control: the workers are the ones the steering formula
 * gives, and the ports cover both, so asking the wrong worker would show "not-syn").
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { queueOf, steeringSpec } from '../../src/datapath/tun/steering.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { needsRoot } from '../support/root.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const RS = [0, 1, 2].map(LAB.realServer);
const C = LAB.client(0);

describe('ulvsadm --explain on a live director', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const adm = (...args: string[]) => {
    const r = spawnSync(process.execPath, [ULVSADM, ...args], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
    return { out: r.stdout, err: r.stderr, code: r.status };
  };
  const explain = (port: number, ...more: string[]) => {
    const r = adm('--explain', '-t', `${V}:80`, '--client', `${C}:${port}`, '--json', ...more);
    assert.equal(r.code, 0, r.err);
    return JSON.parse(r.out) as { path: string; dest?: string; worker: number; skipped?: { server: string; why: string }[]; reason: string };
  };
  /** One HTTP request from the client namespace with this source port; the answering server's name. */
  const requestFrom = (port: number): string => {
    const js = `const s=require('net').connect({host:'${V}',port:80,localPort:${port}},()=>s.write('GET / HTTP/1.0\\r\\n\\r\\n'));let d='';s.on('data',c=>d+=c);s.on('end',()=>console.log(JSON.parse(d.slice(d.indexOf('\\r\\n\\r\\n')+4)).server));s.setTimeout(10000,()=>process.exit(3));`;
    const r = spawnSync('ip', ['netns', 'exec', bed.bed.clients[0]!, process.execPath, '-e', js], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.trim();
  };
  /** the connection table without its expiry column (which counts down meanwhile) */
  const tableLines = () => adm('-L', '-n', '-c').out.split('\n').filter((l) => l.startsWith('TCP')).map((l) => l.replace(/^TCP +\d+:\d+ /, 'TCP '));

  before(async () => {
    const rules = `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${RS[0]}:8080 -m -w 1\n-a -t ${V}:80 -r ${RS[1]}:8080 -m -w 1\n-a -t ${V}:80 -r ${RS[2]}:8080 -m -w 0\n`;
    bed = await new DirectorBed({ prefix: `ht-${randomBytes(2).toString('hex')}`, rules, realServers: 3, httpPort: 8080, ulvsdArgs: ['--workers', '2', '--sysctl', 'kernel_setup=0'] }).start(); // explain predicts the engine's rr pick; with kernel set-up the kernel's ticket picks (docs/kernel-setup.md)
  });
  after(async () => {
    await bed?.stop();
  });

  test('new flows: rr, its pick, the quiesced server skipped; nothing changes; the real connection goes there; then "connection found" on its worker', () => {
    const spec = steeringSpec([{ proto: 6, addr: parseIPv4(V), port: 80 }], []);
    const workers = new Set<number>();
    for (let port = 40000; port < 40008; port++) {
      const before = tableLines();
      const e = explain(port);
      assert.equal(e.path, 'scheduler', e.reason);
      assert.match(e.reason, /^new connection: rr picks /);
      assert.deepEqual(e.skipped, [{ server: `${RS[2]}:8080`, why: 'quiesced' }]);
      assert.equal(e.worker, queueOf(spec, 2, 6, parseIPv4(C), port, parseIPv4(V), 80), 'asked of the worker the steering gives the flow');
      workers.add(e.worker);
      assert.equal(explain(port).dest, e.dest, 'a second explain: the rr cursor did not move');
      assert.deepEqual(tableLines(), before, 'the connection table is unchanged');
      const served = requestFrom(port);
      assert.equal(`${RS[Number(served.slice(2)) - 1]}:8080`, e.dest, `port ${port}: served by ${served}, explain said ${e.dest}`);
      const found = explain(port, '--flags', 'ACK');
      assert.equal(found.path, 'connection', found.reason);
      assert.equal(found.dest, e.dest);
      assert.match(found.reason, /^existing connection in state (TIME_WAIT|CLOSE|FIN_WAIT|CLOSE_WAIT|LAST_ACK)/);
    }
    assert.equal(workers.size, 2, 'the ports covered both workers');
    const text = adm('--explain', '-t', `${V}:80`, '--client', `${C}:41000`);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, new RegExp(`skipped: ${RS[2]!.replace(/\./g, '\\.')}:8080 \\(quiesced, weight 0\\)`));
  });

  test('errors: an unknown service exits 1 "No such service"; a bad address exits 2; nothing changes', () => {
    const before = tableLines();
    const unknown = adm('--explain', '-t', `${V}:81`, '--client', `${C}:1`);
    assert.deepEqual([unknown.code, unknown.err], [1, 'No such service\n']);
    const bad = adm('--explain', '-t', `${V}:80`, '--client', '198.51.100.999:1');
    assert.equal(bad.code, 2);
    assert.match(bad.err, /illegal client address:port/);
    assert.deepEqual(tableLines(), before);
  });
});
