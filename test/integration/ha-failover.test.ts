/**
 * Failover without dropping connections (issue 13, ha-scaleout.md §6(a)): the HA pair bed
 * (src/lab/pair.ts: keepalived -P + ulvsd on d1 and d2, `@ulvs lvs_sync_daemon i0 VI_INT id 52`;
 * two data-path workers per director in the first pair, one in the others)
 * with the echo server of stream.ts on both real servers, and 200 long-lived TCP connections
 * through the VIP (NAT), each writing 64 bytes every 100 ms and checking every echoed byte.
 *
 *   1. The sync daemons follow VRRP: d1 `master sync daemon (...)`, d2 `backup sync daemon (...)`
 *      (ulvsadm -L --daemon); the backup's `ulvsadm -L -c -n` lists the 200 connections.
 *   2. d1's links cut: d2 takes over; >= 198 of 200 go on (still moving in the last 5 s, no
 *      reset, no byte out of place). Who forwarded after the cut is read from d2's counters
 *      (not from who holds the VIP: ulvsd's tc capture may take frames flooded to d2 before it
 *      is master). d2's kernel fast path then carries them: its flow map holds a request and a
 *      reply entry per connection (offloaded by d2's engine after their first packets through
 *      it), their slots count the traffic and d2's workers read (about) none of it from the TUN.
 *      Control of that check, run by hand (12:05 UTC, a script, Pair option ulvsdArgs
 *      [[], ['--fast-path', 'off']]): flow entries [0,0,0,0,0,0], 0 slot packets and 18154 TUN
 *      reads in the 3 s window: all three assertions fail.
 *   3. Failback: 50 more connections opened while d2 is master; d1's links back, d1 preempts:
 *      the connections opened on d2 (synced d2 -> d1) and the first 200 go on through d1.
 *   4. (own pair) kill -9 of both master processes, keepalived and ulvsd: the same survival.
 *   Control (own pair, no lvs_sync_daemon line): the cut leaves (about) none alive — the check
 *   of 2 can fail. Run once by hand (10:41 UTC): the backup's router sending every record to
 *   the other worker (1 - queueOf) gave 0 of 200 after the cut, all reset — the steering matters.
 * Printed, not asserted: the takeover as the connections see it (per connection, the longest
 * time without an echo across the event: median and maximum), the sync daemon's bytes on the
 * wire per connection, its messages.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Pair } from '../../src/lab/pair.js';
import { PAIR } from '../../src/lab/pair-bed.js';
import { needsRoot } from '../support/root.js';
import { across, assertFastPathCarries, cutD1, established, listed, packets, waitListed } from '../support/ha-pair-checks.js';
import type { Stream } from '../support/stream-status.js';

const keepalived = spawnSync('keepalived', ['--version']).status === 0;
const skip = needsRoot || (keepalived ? false : 'keepalived is not installed (apt-get install keepalived)');
const prefix = () => `h8-${randomBytes(3).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const N = 200;
const CHUNK = 64;
const EVERY_MS = 100;

describe('HA pair with connection sync: failover keeps connections', { skip }, () => {
  // preempt_delay: the returning d1 waits 15 s before taking MASTER back, time for d2's master to
  // re-announce (every sync_period = 50 packets) the connections opened while d1 was away
  // two data-path workers per director: each synced record must reach the worker whose queue
  // the connection's packets are steered to (sync-router.ts), or its packets find no entry
  const pair = new Pair({ prefix: prefix(), servers: 'echo', preemptDelay: 15, workers: 2 });
  let s: Stream;
  after(() => pair.stop());

  test('the sync daemons follow VRRP; the backup lists the 200 connections', async () => {
    await pair.startSettled();
    const line = (st: string) => `${st} sync daemon (mcast=i0, syncid=52, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n`;
    for (let t0 = Date.now(); pair.adm(0, ['-L', '--daemon']) !== line('master') || pair.adm(1, ['-L', '--daemon']) !== line('backup'); await sleep(100)) assert.ok(Date.now() - t0 < 10_000, `daemons: d1 ${pair.adm(0, ['-L', '--daemon'])} d2 ${pair.adm(1, ['-L', '--daemon'])}`);
    s = pair.stream(N, CHUNK, EVERY_MS);
    await established(s, N);
    const ms = await waitListed(pair, 1, N);
    console.log(`# the backup lists ${N} connections ${ms} ms after they were established`);
    const c1 = (await pair.api<{ syncDaemon: Record<string, number> }>(0, '/v1/counters'))!.syncDaemon;
    const c2 = (await pair.api<{ syncDaemon: Record<string, number>; sync: Record<string, number> }>(1, '/v1/counters'))!;
    console.log(`# master: ${c1['sync_daemon_tx_datagrams']} datagrams, ${c1['sync_daemon_tx_bytes']} bytes of UDP payload for ${N} connections (${(c1['sync_daemon_tx_bytes']! / N).toFixed(1)} B/connection); backup: ${c2.syncDaemon['sync_daemon_rx_datagrams']} datagrams, ${c2.sync['sync_apply_Created']} created, ${c2.sync['sync_apply_Updated']} updated`);
    assert.ok(c2.sync['sync_apply_Created']! >= N);
    assert.equal(c2.syncDaemon['sync_daemon_rx_Ok'], c2.syncDaemon['sync_daemon_rx_datagrams'], 'every datagram read whole');
    // hostile datagrams to the group from a real server's namespace: counted by reason, nothing applied
    const bad = ['00', '0034ffff01010000', '0007000801010000', '0034000c0101000000060024'].map((h) => `Buffer.from('${h}', 'hex')`);
    const js = `const s = require('dgram').createSocket('udp4'); let n = 0; for (const b of [${bad.join(',')}]) s.send(b, ${8848}, '224.0.0.81', () => { if (++n === ${bad.length}) s.close(); });`;
    const sent = spawnSync('ip', ['netns', 'exec', pair.net.realServers[0]!, process.execPath, '-e', js], { encoding: 'utf8' });
    assert.equal(sent.status, 0, sent.stderr);
    const want = { sync_daemon_rx_DropTooShort: 1, sync_daemon_rx_DropSizeMismatch: 1, sync_daemon_rx_DropSyncId: 1, sync_daemon_rx_DropRecordTruncated: 1 };
    let got: Record<string, number> = {};
    for (let t0 = Date.now(); ; await sleep(100)) {
      const c = (await pair.api<{ syncDaemon: Record<string, number> }>(1, '/v1/counters'))!.syncDaemon;
      got = Object.fromEntries(Object.keys(want).map((k) => [k, (c[k] ?? 0) - (c2.syncDaemon[k] ?? 0)]));
      if (c['sync_daemon_rx_datagrams']! - c2.syncDaemon['sync_daemon_rx_datagrams']! >= bad.length) break;
      assert.ok(Date.now() - t0 < 5000, `the backup counted ${JSON.stringify(got)}`);
    }
    // 1 byte; size field 0xffff; syncid 7 (the backup's is 52); one record announced, 4 bytes of it
    assert.deepEqual(got, want);
    assert.equal(listed(pair, 1), N, 'nothing applied from them; the backup still runs');
  });

  test("d1's links cut: at least 198 of 200 go on through d2, byte-exact", async () => {
    // no unicast flooding to d2 meanwhile (cutD1): ulvsd's tc capture would take d1's frames
    const r = await cutD1(pair, s);
    console.log(`# cut (no unicast flooding to d2): d2's G_NAT MASTER ${r.masterMs} ms after the cut; longest time without an echo per connection: median ${r.gapMedian} ms, max ${r.gapMax} ms; ${r.survivors}/${N} survive; errors ${r.errors} ${JSON.stringify(r.samples)}; d2 counted ${r.forwarded} packets after the cut`);
    assert.equal((await pair.vrrp(1))!.syncDaemon!.role, 'master');
    assert.ok(r.forwarded > N * 20, 'd2 carried the connections after the cut');
    assert.equal(r.mismatches, 0, 'every echoed byte in place');
    assert.ok(r.survivors >= N - 2, `${r.survivors} of ${N} survived`);
    // d2's kernel fast path carries the synced connections (their entries were offloaded by d2's
    // engine after their first packets through it): a request and a reply flow entry each
    await assertFastPathCarries(pair, 1, N, [0, 1], '');
  });

  test('failback: connections opened on d2 and the first 200 go on when d1 preempts', async () => {
    const s2 = pair.stream(50, CHUNK, EVERY_MS);
    await established(s2, 50);
    await waitListed(pair, 1, N + 50);
    const p1 = await packets(pair, 0);
    const r2 = across(s2, async () => {
      pair.net.setLinks(0, true);
      await pair.waitRole(0, 'MASTER', 40_000);
    }, 35_000);
    const r1 = await across(s, () => undefined, 40_000);
    const r = await r2;
    console.log(`# failback: gaps median ${r1.gapMedian} ms, max ${Math.max(r.gapMax, r1.gapMax)} ms; ${r.survivors}/50 opened on d2 and ${r1.survivors}/${N} opened on d1 survive; d1 counted ${(await packets(pair, 0)) - p1} packets; d1 sync counters ${JSON.stringify((await pair.api<{ sync: Record<string, number> }>(0, '/v1/counters'))!.sync['sync_apply_Created'])} created`);
    s2.proc.kill('SIGKILL');
    assert.ok(pair.net.holds(0, PAIR.VIP), 'd1 holds the VIP again');
    assert.equal(r.mismatches + r1.mismatches, 0);
    assert.ok(r.survivors >= 49, `${r.survivors} of 50 opened on d2 survived`);
    assert.ok(r1.survivors >= N - 2, `${r1.survivors} of ${N} survived`);
  });
});

describe('HA pair with connection sync: kill -9 of keepalived and ulvsd on the master', { skip }, () => {
  const pair = new Pair({ prefix: prefix(), servers: 'echo' });
  after(() => pair.stop());

  test('at least 198 of 200 go on through d2, byte-exact', async () => {
    await pair.startSettled();
    const s = pair.stream(N, CHUNK, EVERY_MS);
    await established(s, N);
    await waitListed(pair, 1, N);
    const p2 = await packets(pair, 1);
    const r = await across(s, () => Promise.all([pair.killKeepalived(0), pair.killUlvsd(0)]).then(() => undefined));
    const forwarded = (await packets(pair, 1)) - p2;
    const master = ((await pair.vrrp(1))!.groups.find((g) => g.name === 'G_NAT') as { since?: number }).since! - r.at;
    console.log(`# kill -9: d2's G_NAT MASTER ${master} ms after the kill; longest time without an echo per connection: median ${r.gapMedian} ms, max ${r.gapMax} ms; ${r.survivors}/${N} survive; errors ${r.errors} ${JSON.stringify(r.samples)}; d2 counted ${forwarded} packets after`);
    assert.ok(forwarded > N * 20, 'd2 carried the connections after the kill');
    assert.equal(r.mismatches, 0);
    assert.ok(r.survivors >= N - 2, `${r.survivors} of ${N} survived`);
  });
});

describe('control: the same cut without connection sync', { skip }, () => {
  const pair = new Pair({ prefix: prefix(), servers: 'echo', sync: false });
  after(() => pair.stop());

  test('about none of 200 survive (the survival check can fail)', async () => {
    await pair.startSettled();
    assert.equal(pair.adm(1, ['-L', '--daemon']), '', 'no sync daemon');
    const s = pair.stream(N, CHUNK, EVERY_MS);
    await established(s, N);
    await sleep(3000);
    assert.equal(listed(pair, 1), 0, 'the backup knows none');
    const r = await across(s, () => pair.net.setLinks(0, false));
    console.log(`# control: ${r.survivors}/${N} survive without sync; errors ${r.errors} ${JSON.stringify(r.samples)}`);
    // d2 took over (a track-script check that timed out under CPU load may hold it in FAULT
    // for a second: wait rather than read once)
    await pair.waitRole(1, 'MASTER', 20_000);
    assert.ok(r.survivors <= 10, `${r.survivors} survived without sync`);
  });
});
