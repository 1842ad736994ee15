/**
 * Resource exhaustion in a running ulvsd (issue 14, "Faults"): each cause counted, logged once
 * (pressure-watch.ts: one line when it starts, one when it has gone), never a crash, and
 * recovery when the pressure goes. Real faults, no injection:
 *   - kernel flow map full: --fast-path-flows 8 (four NAT connections) and twelve held
 *     connections: the refused ones stay in user space and their downloads arrive intact; once
 *     entries have freed, new connections go to the kernel again. Control: before this change
 *     the refusals were only `update_errors` and nothing was logged: the counter and the line
 *     asserted here did not exist.
 *   - TUN queue full: the TUN's txqueuelen set to 2 under a UDP flood: the device's tx_dropped
 *     grows; ulvsd exports it (ulvs_tun_queue_dropped_total), logs it once, logs its recovery,
 *     and serves requests afterwards. Control: the same counter is 0 before the flood.
 *   - the admin API's refusals in /metrics: a 413 shows as ulvs_admin_refused_total.
 *   - descriptors exhausted for checkers: ulvsd's RLIMIT_NOFILE lowered (prlimit --pid) below
 *     its open descriptors while a real server's program is stopped: the checks do not run,
 *     no server is marked down (the director's shortage is not the server's), the cause is
 *     logged once; the limit raised, checks run again and the stopped server is taken out.
 *     Control: that last step (a check that runs does take it out), and the other servers
 *     never leaving (before this change EMFILE was a failed check and took all three out).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DirectorBed, SCRIPTS } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { run } from '../../src/lab/shell.js';
import { callAdmin } from '../../src/control/admin-client.js';
import { needsRoot } from '../support/root.js';
import { HeldConns } from '../support/held-conns.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const RS = [0, 1, 2].map(LAB.realServer);
const tag = `qx${process.pid % 10000}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** GET a URL from inside the director's namespace (the metrics listener is on its loopback). */
const getIn = (bed: DirectorBed, path: string) => run(['ip', 'netns', 'exec', bed.bed.director, process.execPath, '-e', `fetch('http://127.0.0.1:9640${path}').then(r => r.text()).then(t => process.stdout.write(t))`]);
/** One sample of /metrics (0 when absent). */
const sample = (text: string, name: string, labels = '') => Number(new RegExp(`^${name}${labels.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
const lines = (log: string, re: RegExp) => log.split('\n').filter((l) => re.test(l)).length;

describe('resource exhaustion: NAT with a small flow map, a TUN queue overflowing', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  before(async () => {
    const rules = `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${RS[0]}:8080 -m\n-A -u ${V}:5201 -s rr\n-a -u ${V}:5201 -r ${RS[0]}:5201 -m\n`;
    bed = await new DirectorBed({ prefix: `${tag}-a`, rules, realServers: 1, httpPort: 8080, ulvsdArgs: ['--workers', '1', '--fast-path-conns', '64', '--fast-path-flows', '8', '--fast-path-after', '2', '--metrics', '127.0.0.1:9640'] }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('admin refusals are in /metrics: a body over the limit is 413 and ulvs_admin_refused_total{reason="body_too_large"} 1', async () => {
    assert.equal(sample(getIn(bed, '/metrics'), 'ulvs_admin_refused_total', '{reason="body_too_large"}'), 0);
    const r = await callAdmin(bed.socket, 'PUT', '/v1/rules', 'x'.repeat((1 << 20) + 1));
    assert.equal(r.status, 413);
    const m = getIn(bed, '/metrics');
    assert.equal(sample(m, 'ulvs_admin_refused_total', '{reason="body_too_large"}'), 1, m.split('\n').filter((l) => l.includes('admin')).join('\n'));
    assert.equal(sample(m, 'ulvs_admin_refused_total', '{reason="no_space"}'), 0);
  });

  test('flow map full: 12 connections, room for 4; all 12 downloads intact, map_full counted and logged once; later connections go to the kernel again', async () => {
    const client = await new HeldConns(bed.bed.clients[0]!, { thenBytes: 2_000_000 }).ready();
    try {
      const { conns, failed } = await client.open(12);
      assert.deepEqual(failed, []);
      await sleep(3000); // a few held header lines each: every connection offered at least once
      const ends = await client.finish(conns.map((c) => c.id));
      assert.equal(ends.filter((e) => e.ev === 'done' && e.ok).length, 12, JSON.stringify(ends));
      const m = getIn(bed, '/metrics');
      console.log(`# map full: ${sample(m, 'ulvs_fastpath_map_full_total')} refusals, ${sample(m, 'ulvs_events_total', '{event="offloaded"}')} offers taken, 12/12 downloads of 2 MB intact`);
      assert.ok(sample(m, 'ulvs_fastpath_map_full_total') >= 8, `map full: ${sample(m, 'ulvs_fastpath_map_full_total')}`);
      await bed.logged(/kernel flow map full: connections stay in user space/);
      assert.equal(lines(bed.ulvsdLog, /kernel flow map full/), 1, 'logged once');
    } finally {
      await client.close();
    }
    // every connection closed: their entries are deleted at the FIN; the cause stops growing (the
    // workers' counters are looked at when read: scrape until the recovery is logged)
    for (let t0 = Date.now(); !/recovered: fastpath_map_full has not grown/.test(bed.ulvsdLog); await sleep(1000)) {
      assert.ok(Date.now() - t0 < 25_000, 'recovery logged');
      getIn(bed, '/metrics');
    }
    const full = sample(getIn(bed, '/metrics'), 'ulvs_fastpath_map_full_total');
    const offloaded = sample(getIn(bed, '/metrics'), 'ulvs_events_total', '{event="offloaded"}');
    const again = await new HeldConns(bed.bed.clients[0]!, { thenBytes: 2_000_000 }).ready();
    try {
      const { conns } = await again.open(3);
      await sleep(3000);
      const ends = await again.finish(conns.map((c) => c.id));
      assert.equal(ends.filter((e) => e.ev === 'done' && e.ok).length, 3);
    } finally {
      await again.close();
    }
    const m = getIn(bed, '/metrics');
    assert.equal(sample(m, 'ulvs_fastpath_map_full_total'), full, 'no refusal once entries were free');
    assert.ok(sample(m, 'ulvs_events_total', '{event="offloaded"}') >= offloaded + 3, 'the new connections went to the kernel');
  });

  test('TUN queue full: tx_dropped exported, logged once, recovery logged, service normal after', async () => {
    const dev = `ip netns exec ${bed.bed.director} ip link set ulvs0 txqueuelen`;
    const qlen = (JSON.parse(run(['ip', 'netns', 'exec', bed.bed.director, 'ip', '-j', 'link', 'show', 'ulvs0'])) as { txqlen: number }[])[0]!.txqlen;
    assert.equal(sample(getIn(bed, '/metrics'), 'ulvs_tun_queue_dropped_total'), 0, 'control: nothing dropped before the flood');
    run([...`${dev} 2`.split(' ')]);
    try {
      const flood = spawn('ip', ['netns', 'exec', bed.bed.clients[0]!, process.execPath, SCRIPTS.flood, '--proto', 'udp', '--dst', V, '--port', '5201', '--flows', '40000', '--rate', '200000', '--addrs', '64', '--src-base', '198.51.100.128'], { stdio: 'ignore' });
      await new Promise((r) => flood.once('exit', r));
      await bed.logged(/TUN queue full: the kernel dropped packets/, 5000);
    } finally {
      run([...`${dev} ${qlen}`.split(' ')]);
    }
    const dropped = sample(getIn(bed, '/metrics'), 'ulvs_tun_queue_dropped_total');
    console.log(`# TUN queue full: ${dropped} packets dropped by the kernel with txqueuelen 2 under 40,000 UDP packets at up to 200,000/s`);
    assert.ok(dropped > 0, 'the kernel dropped packets into the TUN');
    await bed.logged(/recovered: tun_queue_dropped has not grown/, 20_000);
    assert.equal(lines(bed.ulvsdLog, /TUN queue full/), 1, 'logged once');
    assert.equal(bed.client(['--requests', '5']).filter((x) => x['ok']).length, 5, 'served after the flood');
  });
});

const conf = `
virtual_server ${V} 80 {
  delay_loop 1
  lvs_sched rr
  lvs_method NAT
  protocol TCP
${RS.map((r) => `  real_server ${r} 8080 {\n    TCP_CHECK {\n      connect_timeout 1\n      retry 0\n    }\n  }`).join('\n')}
}
`;

describe('resource exhaustion: checkers out of file descriptors', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const saved = () => spawnSync(process.execPath, [ULVSADM, '-S', '-n'], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' }).stdout;
  const until = async (what: string, f: () => boolean, ms = 20_000) => {
    const t0 = Date.now();
    while (!f()) {
      if (Date.now() - t0 > ms) throw new Error(`not within ${ms} ms: ${what}\n${bed.ulvsdLog.slice(-2000)}`);
      await sleep(200);
    }
  };
  before(async () => {
    bed = await new DirectorBed({ prefix: `${tag}-b`, keepalived: conf, realServers: 3, httpPort: 8080, ulvsdArgs: ['--metrics', '127.0.0.1:9640'] }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('EMFILE: no check runs and no server is marked down; logged once; the limit raised, checks run again', async () => {
    await until('three servers up', () => RS.every((r) => saved().includes(`-r ${r}:8080`)));
    const pid = bed.ulvsd!.pid!;
    const [soft, hard] = run(['prlimit', '--pid', String(pid), '--nofile', '--noheadings', '--output', 'SOFT,HARD']).trim().split(/\s+/) as [string, string];
    const open = new Set(readdirSync(`/proc/${pid}/fd`).map(Number));
    let lowestFree = 0;
    while (open.has(lowestFree)) lowestFree++;
    run(['prlimit', '--pid', String(pid), `--nofile=${lowestFree}:${hard}`]);
    let raised = false;
    try {
      await bed.stopServer(1); // a check that ran now would take rs2 out
      await bed.logged(/checker not run: this process is out of file descriptors \(EMFILE\)/, 10_000);
      await sleep(4000); // four delay_loops
      assert.doesNotMatch(bed.ulvsdLog, /is down/, 'no server marked down while its checks could not run');
      run(['prlimit', '--pid', String(pid), `--nofile=${soft}:${hard}`]);
      raised = true;
    } finally {
      if (!raised) run(['prlimit', '--pid', String(pid), `--nofile=${soft}:${hard}`]);
    }
    await until('rs2 out once checks run again', () => {
      const s = saved();
      return !s.includes(`-r ${RS[1]}:8080`) && s.includes(`-r ${RS[0]}:8080`) && s.includes(`-r ${RS[2]}:8080`);
    });
    await bed.logged(new RegExp(`${RS[1]!.replace(/\./g, '\\.')}:8080 of TCP .* is down`), 10_000);
    assert.equal(lines(bed.ulvsdLog, /is down/), 1, `only rs2 went down:\n${bed.ulvsdLog.split('\n').filter((l) => /is down/.test(l)).join('\n')}`);
    assert.equal(lines(bed.ulvsdLog, /checker not run: this process is out of file descriptors/), 1, 'logged once');
    const m = getIn(bed, '/metrics');
    console.log(`# checkers under EMFILE: ${sample(m, 'ulvs_health_checks_not_run_total', '{reason="EMFILE"}')} checks not run, 0 servers marked down meanwhile`);
    assert.ok(sample(m, 'ulvs_health_checks_not_run_total', '{reason="EMFILE"}') >= 3, m.split('\n').filter((l) => l.includes('not_run')).join('\n'));
    await bed.logged(/recovered: health_not_run_EMFILE has not grown/, 20_000);
  });
});
