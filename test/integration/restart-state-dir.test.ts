/**
 * A restart with another --state-dir (README "Restarts and upgrades"): the new ulvsd finds no
 * kept-state record, but the previous one's fast path is still attached link-less on the
 * interfaces, carrying its offloaded connections. It is found (a program named ulvs_fastpath*
 * at the tcx ingress that no live process holds), taken over as after `kill -9`: its 30
 * offloaded connections are rebuilt from its flow map and go on to the end with 0 lost bytes,
 * and only one ulvs fast path stays attached.
 *
 * Control, first: while another process holds an fd of that program (as a ulvsd running with
 * another --dev would), a start with another --state-dir leaves it alone (logged): the new
 * process then knows none of the connections (fastpath_active 0) and two ulvs fast paths are
 * attached, which is what every start without a record did before the search. So the checks
 * of the takeover (fastpath_active 30, one program) see the difference.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { waitFor, type DirectorBed } from '../../src/lab/director-bed.js';
import { callAdmin } from '../../src/control/admin-client.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { sleep, startBed, stopBed, StreamClient, type Bed } from '../support/restart-bed.js';

const BPF_JS = fileURLToPath(new URL('../../src/datapath/tun/bpf.js', import.meta.url)); // dist/src/...

const counters = async (bed: DirectorBed) => (await callAdmin(bed.socket, 'GET', '/v1/counters')).json as { datapath: Record<string, number> };

/** The ids of the ulvs_fastpath programs at the tcx ingress of the director's interfaces. */
function ulvsFastPaths(ns: string): number[] {
  const script = `const m = await import(${JSON.stringify(BPF_JS)}); const { readdirSync, readFileSync } = await import('node:fs'); const ids = new Set();
for (const dev of readdirSync('/sys/class/net')) { if (dev === 'lo') continue; let list = []; try { list = m.tcxIngressProgIds(Number(readFileSync('/sys/class/net/' + dev + '/ifindex', 'utf8'))); } catch {}
  for (const id of list) { const fd = m.fdById('prog', id); if (fd !== null && m.progInfo(fd).name.startsWith('ulvs_fastpath')) ids.add(id); } }
console.log(JSON.stringify([...ids]));`;
  return JSON.parse(run(['ip', 'netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script])) as number[];
}

/** A process that holds an fd of program `id` until killed. */
async function holder(id: number): Promise<ChildProcess> {
  const p = spawn(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(BPF_JS)}); console.log('held', m.fdById('prog', ${id})); setInterval(() => {}, 1e9);`], { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitFor(p, /held \d+/);
  return p;
}

describe('restart with another --state-dir', { skip: needsRoot }, () => {
  const beds: Bed[] = [];
  const cleanup: (() => void)[] = [];
  after(async () => {
    for (const f of cleanup) f();
    for (const b of beds) await stopBed(b);
  });

  test('the fast path the previous ulvsd left is found and taken over; control: one a live process holds is left alone', async (t) => {
    const args: string[] = [];
    const b = await startBed(args, { prefix: 'hB' });
    beds.push(b);
    const dirs = [mkdtempSync('/tmp/hB-statedir-'), mkdtempSync('/tmp/hB-statedir-')];
    cleanup.push(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
    const client = new StreamClient(b.bed.bed.clients[0]!, 30);
    await client.next('established', null);
    for (let i = 0; i < 100 && (await counters(b.bed)).datapath.fastpath_active! < 30; i++) await sleep(200);
    assert.equal((await counters(b.bed)).datapath.fastpath_active, 30, 'every connection offloaded');
    await b.bed.stopDirector('SIGUSR2'); // the fast path stays, recorded in the bed's own state dir
    const kept = readdirKept(b.bed.dir);
    const P = kept.fastPath.progId;
    assert.deepEqual(ulvsFastPaths(b.bed.bed.director), [P]);

    // control: held by a live process -> left alone; the new process knows no connection
    const h = await holder(P);
    cleanup.push(() => h.kill('SIGKILL'));
    args.push('--state-dir', dirs[0]!);
    let from = b.bed.ulvsdLog.length;
    await b.bed.startDirector();
    assert.match(b.bed.ulvsdLog.slice(from), new RegExp(`a ulvs fast path held by a running process \\(pid ${h.pid}\\) is attached here \\(program ${P} on .*\\): left alone`));
    await sleep(1000);
    assert.equal((await counters(b.bed)).datapath.fastpath_active, 0, 'control: no connection known');
    assert.equal(ulvsFastPaths(b.bed.bed.director).length, 2, 'control: two fast paths attached');
    await b.bed.stopDirector('SIGTERM'); // a final stop: removes its own fast path and routing, not P
    h.kill('SIGKILL');
    await new Promise((r) => h.once('exit', r));
    assert.deepEqual(ulvsFastPaths(b.bed.bed.director), [P], 'P alone, unheld now');

    // another --state-dir, nobody holds P: taken over, its connections rebuilt from its flow map
    args.splice(0, args.length, '--state-dir', dirs[1]!);
    from = b.bed.ulvsdLog.length;
    await b.bed.startDirector();
    const log = b.bed.ulvsdLog.slice(from);
    assert.match(log, new RegExp(`a fast path an earlier ulvsd left attached \\(program ${P} on .*\\) has no kept-state record in ${dirs[1]} \\(was it started with another --state-dir\\?\\): taken over`));
    assert.match(log, /no state file; 30 connections rebuilt from the fast path's flow map/);
    assert.equal((await counters(b.bed)).datapath.fastpath_active, 30, 'the 30 connections are this process\'s');
    const now = ulvsFastPaths(b.bed.bed.director);
    assert.equal(now.length, 1, 'one fast path attached');
    assert.notEqual(now[0], P, 'this binary\'s program, with P\'s maps');
    const p = await client.progressed((await client.status()).perConn, 20_000);
    assert.equal(p.n, 30);
    const fin = await client.next('final', 'SIGUSR2');
    assert.deepEqual({ errors: fin.errors, mismatches: fin.mismatches, lost: fin.lost }, { errors: 0, mismatches: 0, lost: 0 }, JSON.stringify(fin));
    t.diagnostic(`program ${P} left behind, taken over by ${now[0]}; ${fin.recv} bytes echoed`);
    await stopBed(b);
    beds.pop();
  });
});

/** The kept-state record in `dir` (one director per bed). */
function readdirKept(dir: string): { fastPath: { progId: number } } {
  const f = run(['sh', '-c', `ls ${dir}/*.kernel.json`]).trim();
  return JSON.parse(readFileSync(f, 'utf8')) as { fastPath: { progId: number } };
}
