/**
 * SYN-cookie connections over a restart of ulvsd (syn_cookies=1; the hand-over record's
 * seq_delta, core/conn/handover.ts; the flow map's, daemon/handover.ts flowsToRecords):
 *   - SIGTERM with --keep-state: 20 streaming cookie connections, offloaded (the kernel
 *     translates; the next process adopts the entries, delta included), go on over 2 restarts;
 *   - SIGUSR2 with connections the engine forwards itself (--fast-path-after 200, slow streams:
 *     never offloaded): the state file alone carries the delta, the new engine translates;
 *   - kill -9: the offloaded ones are rebuilt from the flow map with their entries' delta.
 * Each ends with every byte echoed back and checked (no reset, no mismatch, none lost).
 * Control: built without the import's restore (conn/handover.ts importConns not calling
 * seqDeltas.restore), all three cases fail (the offloaded ones are adopted with delta 0, the
 * others forwarded untranslated: no progress after the restart); the unit test
 * syn-proxy-carry shows the same byte for byte.
 */
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { callAdmin } from '../../src/control/admin-client.js';
import type { DirectorBed } from '../../src/lab/director-bed.js';
import { needsRoot } from '../support/root.js';
import { restart, sleep, startBed, stopBed, StreamClient, type Bed } from '../support/restart-bed.js';

async function counters(bed: DirectorBed): Promise<Record<string, number>> {
  const j = (await callAdmin(bed.socket, 'GET', '/v1/counters')).json as { engine: Record<string, number>; datapath: Record<string, number> };
  return { ...j.engine, ...j.datapath };
}

async function endsIntact(client: StreamClient): Promise<void> {
  const fin = await client.next('final', 'SIGUSR2');
  assert.deepEqual({ errors: fin.errors, mismatches: fin.mismatches, lost: fin.lost }, { errors: 0, mismatches: 0, lost: 0 }, JSON.stringify(fin));
}

describe('SYN-cookie connections over a restart', { skip: needsRoot }, () => {
  const beds: Bed[] = [];
  after(async () => {
    for (const b of beds) await stopBed(b);
  });

  test('SIGTERM --keep-state: 20 offloaded cookie connections go on over 2 restarts', async (t: TestContext) => {
    const b = await startBed(['--keep-state', '--sysctl', 'syn_cookies=1'], { prefix: 'hq' });
    beds.push(b);
    const client = new StreamClient(b.bed.bed.clients[0]!, 20);
    await client.next('established', null);
    const c0 = await counters(b.bed);
    assert.equal(c0['send_synproxy_ack'], 20, 'every connection opened by the cookie handshake');
    for (let i = 0; i < 50 && (await counters(b.bed))['fastpath_active']! < 20; i++) await sleep(100);
    assert.equal((await counters(b.bed))['fastpath_active'], 20, 'offloaded');
    for (let k = 0; k < 2; k++) {
      const r = await restart(b.bed, 'SIGTERM');
      const p = await client.progressed((await client.status()).perConn, 30_000);
      assert.equal(p.n, 20, `restart ${k + 1}: every connection makes progress`);
      t.diagnostic(`restart ${k + 1}: gap ${r.gapMs} ms, longest time without an echo ${p.maxStallMs} ms`);
    }
    assert.match(b.bed.ulvsdLog, /hand-over: 20 entries taken over \(20 still in the kernel fast path\)/);
    await endsIntact(client);
    await stopBed(b);
    beds.pop();
  });

  test('SIGUSR2, cookie connections the engine forwards itself: the state file carries the delta', async () => {
    const b = await startBed(['--fast-path-after', '200', '--sysctl', 'syn_cookies=1'], { prefix: 'hq' });
    beds.push(b);
    const client = new StreamClient(b.bed.bed.clients[0]!, 10, ['--chunk', '64', '--every-ms', '500']);
    await client.next('established', null);
    await sleep(1000);
    assert.equal((await counters(b.bed))['fastpath_active'], 0, 'none offloaded');
    await restart(b.bed, 'SIGUSR2');
    assert.match(b.bed.ulvsdLog, /hand-over: 10 entries taken over \(0 still in the kernel fast path\)/);
    assert.equal((await client.progressed((await client.status()).perConn, 20_000)).n, 10, 'every connection makes progress after the restart');
    await endsIntact(client);
    await stopBed(b);
    beds.pop();
  });

  test('kill -9: offloaded cookie connections are rebuilt from the flow map with their delta', async () => {
    const b = await startBed(['--sysctl', 'syn_cookies=1'], { prefix: 'hq' });
    beds.push(b);
    const client = new StreamClient(b.bed.bed.clients[0]!, 10);
    await client.next('established', null);
    for (let i = 0; i < 50 && (await counters(b.bed))['fastpath_active']! < 10; i++) await sleep(100);
    assert.equal((await counters(b.bed))['fastpath_active'], 10, 'offloaded');
    await restart(b.bed, 'SIGKILL');
    assert.match(b.bed.ulvsdLog, /no state file; 10 connections rebuilt from the fast path's flow map/);
    await sleep(1000);
    assert.equal((await client.progressed((await client.status()).perConn, 20_000)).n, 10, 'every connection makes progress after the restart');
    // the rebuilt engine holds the delta too: a withdrawal (a rule change takes every connection
    // back) leaves the engine translating, and the streams go on
    await b.bed.reload(b.bed.o.rules! + `-A -t 203.0.113.10:9999 -s rr\n`);
    assert.equal((await client.progressed((await client.status()).perConn, 20_000)).n, 10, 'and after the engine took them back');
    await endsIntact(client);
    await stopBed(b);
    beds.pop();
  });
});
