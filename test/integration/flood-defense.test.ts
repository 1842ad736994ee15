/**
 * IPVS's automatic flood defences in a running ulvsd (core/defense.ts, daemon/defense-feed.ts):
 * a SYN flood with spoofed sources fills the connection table, whose free entries count as
 * memory; below amemthresh the automatic modes switch on by themselves (drop_entry 1 -> 2,
 * secure_tcp 1 -> 2, shown by GET /v1/sysctl, GET /v1/counters and logged), drop_entry drops
 * the flood's half-open entries every second, and once the table has room again both switch
 * off (2 -> 1) while the flood's entries would still hold the table for their 60 s SYN_RECV
 * timeout.
 *
 * One worker and --max-conns 3000: about 51.5 bytes per entry, 37 pages when empty; amemthresh
 * 4 pages counts the table as low with fewer than about 318 free entries. The flood:
 * src/lab/flood.ts --proto tcp, 10,000 SYNs/s for 6 s from 64 addresses (as syn-flood.test.ts).
 * Control: the same flood with drop_entry=0 — secure_tcp still switches on (the table is low),
 * but nothing is dropped, so the table stays full of the flood's entries and secure_tcp is
 * still on 15 s after the flood: the "switches off" check can fail, and does without drop_entry.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { DirectorBed, SCRIPTS } from '../../src/lab/director-bed.js';
import { run } from '../../src/lab/shell.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';
import { callAdmin } from '../../src/control/admin-client.js';

const V = LAB.VIP;
const RS = [0, 1].map(LAB.realServer);
const rules = [`-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`)].join('\n');
const AFTER_MS = 15_000;

interface Run {
  /** the highest modes GET /v1/sysctl showed during the flood */
  during: { drop_entry: number; secure_tcp: number };
  /** the modes AFTER_MS after the flood, and how long after it both were back to 1 (or 0) */
  after: { drop_entry: number; secure_tcp: number; offAfterMs: number | null };
  counters: Record<string, number>;
  defense: { on: Record<string, number>; mode: Record<string, number> } | undefined;
  answered: number;
  log: string;
  flood: { sent: number; write_errors: number };
}

async function flooded(prefix: string, dropEntry: number): Promise<Run> {
  const args = ['--workers', '1', '--max-conns', '3000', '--sysctl', `drop_entry=${dropEntry}`, '--sysctl', 'secure_tcp=1', '--sysctl', 'amemthresh=4'];
  const bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080, prefix, ulvsdArgs: args }).start();
  try {
    const sysctl = async () => (await callAdmin(bed.socket, 'GET', '/v1/sysctl')).json as Record<string, number>;
    const before = await sysctl();
    assert.deepEqual([before['drop_entry'], before['secure_tcp'], before['amemthresh']], [dropEntry, 1, 4], 'before the flood: automatic and off');
    assert.equal(before['syn_cookies'], 2, 'SYN cookies automatic by default (the fast path is installed)');
    const client = bed.bed.clients[0]!;
    const flood = spawn('ip', ['netns', 'exec', client, process.execPath, SCRIPTS.flood, '--proto', 'tcp', '--dst', V, '--port', '80', '--flows', '60000', '--rate', '10000', '--addrs', '64', '--src-base', '198.51.100.128'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    flood.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    let running = true;
    const done = new Promise((r) => flood.once('exit', r)).then(() => (running = false));
    const during = { drop_entry: 0, secure_tcp: 0 };
    while (running) {
      const s = await sysctl();
      during.drop_entry = Math.max(during.drop_entry, s['drop_entry']!);
      during.secure_tcp = Math.max(during.secure_tcp, s['secure_tcp']!);
      await new Promise((r) => setTimeout(r, 250));
    }
    await done;
    const ended = Date.now();
    let offAfterMs: number | null = null;
    let s = await sysctl();
    while (Date.now() - ended < AFTER_MS) {
      s = await sysctl();
      if (offAfterMs === null && s['drop_entry']! <= 1 && s['secure_tcp'] === 1) offAfterMs = Date.now() - ended;
      await new Promise((r) => setTimeout(r, 250));
    }
    const c = (await callAdmin(bed.socket, 'GET', '/v1/counters')).json as { engine: Record<string, number>; defense?: Run['defense'] };
    // then a real client (last: run() blocks this process, and an idle keep-alive connection to
    // the admin socket would meanwhile be closed by ulvsd under the next request)
    const res = run(['ip', 'netns', 'exec', client, process.execPath, SCRIPTS.client, '--host', V, '--http', '80', '--requests', '5', '--timeout', '3000']);
    const answered = res
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; ok?: boolean })
      .filter((j) => j.kind === 'http' && j.ok).length;
    return { during, after: { drop_entry: s['drop_entry']!, secure_tcp: s['secure_tcp']!, offAfterMs }, counters: c.engine, defense: c.defense, answered, log: bed.ulvsdLog, flood: JSON.parse(out) as Run['flood'] };
  } catch (e) {
    throw new Error(`${(e as Error).message}; ulvsd's log:\n${bed.ulvsdLog.slice(-3000)}`);
  } finally {
    await bed.stop();
  }
}

describe('IPVS flood defences switch on under a SYN flood and off after it', { skip: needsRoot }, () => {
  const runs: Record<string, Run> = {};
  after(() => {
    for (const [k, r] of Object.entries(runs)) console.log(`# ${k}: during ${JSON.stringify(r.during)}, after ${JSON.stringify(r.after)}, dropped ${r.counters['defense_entry_dropped']}, evicted ${r.counters['embryonic_evicted']}, answered ${r.answered}/5, flood ${JSON.stringify(r.flood)}`);
  });

  test('drop_entry=1 secure_tcp=1: both go to 2 during the flood, entries are dropped, both back to 1 after it; counted and logged', async () => {
    const r = (runs['drop_entry=1'] = await flooded(`qd${process.pid % 10000}a`, 1));
    assert.ok(r.flood.sent === 60000 && r.flood.write_errors === 0, JSON.stringify(r.flood));
    assert.deepEqual(r.during, { drop_entry: 2, secure_tcp: 2 }, 'switched on by themselves');
    assert.ok(r.counters['defense_entry_dropped']! > 0, `drop_entry dropped entries: ${r.counters['defense_entry_dropped']}`);
    assert.ok(r.after.offAfterMs !== null, `back to 1 within ${AFTER_MS / 1000} s of the flood: ${JSON.stringify(r.after)}`);
    assert.deepEqual([r.after.drop_entry, r.after.secure_tcp], [1, 1]);
    assert.deepEqual([r.defense?.mode['drop_entry'], r.defense?.on['drop_entry'], r.defense?.on['secure_tcp']], [1, 0, 0], 'GET /v1/counters defense: off now');
    assert.match(r.log, /flood defence drop_entry on \(drop_entry=2, worker 0\): memory low, \d+ pages available < amemthresh 4 \(connection table \d+ pages free, host \d+ pages\)/);
    assert.match(r.log, /flood defence secure_tcp on \(secure_tcp=2, worker 0\)/);
    assert.match(r.log, /flood defence drop_entry (off \(drop_entry=1, worker 0\)|now off \(drop_entry=1\))/);
    assert.equal(r.answered, 5, 'a real client is served after the flood');
  });

  test('control: drop_entry=0, the same flood: secure_tcp switches on, nothing is dropped, it is still on 15 s later', async () => {
    const r = (runs['drop_entry=0'] = await flooded(`qd${process.pid % 10000}b`, 0));
    assert.deepEqual(r.during, { drop_entry: 0, secure_tcp: 2 });
    assert.equal(r.counters['defense_entry_dropped'], 0);
    assert.equal(r.after.offAfterMs, null, `the table stays full of the flood's SYN_RECV entries: ${JSON.stringify(r.after)}`);
    assert.deepEqual([r.after.drop_entry, r.after.secure_tcp], [0, 2]);
    assert.doesNotMatch(r.log, /flood defence drop_entry/);
    assert.match(r.log, /flood defence secure_tcp on/);
  });
});
