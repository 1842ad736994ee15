/**
 * Two ulvsd in one network namespace (issue 14, "Two daemons"; daemon/netns-claims.ts):
 *
 *   - a second `ulvsd --rules R --socket OTHER` is refused (exit 1), naming the running one's
 *     pid and admin socket, and changes nothing: the first keeps forwarding;
 *   - given its own --dev, --table and --pref, it runs beside the first and both forward;
 *     stopping the second (SIGTERM, a final stop) leaves the first's rules, table and
 *     forwarding; stopping the first leaves the second forwarding (net.ipv4.ip_forward, set
 *     back to 0 by the last one only), and the last one restores the value from before the
 *     first start;
 *   - `kill -USR2` and a start at once: the new one waits for the old one's hand-over (its
 *     claims say it is stopping) and takes the kernel side over;
 *   - control, what happened before the claims: the second started with an empty claims
 *     directory (its own mount namespace: it cannot see the first's claims) on the same
 *     device, table and preferences. It starts, and its stop deletes rules P and P+1 and
 *     flushes table 4200 that the first still needs: the first no longer forwards. The same
 *     assertions that pass above fail here, so they can fail.
 *
 * Names: prefix hD-, namespaces and temp paths removed in after().
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { DirectorBed, SCRIPTS, waitFor } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { CommandError, run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { CLAIMS_DIR } from '../../src/daemon/netns-claims.js';

const V = LAB.VIP;
const RS1 = LAB.realServer(0);
const RS2 = LAB.realServer(1);
// the second director serves its own port through its own real server (replies from RS2:8080
// are captured by its rules only)
const rulesA = `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${RS1}:8080 -m\n`;
const rulesB = `-A -t ${V}:81 -s rr\n-a -t ${V}:81 -r ${RS2}:8080 -m\n`;
const OWN = ['--dev', 'hD1', '--table', '4300', '--pref', '4300'];

describe('two ulvsd in one network namespace', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  let second: ChildProcess | null = null;
  let secondLog = '';
  let ipForwardBefore = '';
  const ns = () => bed.bed.director;
  const sysctl = (k: string) => run(['ip', 'netns', 'exec', ns(), 'sysctl', '-n', k]).trim();
  const rulesAt = (pref: number) => run(['ip', '-n', ns(), 'rule']).split('\n').filter((l) => l.startsWith(`${pref}:`) || l.startsWith(`${pref + 1}:`)).length;
  const tableRoutes = (t: number) => run(['ip', '-n', ns(), 'route', 'show', 'table', String(t)]).trim();
  const ok = (port: number) => bed.client(['--http', String(port), '--requests', '3', '--timeout', '1500']).filter((x) => x['ok']).length;
  const paths = () => ({ rules: join(bed.dir, 'rulesB'), socket: join(bed.dir, 'b.sock'), state: join(bed.dir, 'stateB') });

  /** Start a second ulvsd in the director namespace (`wrap`: a command around `ip netns exec`). */
  const startSecond = async (args: string[], wrap: string[] = []) => {
    const p = paths();
    writeFileSync(p.rules, rulesB);
    mkdirSync(p.state, { recursive: true });
    secondLog = '';
    const cmd = [...wrap, 'ip', 'netns', 'exec', ns(), process.execPath, SCRIPTS.ulvsd, '--rules', p.rules, '--socket', p.socket, '--state-dir', p.state, '--workers', '1', ...args];
    const c = spawn(cmd[0]!, cmd.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    second = c;
    c.stdout!.on('data', (d: Buffer) => (secondLog += d.toString()));
    c.stderr!.on('data', (d: Buffer) => (secondLog += d.toString()));
    await waitFor(c, /forwarding/, 15_000);
  };
  const stopSecond = async () => {
    const c = second;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise((r) => c.once('exit', r));
    c.kill('SIGTERM');
    const t = setTimeout(() => c.kill('SIGKILL'), 8000);
    await gone;
    clearTimeout(t);
  };

  before(async () => {
    bed = await new DirectorBed({
      rules: rulesA,
      realServers: 2,
      httpPort: 8080,
      prefix: `hD-${randomBytes(2).toString('hex')}`,
      ulvsdArgs: ['--workers', '1'],
      // the bed turns forwarding on; off here, so that a stop that restores it is seen
      beforeDirector: (b) => run(['ip', 'netns', 'exec', b.director, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']),
    }).start();
    ipForwardBefore = '0';
  });
  after(async () => {
    await stopSecond().catch(() => {});
    second?.kill('SIGKILL');
    await bed?.stop();
  });

  test('a second ulvsd on the same device, table and preferences is refused, naming the first; nothing changes', async () => {
    assert.equal(ok(80), 3);
    const pid = /forwarding with \d+ workers?\b.*?\bpid (\d+)/.exec(bed.ulvsdLog)?.[1];
    assert.ok(pid, bed.ulvsdLog);
    const p = paths();
    writeFileSync(p.rules, rulesB);
    let err: CommandError | null = null;
    try {
      run(['ip', 'netns', 'exec', ns(), process.execPath, SCRIPTS.ulvsd, '--rules', p.rules, '--socket', p.socket, '--state-dir', p.state]);
    } catch (e) {
      err = e as CommandError;
    }
    assert.ok(err instanceof CommandError, 'the second ulvsd started');
    assert.equal(err.status, 1);
    assert.match(err.stderr, new RegExp(`^ulvsd: another ulvsd \\(pid ${pid}, admin socket ${bed.socket.replace(/[.]/g, '\\.')}\\) uses TUN device ulvs0, routing table 4200, rule preference 4200, rule preference 4201 in this network namespace: give this one its own --dev, --table and --pref`));
    // only part of it in use: named alone
    const part = (() => {
      try {
        run(['ip', 'netns', 'exec', ns(), process.execPath, SCRIPTS.ulvsd, '--rules', p.rules, '--socket', p.socket, '--state-dir', p.state, '--dev', 'hD1', '--table', '4300', '--pref', '4199']);
      } catch (e) {
        return (e as CommandError).stderr;
      }
      return 'started';
    })();
    assert.match(part, /uses rule preference 4200 in this network namespace/);
    assert.equal(rulesAt(4200) > 0, true);
    assert.equal(ok(80), 3, 'the first still forwards');
  });

  test('with its own --dev, --table and --pref both run and forward; stopping the second leaves the first', async () => {
    const rulesFirst = rulesAt(4200);
    await startSecond(OWN);
    assert.match(secondLog, /hD1 up, 1 queue.*rules 4300-4301, table 4300/);
    assert.equal(ok(80), 3, 'the first forwards');
    assert.equal(ok(81), 3, 'the second forwards');
    await stopSecond();
    assert.equal(second!.exitCode, 0, secondLog);
    assert.match(secondLog, /stopped, routing removed/);
    assert.equal(rulesAt(4300), 0, 'the second removed its own rules');
    assert.equal(tableRoutes(4300), '');
    assert.equal(rulesAt(4200), rulesFirst, "and not the first's");
    assert.match(tableRoutes(4200), /default dev ulvs0/);
    assert.equal(sysctl('net.ipv4.ip_forward'), '1', 'forwarding stays on: the first still runs');
    assert.equal(ok(80), 3, 'the first still forwards');
  });

  test('stopping the first leaves the second forwarding; the last one restores ip_forward', async () => {
    await startSecond(OWN);
    assert.equal(await bed.stopDirector('SIGTERM'), 0);
    assert.equal(rulesAt(4200), 0, 'the first removed its own rules');
    assert.equal(sysctl('net.ipv4.ip_forward'), '1', 'not the shared sysctl the second needs');
    assert.equal(ok(81), 3, 'the second forwards');
    await stopSecond();
    assert.equal(sysctl('net.ipv4.ip_forward'), ipForwardBefore, 'the last one set it back to the value before the first start');
    await bed.startDirector(); // for the control
    assert.equal(ok(80), 3);
  });

  test('kill -USR2 and a start at once (README "Restarts and upgrades"): the new ulvsd waits for the hand-over, then takes over and forwards', async () => {
    const old = bed.ulvsd!;
    const oldPid = old.pid!;
    const oldExit = new Promise((r) => old.once('exit', r));
    old.kill('SIGUSR2');
    // start once the old one's claims say it is stopping (the signal handled), without waiting
    // for its exit, as the README's `kill -USR2 $(pidof ulvsd) && ulvsd ...` does
    const t0 = Date.now();
    const marked = () => readdirSync(CLAIMS_DIR).some((f) => f.endsWith('.dev-ulvs0.lock') && readFileSync(join(CLAIMS_DIR, f), 'utf8').includes(`"pid":${oldPid},`) && readFileSync(join(CLAIMS_DIR, f), 'utf8').includes('"stopping":true'));
    while (!marked()) {
      assert.ok(Date.now() - t0 < 5000, 'the old ulvsd marked its claims stopping');
      await new Promise((r) => setTimeout(r, 5));
    }
    // held there (SIGSTOP) until the new one says it waits: its hand-over is otherwise over
    // (100 ms) before a new node process gets to its claims, and nothing would be shown
    old.kill('SIGSTOP');
    const started = bed.startDirector();
    try {
      await bed.logged(new RegExp(`ulvsd pid ${oldPid} is stopping: waiting for it to finish`), 8000);
    } finally {
      old.kill('SIGCONT');
    }
    await started;
    await oldExit;
    assert.match(bed.ulvsdLog, /ulvs0 taken over from the previous process/);
    assert.equal(ok(80), 3);
  });

  test('control: without the claims (the second cannot see them) the second starts over the first, and its stop takes the first\'s routing', async () => {
    // its own mount namespace with an empty claims directory: it cannot see the first's claims,
    // which is ulvsd before them
    const wrap = ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs hD-claims ${CLAIMS_DIR} && exec "$@"`, 'sh'];
    await startSecond([], wrap);
    await stopSecond();
    assert.equal(rulesAt(4200), 0, "the second's stop deleted the first's rules");
    assert.equal(tableRoutes(4200), '', "and flushed the first's table");
    assert.equal(ok(80), 0, 'the first no longer forwards');
  });
});
