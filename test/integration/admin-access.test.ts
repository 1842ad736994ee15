/**
 * Who may do what (issue 14): the admin socket is root's alone, and the metrics listener
 * serves the /proc texts (every client's address) only on loopback.
 *
 *   - ulvsd's admin socket is put, with --socket, in a directory every user can search and
 *     write (mode 1777, as /tmp): the socket is 0600, and the user `nobody` (setpriv) can
 *     neither list (ulvsadm -L -n, GET /v1/rules, /v1/proc/ip_vs_conn) nor change anything
 *     (PUT /v1/rules, DELETE /v1/services): each connect(2) is refused with EACCES, and the
 *     rules are unchanged. Control: the same socket made 0666 for a moment lets nobody read
 *     the rules: the check sees a socket others may use, and nobody's client really runs.
 *   - --metrics on the director's public address is refused without --metrics-public (exit 2,
 *     the reason); with it, a client host reads /metrics and the dashboard (without its recent
 *     events) but gets 403 for the /proc texts;
 *     control: the same path over the admin socket (root) is served.
 *
 * Names: prefix hD-, namespaces and temp paths removed in after().
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectorBed, SCRIPTS } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { CommandError, run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { callAdmin } from '../../src/control/admin-client.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const rules = `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${LAB.realServer(0)}:8080 -m\n`;
const METRICS = `${LAB.DIRECTOR_PUBLIC}:9640`;
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

/** What a client run as nobody gets for each request: the HTTP status, or the connect error's code. */
const asNobodyScript = (socket: string) => `
const { request } = require('node:http');
const one = (method, path, body) => new Promise((resolve) => {
  const req = request({ socketPath: ${JSON.stringify(socket)}, method, path }, (res) => { let t = ''; res.on('data', (d) => (t += d)); res.on('end', () => resolve({ status: res.statusCode, text: t })); });
  req.on('error', (e) => resolve({ error: e.code }));
  if (body) req.write(body);
  req.end();
});
(async () => {
  const out = {};
  out.getRules = await one('GET', '/v1/rules');
  out.conns = await one('GET', '/v1/proc/ip_vs_conn');
  out.putRules = await one('PUT', '/v1/rules', '');
  out.deleteAll = await one('DELETE', '/v1/services');
  out.uid = process.getuid();
  process.stdout.write(JSON.stringify(out));
})();`;

describe('who may use the admin socket and the metrics listener', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  let pub: string;
  let socket: string;
  const asNobody = () => JSON.parse(run([...NOBODY, process.execPath, '-e', asNobodyScript(socket)])) as Record<string, { status?: number; text?: string; error?: string } | number>;

  before(async () => {
    pub = mkdtempSync(join(tmpdir(), 'hD-pub-'));
    chmodSync(pub, 0o1777); // everyone may search and write it, as /tmp
    socket = join(pub, 'admin.sock');
    bed = await new DirectorBed({ rules, realServers: 1, httpPort: 8080, prefix: `hD-${randomBytes(2).toString('hex')}`, ulvsdArgs: ['--workers', '1', '--socket', socket, '--metrics', METRICS, '--metrics-public'] }).start();
  });
  after(async () => {
    await bed?.stop();
    rmSync(pub, { recursive: true, force: true });
  });

  test('nobody cannot connect to the admin socket in a world-writable directory: no listing, no change', async () => {
    assert.equal(statSync(socket).mode & 0o777, 0o600);
    const before = (await callAdmin(socket, 'GET', '/v1/rules')).text;
    assert.equal(before, rules.replace(/ -m\n/, ' -m -w 1\n'));
    const r = asNobody();
    assert.equal(r['uid'], 65534);
    for (const k of ['getRules', 'conns', 'putRules', 'deleteAll']) assert.deepEqual(r[k], { error: 'EACCES' }, k);
    let err: CommandError | null = null;
    try {
      run([...NOBODY, 'env', `ULVS_SOCKET=${socket}`, process.execPath, ULVSADM, '-L', '-n']);
    } catch (e) {
      err = e as CommandError;
    }
    assert.ok(err instanceof CommandError, 'ulvsadm as nobody listed the rules');
    assert.match(err.stderr, /permission denied on ulvsd's admin socket .*admin\.sock \(EACCES\): the socket and its directory are root's alone .* run ulvsadm as root/);
    assert.equal((await callAdmin(socket, 'GET', '/v1/rules')).text, before, 'nothing changed');
    assert.equal(bed.client(['--requests', '2']).filter((x) => x['ok']).length, 2);
  });

  test('control: the same socket made 0666 lets nobody read and change the rules', async () => {
    chmodSync(socket, 0o666);
    try {
      const r = asNobody();
      assert.equal((r['getRules'] as { status: number }).status, 200, JSON.stringify(r));
      assert.match((r['getRules'] as { text: string }).text, /-A -t 203\.0\.113\.10:80 -s rr/);
    } finally {
      chmodSync(socket, 0o600);
    }
    // the control's DELETE went through: put the rules back
    assert.equal((await callAdmin(socket, 'PUT', '/v1/rules', rules)).status, 200);
  });

  test('--metrics on a public address: refused without --metrics-public; with it, /metrics and the dashboard only', async () => {
    let err: CommandError | null = null;
    try {
      run(['ip', 'netns', 'exec', bed.bed.director, process.execPath, SCRIPTS.ulvsd, '--rules', bed.rulesFile, '--socket', join(bed.dir, 'x.sock'), '--metrics', METRICS]);
    } catch (e) {
      err = e as CommandError;
    }
    assert.ok(err instanceof CommandError);
    assert.equal(err.status, 2);
    assert.match(err.stderr, /--metrics 198\.51\.100\.1:9640 is not a loopback address: every host that reaches it would read the metrics; add --metrics-public/);

    const get = (path: string) => JSON.parse(run(['ip', 'netns', 'exec', bed.bed.clients[0]!, process.execPath, '-e', `fetch('http://${METRICS}${path}').then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, text: await r.text() })))`])) as { status: number; text: string };
    const m = get('/metrics');
    assert.equal(m.status, 200);
    assert.match(m.text, /node_ipvs_backend_weight\{/);
    for (const p of ['/proc/net/ip_vs', '/proc/net/ip_vs_stats', '/proc/net/ip_vs_conn']) {
      const r = get(p);
      assert.equal(r.status, 403, p);
      assert.match(r.text, /public address \(--metrics-public\) and serves \/metrics and the dashboard only/);
    }
    // the dashboard shows what /metrics shows, without the log's recent events (log lines may
    // name files and hosts); control: the loopback listener's status has them (dashboard.test.ts)
    assert.equal(get('/').status, 200);
    const st = get('/v1/status');
    assert.equal(st.status, 200);
    const status = JSON.parse(st.text) as { services: { id: string }[]; events?: unknown };
    assert.ok(status.services.length > 0, st.text);
    assert.equal('events' in status, false, st.text);
    // control: the text exists and is served where it may be (root's admin socket)
    const conns = await callAdmin(socket, 'GET', '/v1/proc/ip_vs_conn');
    assert.equal(conns.status, 200);
    assert.match(conns.text, /^Pro FromIP/);
  });
});
