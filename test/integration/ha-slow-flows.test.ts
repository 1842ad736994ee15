/**
 * Slow flows across a takeover (issue 13): connections that send once every 20 s survive a
 * takeover about 60 s after they opened when `sync_refresh_period` is set, and are lost without
 * it, as with IPVS. Two HA pairs (src/lab/pair.ts: keepalived -P + ulvsd on d1 and d2, sync
 * daemons from `@ulvs lvs_sync_daemon`), run side by side to keep the time near 100 s; each with
 * the echo server of stream.ts on the real servers and 20 connections through the VIP (NAT),
 * each writing 16 bytes every 20 s (at 20, 40, 60, 80 s after the client starts).
 *
 * Common to both pairs (the conditions under which the one setting decides):
 *  - ulvsd --sysctl 'sync_threshold=3 0' at start: with a sync period P > 0 the kernel's
 *    ip_vs_sync_conn_needed (core/sync/sender-policy.ts) announces a connection only at packets
 *    T, T+P, ... whatever sync_refresh_period says; a connection sending ~2 packets per 20 s
 *    reaches packet 53 after minutes. With P = 0 and R = 0 it is announced once, at packet T.
 *  - `ulvsadm --set 30 0 0` on both directors (ESTABLISHED timeout 30 s). The backup takes an
 *    entry's timeout from the record (v1 records carry the master's current timeout;
 *    ip_vs_proc_conn, core/sync/apply.ts), and a backup entry is only refreshed by records. With
 *    the default 900 s the one announcement would keep the entry past the takeover and the
 *    control would show nothing.
 * The variable: sync_refresh_period = 10 s on both directors, through PUT /v1/sysctl, on one
 * pair only. The refresh rule re-announces when the new expiry (now + 30 s) moved at least
 * min(R, max(timeout/2, 10 s)) = 10 s from the one last announced: each message 20 s later does,
 * so the backup's entry is renewed every 20 s (last at 60 s: it lives to 90 s).
 *
 *  Timeline (s after the client starts): 0 open; 20, 40, 60 messages echoed; 66 d1's links cut,
 *  d2 takes over; 80 the next message, through d2; 86 check. The cut comes 6 s after the 60-s
 *  message so that its announcement has left d1 (a datagram being filled is sent within 2 s, as
 *  the kernel's IPVS_SYNC_FLUSH_TIME; a first run cutting at 62 s lost it and, with the entry
 *  then living only to 70 s, all 20: the margin is the sync path's, not the rule's).
 *  - refresh pair: d2 lists the 20 connections just before the cut; >= 19 of 20 get their 80-s
 *    message echoed after the cut, byte-exact.
 *  - control pair (sync_refresh_period 0, the default): announced once at packet 3 (the 20-s
 *    message), the backup's entries expired at ~50 s: d2 lists none before the cut, and at most
 *    1 of 20 gets an echo after it (d2 finds no entry: the segment goes to its stack, reset).
 *    This is the check of the refresh pair failing when the setting is missing.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Pair } from '../../src/lab/pair.js';
import { PAIR } from '../../src/lab/pair-bed.js';
import { callAdmin } from '../../src/control/admin-client.js';
import { needsRoot } from '../support/root.js';
import { streamStatus } from '../support/stream-status.js';

const keepalived = spawnSync('keepalived', ['--version']).status === 0;
const skip = needsRoot || (keepalived ? false : 'keepalived is not installed (apt-get install keepalived)');
const prefix = () => `h10-${randomBytes(3).toString('hex')}`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const N = 20;
const CHUNK = 16;
const EVERY_MS = 20_000;
const CUT_AT_MS = 66_000;
const CHECK_AT_MS = 86_000;
const COMMON = ['sync_threshold=3 0'];


/** Connections of the VIP director i holds in state ESTABLISHED and not yet expired. Not from
 *  `ulvsadm -L -c`: the listing also shows an entry past its expiry that the engine has not yet
 *  collected (expiresInMs clamped at 0), as a first full-suite run showed (20 listed, all gone
 *  when the next packet came). */
async function listed(pair: Pair, i: number): Promise<number> {
  const list = (await pair.api<{ virtual: string; state: string; expiresInMs: number }[]>(i, '/v1/connections')) ?? [];
  return list.filter((c) => c.virtual === `${PAIR.VIP}:${PAIR.VPORT}` && c.state === 'ESTABLISHED' && c.expiresInMs > 0).length;
}

interface Outcome {
  listedBeforeCut: number;
  echoedBeforeCut: number;
  survivors: number;
  errors: number;
  samples: string[];
  mismatches: number;
  masterTx: number;
}

/** One pair's run: start, the timeouts, the sysctls, the connections, the cut at 66 s, the check. */
async function run(pair: Pair, refresh: number | null): Promise<Outcome> {
  await pair.startSettled();
  for (const i of [0, 1]) {
    pair.adm(i, ['--set', '30', '0', '0']);
    if (refresh !== null) {
      const r = await callAdmin(pair.socket(i), 'PUT', '/v1/sysctl', { sync_refresh_period: refresh });
      assert.equal(r.status, 200, JSON.stringify(r.json));
    }
    const got = await callAdmin(pair.socket(i), 'GET', '/v1/sysctl');
    assert.equal(got.json.sync_threshold, '3 0');
    assert.equal(got.json.sync_refresh_period, refresh ?? 0);
  }
  for (let t0 = Date.now(); pair.adm(1, ['-L', '--daemon']) === ''; await sleep(100)) assert.ok(Date.now() - t0 < 10_000, 'the backup sync daemon runs');
  const s = pair.stream(N, CHUNK, EVERY_MS);
  const t0 = Date.now();
  await sleep(CUT_AT_MS - (Date.now() - t0));
  const before = await streamStatus(s);
  const listedBeforeCut = await listed(pair, 1);
  const masterTx = (await pair.api<{ syncDaemon: Record<string, number> }>(0, '/v1/counters'))!.syncDaemon['sync_daemon_tx_datagrams'] ?? 0;
  // d2 gets only frames addressed to it (ha-failover.test: its tc capture would otherwise take
  // d1's flooded frames before it is MASTER)
  pair.net.setFlood(1, false);
  pair.net.setLinks(0, false);
  await sleep(CHECK_AT_MS - (Date.now() - t0));
  const end = await streamStatus(s);
  s.proc.kill('SIGKILL');
  return {
    listedBeforeCut,
    echoedBeforeCut: before.perConn.filter((r) => r === 3 * CHUNK).length,
    survivors: end.perConn.filter((r, k) => r > before.perConn[k]!).length,
    errors: end.errors,
    samples: end.errorSamples,
    mismatches: end.mismatches,
    masterTx,
  };
}

describe('HA pair: slow flows (one message per 20 s) across a takeover at ~60 s', { skip }, () => {
  const withRefresh = new Pair({ prefix: prefix(), servers: 'echo', sysctls: COMMON });
  const control = new Pair({ prefix: prefix(), servers: 'echo', sysctls: COMMON });
  after(() => {
    withRefresh.stop();
    control.stop();
  });

  test('sync_refresh_period 10: they survive; 0 (the control): they are lost, as with IPVS', async () => {
    const [r, c] = await Promise.all([run(withRefresh, 10), run(control, null)]);
    console.log(`# sync_refresh_period=10: d2 listed ${r.listedBeforeCut}/${N} before the cut; ${r.survivors}/${N} echoed after it; errors ${r.errors} ${JSON.stringify(r.samples)}; d1 sent ${r.masterTx} sync datagrams`);
    console.log(`# sync_refresh_period=0 (control): d2 listed ${c.listedBeforeCut}/${N} before the cut; ${c.survivors}/${N} echoed after it; errors ${c.errors} ${JSON.stringify(c.samples)}; d1 sent ${c.masterTx} sync datagrams`);
    // both ran as planned up to the cut: three messages echoed per connection
    assert.equal(r.echoedBeforeCut, N, 'refresh pair: every connection had 3 messages echoed before the cut');
    assert.equal(c.echoedBeforeCut, N, 'control pair: every connection had 3 messages echoed before the cut');
    assert.equal(r.listedBeforeCut, N, 'the refreshed backup holds every connection at the cut');
    assert.ok(r.survivors >= N - 1, `${r.survivors} of ${N} survived with sync_refresh_period 10`);
    assert.equal(r.mismatches, 0);
    assert.equal(c.listedBeforeCut, 0, "without refresh the backup's entries expired 30 s after the one announcement");
    assert.ok(c.survivors <= 1, `${c.survivors} of ${N} survived without sync_refresh_period`);
  });
});
