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
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DirectorBed } from '../../src/lab/director-bed.js';
import { callAdmin } from '../../src/control/admin-client.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { restart, sleep, startBed, stopBed, StreamClient, type Bed } from '../support/restart-bed.js';

const counters = async (bed: DirectorBed) => (await callAdmin(bed.socket, 'GET', '/v1/counters')).json as { datapath: Record<string, number> };

/** The director's state files (kept-state.ts statePaths), named by its namespace's inode. */
function stateFiles(b: DirectorBed): { kernel: string; conns: string; carry: string } {
  const ino = /\[(\d+)\]/.exec(run(['ip', 'netns', 'exec', b.bed.director, 'readlink', '/proc/self/ns/net']))![1];
  const base = join(b.dir, `ulvs0.net${ino}`);
  return { kernel: `${base}.kernel.json`, conns: `${base}.conns`, carry: `${base}.carry` };
}

describe('restart state: stale records', { skip: needsRoot }, () => {
  const beds: Bed[] = [];
  after(async () => {
    for (const b of beds) await stopBed(b);
  });

  test('a kept-state record with another namespace cookie is ignored, counted and removed; with its own cookie it is used (control)', async () => {
    const b = await startBed(['--fast-path', 'off'], '-m', 'hB'); // the state file alone carries the connections
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
    const fresh = new StreamClient(b.bed.bed.clients[0]!, 5);
    await fresh.next('established', null);
    assert.equal((await fresh.progressed((await fresh.status()).perConn, 10_000)).n, 5, 'new connections are served');
    client.p.kill('SIGKILL');
    fresh.p.kill('SIGKILL');
    await stopBed(b);
    beds.pop();
  });
});
