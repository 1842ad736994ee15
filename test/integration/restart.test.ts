/**
 * Restarts and upgrades keep established connections (README "Restarts and upgrades"):
 *
 *   - 200 streaming TCP connections (NAT, three real servers echoing every byte, each connection
 *     checking every echoed byte against what it sent) survive 10 consecutive SIGTERM + start
 *     cycles of ulvsd run with --keep-state: after each start every connection makes progress,
 *     and at the end every byte sent has come back, none reset, none mismatched;
 *   - the same with --fast-path off (every packet through the engine: the state file alone
 *     carries the connections) over SIGUSR2 restarts, and with direct routing;
 *   - kill -9: the offloaded connections go on (the fast path stays attached, the next start
 *     rebuilds them from the flow map), the ones not yet offloaded are lost: the documented bound;
 *   - control: SIGTERM without --keep-state (a final stop, the behaviour before hand-over) and a
 *     start: the connections make no progress any more. This is what the first check would see
 *     if the hand-over did not work, so the test can fail.
 *
 * Progress is measured from a status taken after the new process forwards, so bytes that were
 * in flight before the stop do not count. The gap of each restart (signal sent -> the new
 * process forwarding; packets of connections that are not offloaded are dropped meanwhile and
 * retransmitted by TCP) and the longest time a connection went without an echo are printed
 * (t.diagnostic) for the record.
 */
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DirectorBed } from '../../src/lab/director-bed.js';
import { callAdmin } from '../../src/control/admin-client.js';
import { run } from '../../src/lab/shell.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';
import { newConnectionsServed, restart, sleep, startBed, stopBed, StreamClient, type Bed } from '../support/restart-bed.js';

const counters = async (bed: DirectorBed) => (await callAdmin(bed.socket, 'GET', '/v1/counters')).json as { datapath: Record<string, number> };
const summary = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return `min ${s[0]} median ${s[Math.floor(s.length / 2)]} max ${s[s.length - 1]}`;
};

describe('restarts keep established connections', { skip: needsRoot }, () => {
  const beds: Bed[] = [];
  after(async () => {
    for (const b of beds) await stopBed(b);
  });

  test('NAT: 200 streaming connections survive 10 SIGTERM + start cycles (--keep-state): 0 lost bytes, no reset', async (t: TestContext) => {
    const b = await startBed(['--keep-state']);
    beds.push(b);
    const client = new StreamClient(b.bed.bed.clients[0]!, 200);
    await client.next('established', null);
    await sleep(1000);
    const timings: { exitMs: number; gapMs: number }[] = [];
    const stalls: number[] = [];
    for (let k = 0; k < 10; k++) {
      timings.push(await restart(b.bed, 'SIGTERM'));
      const p = await client.progressed((await client.status()).perConn, 30_000); // from the new process's start on
      assert.equal(p.n, 200, `restart ${k + 1}: every connection makes progress after the start`);
      stalls.push(p.maxStallMs);
    }
    assert.match(b.bed.ulvsdLog, /hand-over: 2\d\d entries taken over \(\d+ still in the kernel fast path\)/);
    const fin = await client.next('final', 'SIGUSR2');
    assert.deepEqual({ errors: fin.errors, mismatches: fin.mismatches, lost: fin.lost, unfinished: fin.unfinished }, { errors: 0, mismatches: 0, lost: 0, unfinished: 0 }, JSON.stringify(fin));
    assert.ok((fin.recv as number) > 200 * 100_000, `bytes echoed: ${fin.recv}`);
    t.diagnostic(`10 restarts: signal -> old process gone ${summary(timings.map((x) => x.exitMs))} ms; signal -> new process forwarding (gap for packets not offloaded) ${summary(timings.map((x) => x.gapMs))} ms; longest time without an echo per restart ${summary(stalls)} ms; ${fin.recv} bytes echoed`);
    await stopBed(b);
    beds.pop();
  });

  test('--fast-path off: every packet through the engine, the state file alone carries 100 connections over 3 SIGUSR2 restarts, with 2, then 3, 1 and 2 workers', async (t: TestContext) => {
    const args = ['--fast-path', 'off', '--workers', '2'];
    const b = await startBed(args);
    beds.push(b);
    const client = new StreamClient(b.bed.bed.clients[0]!, 100, ['--every-ms', '100']);
    await client.next('established', null);
    await sleep(500);
    const gaps: number[] = [];
    const stalls: number[] = [];
    for (const [k, workers] of ['3', '1', '2'].entries()) {
      args[3] = workers; // each connection must land in the worker the steering now sends it to
      gaps.push((await restart(b.bed, 'SIGUSR2')).gapMs);
      const p = await client.progressed((await client.status()).perConn, 30_000);
      assert.equal(p.n, 100, `restart ${k + 1}`);
      stalls.push(p.maxStallMs);
    }
    assert.match(b.bed.ulvsdLog, /hand-over: 100 entries taken over \(0 still in the kernel fast path\)/);
    const fin = await client.next('final', 'SIGUSR2');
    assert.deepEqual({ errors: fin.errors, mismatches: fin.mismatches, lost: fin.lost }, { errors: 0, mismatches: 0, lost: 0 }, JSON.stringify(fin));
    t.diagnostic(`3 restarts, no fast path, 2 -> 3 -> 1 -> 2 workers: gap ${summary(gaps)} ms; longest time without an echo ${summary(stalls)} ms`);
    await stopBed(b);
    beds.pop();
  });

  test('direct routing: 100 streaming connections survive 3 SIGTERM + start cycles (--keep-state), 0 lost bytes', async (t: TestContext) => {
    const b = await startBed(['--keep-state'], { method: '-g' });
    beds.push(b);
    const client = new StreamClient(b.bed.bed.clients[0]!, 100);
    await client.next('established', null);
    await sleep(1000);
    const gaps: number[] = [];
    for (let k = 0; k < 3; k++) {
      gaps.push((await restart(b.bed, 'SIGTERM')).gapMs);
      assert.equal((await client.progressed((await client.status()).perConn, 30_000)).n, 100, `restart ${k + 1}`);
    }
    assert.match(b.bed.ulvsdLog, /hand-over: 100 entries taken over \(\d+ still in the kernel fast path\)/);
    const fin = await client.next('final', 'SIGUSR2');
    assert.deepEqual({ errors: fin.errors, mismatches: fin.mismatches, lost: fin.lost }, { errors: 0, mismatches: 0, lost: 0 }, JSON.stringify(fin));
    t.diagnostic(`DR, 3 restarts: gap ${summary(gaps)} ms`);
    await stopBed(b);
    beds.pop();
  });

  test('kill -9: offloaded connections go on (rebuilt from the flow map), the ones not yet offloaded are lost', async (t: TestContext) => {
    // kernel set-up off: these connections are offered by the engine after 200 packets (with it
    // on, the kernel makes every one: the next test)
    const b = await startBed(['--fast-path-after', '200', '--sysctl', 'kernel_setup=0']);
    beds.push(b);
    const fast = new StreamClient(b.bed.bed.clients[0]!, 50);
    const slow = new StreamClient(b.bed.bed.clients[0]!, 10, ['--chunk', '16', '--every-ms', '2000']);
    await fast.next('established', null);
    await slow.next('established', null);
    // the fast ones pass 200 packets within seconds; the slow ones stay far below
    for (let i = 0; i < 100 && (await counters(b.bed)).datapath.fastpath_active! < 50; i++) await sleep(200);
    assert.equal((await counters(b.bed)).datapath.fastpath_active, 50, 'the 50 fast connections are offloaded, the 10 slow ones are not');
    assert.equal((await slow.progressed((await slow.status()).perConn, 10_000)).n, 10, 'the slow ones are alive before the kill');
    const r = await restart(b.bed, 'SIGKILL');
    await sleep(2500); // what the slow ones had in flight has arrived (or been dropped) by now
    const fBefore = (await fast.status()).perConn;
    const sBefore = (await slow.status()).perConn;
    assert.match(b.bed.ulvsdLog, /no state file; 50 connections rebuilt from the fast path's flow map/);
    const pf = await fast.progressed(fBefore, 20_000);
    assert.equal(pf.n, 50, 'every offloaded connection goes on');
    const ps = await slow.progressed(sBefore, 8_000);
    assert.equal(ps.n, 0, 'no connection that was not offloaded goes on (the bound)');
    const fin = await fast.next('final', 'SIGUSR2');
    assert.deepEqual({ errors: fin.errors, mismatches: fin.mismatches, lost: fin.lost }, { errors: 0, mismatches: 0, lost: 0 }, JSON.stringify(fin));
    t.diagnostic(`kill -9 and start: gap ${r.gapMs} ms; longest time without an echo for the offloaded connections ${pf.maxStallMs} ms`);
    slow.p.kill('SIGKILL');
    await stopBed(b);
    beds.pop();
  });

  test('kill -9 with kernel set-up: every connection the kernel made goes on (rebuilt from the flow map), slow ones too', async (t: TestContext) => {
    const b = await startBed(['--fast-path-after', '200', '--sysctl', 'kernel_setup=1']);
    beds.push(b);
    // the real servers' neighbour entries first: a SYN whose next hop is unresolved goes to the engine (KS_NO_ROUTE)
    b.bed.bed.realServers.forEach((_, i) => run(['ip', 'netns', 'exec', b.bed.bed.director, 'ping', '-c', '1', '-W', '1', LAB.realServer(i)]));
    const fast = new StreamClient(b.bed.bed.clients[0]!, 50);
    const slow = new StreamClient(b.bed.bed.clients[0]!, 10, ['--chunk', '16', '--every-ms', '2000']);
    await fast.next('established', null);
    await slow.next('established', null);
    const c = await counters(b.bed);
    assert.equal(c.datapath.kernel_opened, 60, 'all 60 set up by the kernel');
    assert.equal(c.datapath.fastpath_active, 60, 'and held in the fast path from their SYN, slow ones included');
    const r = await restart(b.bed, 'SIGKILL');
    await sleep(2500);
    const fBefore = (await fast.status()).perConn;
    const sBefore = (await slow.status()).perConn;
    assert.match(b.bed.ulvsdLog, /no state file; 60 connections rebuilt from the fast path's flow map/);
    assert.equal((await fast.progressed(fBefore, 20_000)).n, 50, 'every fast connection goes on');
    assert.equal((await slow.progressed(sBefore, 10_000)).n, 10, 'every slow one too (control: the test before, without kernel set-up, loses them)');
    const fin = await fast.next('final', 'SIGUSR2');
    assert.deepEqual({ errors: fin.errors, mismatches: fin.mismatches, lost: fin.lost }, { errors: 0, mismatches: 0, lost: 0 }, JSON.stringify(fin));
    t.diagnostic(`kill -9 with kernel set-up: gap ${r.gapMs} ms`);
    slow.p.kill('SIGKILL');
    await stopBed(b);
    beds.pop();
  });

  test('a damaged state file: refused with its reason, counted, the start goes on with an empty table and serves new connections', async () => {
    const b = await startBed(['--fast-path', 'off']); // nothing to rebuild from the kernel: the file is all there is
    beds.push(b);
    const client = new StreamClient(b.bed.bed.clients[0]!, 20);
    await client.next('established', null);
    await b.bed.stopDirector('SIGUSR2');
    const ino = /\[(\d+)\]/.exec(run(['ip', 'netns', 'exec', b.bed.bed.director, 'readlink', '/proc/self/ns/net']))![1];
    const file = join(b.bed.dir, `ulvs0.net${ino}.conns`);
    const bytes = readFileSync(file);
    assert.equal(bytes.readUInt32LE(12), 20, 'the file holds the 20 connections');
    bytes[bytes.length - 5]! ^= 0x01; // one bit in the last record
    writeFileSync(file, bytes);
    await b.bed.startDirector();
    assert.match(b.bed.ulvsdLog, /hand-over: \S+ refused, starting with an empty connection table: records checksum mismatch/);
    assert.equal(existsSync(file), false, 'used (and removed) once');
    assert.equal((await counters(b.bed)).datapath.handover_files_refused, 1);
    await sleep(1000);
    const p = await client.progressed((await client.status()).perConn, 5_000);
    assert.equal(p.n, 0, 'no connection was taken over: none of the 20 goes on');
    assert.equal(await newConnectionsServed(b.bed), 5, 'new connections are served');
    client.p.kill('SIGKILL');
    await stopBed(b);
    beds.pop();
  });

  test('control: a final stop (SIGTERM without --keep-state) and a start lose the connections', async () => {
    const b = await startBed([]);
    beds.push(b);
    const client = new StreamClient(b.bed.bed.clients[0]!, 50);
    await client.next('established', null);
    await sleep(1000);
    await restart(b.bed, 'SIGTERM');
    assert.match(b.bed.ulvsdLog, /stopped, routing removed/);
    await sleep(1000); // what was in flight before the stop has arrived (or been dropped) by now
    const p = await client.progressed((await client.status()).perConn, 8_000);
    assert.ok(p.n <= 2, `connections that went on after a final stop: ${p.n} of 50`);
    client.p.kill('SIGKILL');
    await stopBed(b);
    beds.pop();
  });
});
