/**
 * A restart in keepalived mode with `alpha` (README "Restarts and upgrades"): keepalived starts
 * an `alpha` server down until its first check passes, so a new ulvsd's first rules would lack
 * every server and the connections handed over would have no server to be bound to (not taken
 * over, their flow entries deleted). The stopping ulvsd hands each server's health over with
 * the counters (carry file), and the next one starts a server that was up as up: the 30
 * streaming connections go on.
 *
 * Control: the same restart with the carry file deleted (what ulvsd did before it): the servers
 * start down, all 30 connections are refused by the import ("whose service or real server is
 * gone") and make no progress any more, although the servers come back at their first check.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';
import { PORT, restart, sleep, startBed, stopBed, StreamClient, type Bed } from '../support/restart-bed.js';

const CONF = `global_defs { router_id lb1 }
virtual_server ${LAB.VIP} ${PORT} {
  delay_loop 2
  lb_algo rr
  lb_kind NAT
  alpha
${[0, 1, 2].map((i) => `  real_server ${LAB.realServer(i)} ${PORT} { weight 1\n    TCP_CHECK { connect_port 8080\n      connect_timeout 1 }\n  }\n`).join('')}}
`;

describe('restart in keepalived mode with alpha', { skip: needsRoot }, () => {
  const beds: Bed[] = [];
  after(async () => {
    for (const b of beds) await stopBed(b);
  });

  test('the servers\' health is handed over: the connections go on; control: without it the alpha servers start down and the connections are lost', async () => {
    const b = await startBed([], { prefix: 'hB', keepalived: CONF });
    beds.push(b);
    for (let i = 0; i < 100 && (b.bed.ulvsdLog.match(/is up: TCP_CHECK/g) ?? []).length < 3; i++) await sleep(100);
    assert.equal((b.bed.ulvsdLog.match(/is up: TCP_CHECK/g) ?? []).length, 3, 'alpha: each server up after its first check');
    const client = new StreamClient(b.bed.bed.clients[0]!, 30, ['--every-ms', '100']);
    await client.next('established', null);
    await sleep(1000);

    let from = b.bed.ulvsdLog.length;
    await restart(b.bed, 'SIGUSR2');
    let log = b.bed.ulvsdLog.slice(from);
    assert.match(log, /health of 3 real servers written to/);
    assert.match(log, /hand-over: 30 entries taken over \(\d+ still in the kernel fast path\); not taken: 0 whose service or real server is gone/);
    assert.equal((await client.progressed((await client.status()).perConn, 20_000)).n, 30, 'every connection goes on');

    // control: the carry file (with the health) deleted before the start
    await b.bed.stopDirector('SIGUSR2');
    const carry = readdirSync(b.bed.dir).find((f) => f.endsWith('.carry'));
    assert.ok(carry !== undefined && existsSync(join(b.bed.dir, carry)));
    rmSync(join(b.bed.dir, carry));
    from = b.bed.ulvsdLog.length;
    await b.bed.startDirector();
    log = b.bed.ulvsdLog.slice(from);
    assert.match(log, /hand-over: 0 entries taken over \(0 still in the kernel fast path\); not taken: 30 whose service or real server is gone/);
    await sleep(3000); // the servers are back by now (first check at once), the connections are not
    assert.match(b.bed.ulvsdLog.slice(from), /is up: TCP_CHECK/);
    assert.equal((await client.progressed((await client.status()).perConn, 5_000)).n, 0, 'control: none goes on');
    client.p.kill('SIGKILL');
    await stopBed(b);
    beds.pop();
  });
});
