/**
 * What a restart finds in --state-dir besides the connections (README "Restarts and upgrades"):
 *
 *   - a kept-state record left by another network namespace (the record is named by the
 *     namespace's inode number, which the kernel gives to a new namespace once the old one is
 *     gone): its cookie is not this namespace's, so it is ignored, counted
 *     (handover_stale_records), removed with the connection file beside it, and nothing of it
 *     is taken over. The reuse is made by writing another cookie into the record that a
 *     hand-over stop of this very director left, which is what the kernel's reuse of the inode
 *     looks like to the next start. Control: the same record with its own cookie, one restart
 *     earlier, hands every connection over (so "not taken over" is the cookie's doing).
 *   - a connection file and a carry file of a newer format version (a roll-back after an upgrade
 *     that changed the format): each refused with a message that says so, counted
 *     (handover_files_refused), not misread: no connection is taken over and the counters start
 *     from zero. The files are what a hand-over stop wrote, with the version field raised and
 *     the header checksum made right again. Control: the same files unchanged, one restart
 *     earlier, are taken.
 *   - counters, rates, the engine's counters and the rr/wrr cursors go on across a SIGUSR2
 *     restart that also changes the worker count (2 -> 3): every counter of every service and
 *     server is at least what it was (connections exactly), the rates are not zero, the outcome
 *     counters did not go down, and the next HTTP requests get the servers the rr and wrr
 *     sequences had next. Control: the same restart with the carry file deleted (what ulvsd did
 *     before it): counters and rates at zero, and rr starts again at the head, so the checks
 *     above see the difference.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { DirectorBed } from '../../src/lab/director-bed.js';
import { callAdmin } from '../../src/control/admin-client.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { LAB } from '../../src/lab/testbed.js';
import type { DirectorSnapshot } from '../../src/core/director.js';
import { newConnectionsServed, restart, rulesFor, sleep, startBed, stopBed, StreamClient, type Bed } from '../support/restart-bed.js';

const counters = async (bed: DirectorBed) => (await callAdmin(bed.socket, 'GET', '/v1/counters')).json as { datapath: Record<string, number> };

/** The director's state files (kept-state.ts statePaths), named by its namespace's inode. */
function stateFiles(b: DirectorBed): { kernel: string; conns: string; carry: string } {
  const ino = /\[(\d+)\]/.exec(run(['ip', 'netns', 'exec', b.bed.director, 'readlink', '/proc/self/ns/net']))![1];
  const base = join(b.dir, `ulvs0.net${ino}`);
  return { kernel: `${base}.kernel.json`, conns: `${base}.conns`, carry: `${base}.carry` };
}

/** The stream service of the restart bed, rr on :80 and wrr (3, 2, 1) on :81 over the real servers' HTTP :8080. */
const RULES = `${rulesFor('-m')}-A -t ${LAB.VIP}:80 -s rr\n${[0, 1, 2].map((i) => `-a -t ${LAB.VIP}:80 -r ${LAB.realServer(i)}:8080 -m\n`).join('')}-A -t ${LAB.VIP}:81 -s wrr\n${[0, 1, 2].map((i) => `-a -t ${LAB.VIP}:81 -r ${LAB.realServer(i)}:8080 -m -w ${3 - i}\n`).join('')}`;

const snapshot = async (bed: DirectorBed) => (await callAdmin(bed.socket, 'GET', '/v1/snapshot')).json as DirectorSnapshot;
const engineCounters = async (bed: DirectorBed) => (await callAdmin(bed.socket, 'GET', '/v1/counters')).json as { engine: Record<string, number> };
/** The real servers that `n` sequential HTTP requests to VIP:port got, in order (rs1, rs2, ...). */
const servers = (bed: DirectorBed, port: number, n: number) => bed.client(['--http', String(port), '--requests', String(n)]).map((x) => String(x['server']));
/** Every counter of every service and server, by name (service port, server address). */
const countersOf = (s: DirectorSnapshot): Record<string, number[]> => Object.fromEntries(s.services.flatMap((v) => [[`:${v.port}`, v.counters], ...v.dests.map((d) => [`:${v.port} ${d.addr >>> 0}`, d.counters])]));

describe('restart state: stale records, newer formats, counters and cursors', { skip: needsRoot }, () => {
  const beds: Bed[] = [];
  after(async () => {
    for (const b of beds) await stopBed(b);
  });

  test('a kept-state record with another namespace cookie is ignored, counted and removed; with its own cookie it is used (control)', async () => {
    const b = await startBed(['--fast-path', 'off'], { prefix: 'hB' }); // the state file alone carries the connections
    beds.push(b);
    const files = stateFiles(b.bed);
    const client = new StreamClient(b.bed.bed.clients[0]!, 20, ['--every-ms', '100']);
    await client.next('established', null);
    await sleep(500);
    // control: the record as written, with this namespace's cookie, hands the 20 over
    await restart(b.bed, 'SIGUSR2');
    assert.equal((await client.progressed((await client.status()).perConn, 20_000)).n, 20, 'control: taken over with its own cookie');
    const own = (JSON.parse(readFileSync(files.kernel, 'utf8')) as { netnsCookie: string }).netnsCookie;
    assert.match(own, /^\d+$/, 'the record names its namespace by cookie');

    await b.bed.stopDirector('SIGUSR2');
    assert.ok(existsSync(files.conns), 'a hand-over stop left the connections');
    const foreign = String(BigInt(own) + 1_000_003n);
    const rec = JSON.parse(readFileSync(files.kernel, 'utf8')) as Record<string, unknown>;
    writeFileSync(files.kernel, JSON.stringify({ ...rec, netnsCookie: foreign }));
    const logFrom = b.bed.ulvsdLog.length;
    await b.bed.startDirector();
    const log = b.bed.ulvsdLog.slice(logFrom);
    assert.match(log, new RegExp(`kept state \\S+ ignored and removed .*namespace cookie ${foreign}, this one's is ${own}`));
    assert.doesNotMatch(log, /hand-over: \d+ entries from/, 'the connection file beside it was not read');
    assert.equal(existsSync(files.conns), false, 'removed');
    assert.equal((JSON.parse(readFileSync(files.kernel, 'utf8')) as { netnsCookie: string }).netnsCookie, own, 'replaced by this start\'s own record');
    assert.equal((await counters(b.bed)).datapath.handover_stale_records, 1);
    await sleep(1000);
    assert.equal((await client.progressed((await client.status()).perConn, 5_000)).n, 0, 'none of the 20 was taken over');
    assert.equal(await newConnectionsServed(b.bed), 5, 'new connections are served');
    client.p.kill('SIGKILL');
    await stopBed(b);
    beds.pop();
  });

  test('counters, rates and the rr/wrr cursors go on across a SIGUSR2 restart from 2 to 3 workers; control: without the carry file they start again', async (t) => {
    const args = ['--workers', '2'];
    const b = await startBed(args, { prefix: 'hB', rules: RULES });
    beds.push(b);
    const files = stateFiles(b.bed);
    const rr = servers(b.bed, 80, 4);
    const wrr = servers(b.bed, 81, 11);
    assert.equal(new Set(rr.slice(0, 3)).size, 3, `rr takes the three in turn: ${rr}`);
    assert.equal(rr[3], rr[0]);
    assert.deepEqual(wrr.slice(6), wrr.slice(0, 5), `wrr repeats its period of 6: ${wrr}`);
    await sleep(2500); // an estimator step since the requests: rates are not zero
    const before = await snapshot(b.bed);
    const engineBefore = (await engineCounters(b.bed)).engine;
    assert.ok(before.services.find((v) => v.port === 80)!.rates[3]! > 0, 'a rate before the restart');

    args[1] = '3';
    await restart(b.bed, 'SIGUSR2');
    assert.match(b.bed.ulvsdLog, /counters and rate estimators of 3 services and 3 scheduler cursors from/);
    assert.equal(existsSync(files.carry), false, 'used once: removed');
    const after = await snapshot(b.bed);
    const [cb, ca] = [countersOf(before), countersOf(after)];
    assert.deepEqual(Object.keys(ca), Object.keys(cb));
    for (const [k, xs] of Object.entries(cb)) {
      assert.equal(ca[k]![0], xs[0], `${k}: connections`);
      xs.forEach((x, i) => assert.ok(ca[k]![i]! >= x, `${k} counter ${i}: ${ca[k]![i]} >= ${x}`));
    }
    assert.ok(after.services.find((v) => v.port === 80)!.rates[3]! > 0, 'the rate goes on');
    const engineAfter = (await engineCounters(b.bed)).engine;
    for (const [k, v] of Object.entries(engineBefore)) assert.ok(engineAfter[k]! >= v, `engine counter ${k}: ${engineAfter[k]} >= ${v}`);
    const rrNext = servers(b.bed, 80, 3);
    const wrrNext = servers(b.bed, 81, 6);
    assert.deepEqual(rrNext, [rr[1], rr[2], rr[0]], 'rr carries on');
    assert.deepEqual(wrrNext, [wrr[5], ...wrr.slice(0, 5)], 'wrr carries on');

    // control: the same restart without the carry file (the behaviour before it)
    await b.bed.stopDirector('SIGUSR2');
    assert.ok(existsSync(files.carry), 'a hand-over stop writes the carry file');
    rmSync(files.carry);
    await b.bed.startDirector();
    const ctl = await snapshot(b.bed);
    assert.ok(Object.values(countersOf(ctl)).every((xs) => xs.every((x) => x === 0)), 'control: counters from zero');
    assert.equal(ctl.services.find((v) => v.port === 80)!.rates[3], 0, 'control: rate from zero');
    const rrCtl = servers(b.bed, 80, 3);
    assert.deepEqual(rrCtl, rr.slice(0, 3), 'control: rr starts again at the head');
    assert.notDeepEqual(rrCtl, [rr[1], rr[2], rr[0]], 'control: which is not where it was');
    t.diagnostic(`rr ${rr} | after ${rrNext} | control ${rrCtl}; wrr ${wrr} | after ${wrrNext}`);
    await stopBed(b);
    beds.pop();
  });

  test('connection and carry files of a newer format version are refused with a clear message and counted, not misread; unchanged they are taken (control)', async () => {
    const b = await startBed(['--fast-path', 'off'], { prefix: 'hB' });
    beds.push(b);
    const files = stateFiles(b.bed);
    const client = new StreamClient(b.bed.bed.clients[0]!, 20, ['--every-ms', '100']);
    await client.next('established', null);
    await sleep(500);
    await restart(b.bed, 'SIGUSR2'); // control: the files as written are taken
    assert.match(b.bed.ulvsdLog, /hand-over: 20 entries from .* scheduler cursors from/s);
    assert.equal((await client.progressed((await client.status()).perConn, 20_000)).n, 20, 'control: taken over');
    const conns = (await snapshot(b.bed)).services[0]!.counters[0]!;
    assert.ok(conns >= 20, 'control: the counters came along');

    await b.bed.stopDirector('SIGUSR2');
    for (const f of [files.conns, files.carry]) {
      const bytes = readFileSync(f);
      bytes.writeUInt16LE(bytes.readUInt16LE(8) + 1, 8); // the format version, one ahead
      bytes.writeUInt32LE(crc32(bytes.subarray(0, 28)), 28);
      writeFileSync(f, bytes);
    }
    const from = b.bed.ulvsdLog.length;
    await b.bed.startDirector();
    const log = b.bed.ulvsdLog.slice(from);
    assert.match(log, /hand-over: \S+\.conns refused, starting with an empty connection table: version 2, this ulvsd reads version 1 \(written by a newer ulvsd\)/);
    assert.match(log, /hand-over: \S+\.carry refused, counters and scheduler cursors start from zero: version 2, this ulvsd reads version 1 \(written by a newer ulvsd\)/);
    assert.equal((await counters(b.bed)).datapath.handover_files_refused, 2);
    assert.equal((await snapshot(b.bed)).services[0]!.counters[0], 0, 'counters from zero');
    await sleep(1000);
    assert.equal((await client.progressed((await client.status()).perConn, 5_000)).n, 0, 'no connection taken from the refused file');
    client.p.kill('SIGKILL');
    await stopBed(b);
    beds.pop();
  });
});
