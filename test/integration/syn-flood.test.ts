/**
 * A SYN flood with spoofed sources fills ulvsd's connection table (kept small here: 3,000
 * entries, so a short flood fills it); real clients are still served because a full table
 * evicts the half-open entry queued soonest (`evict_embryonic`, core/conn/lifecycle.ts).
 *
 * The flood: src/lab/flood.ts --proto tcp, 10,000 SYNs/s for 6 s from 64 addresses of
 * 198.51.100.128/26, each SYN a new source port. One second in, a client makes 20 HTTP requests
 * at once (each a new connection, 3 s timeout: a SYN lost in the overloaded queue is sent again
 * after 1 s). After the flood, 20 more must be answered at once. 12 s later (the flood's entries
 * now wait out SYN_RECV's 60 s, re-queued beyond their 3 s creation timer, where an eviction that
 * looked 8 s ahead missed them) 20 more new connections must not be refused by ulvs: none counted
 * drop_conn_table_full. End to end some of those may time out at the real servers, whose own SYN
 * queues are then full of the flood's half-open requests (nstat there: TcpExtTCPReqQFullDoCookies
 * ~29,500 each, TcpExtListenDrops ~20): the flood went through to them, as through IPVS.
 * Control: the same flood with evict_embryonic=0 — the table fills with the flood's SYN_RECV
 * entries (60 s timeout) and the client's SYNs are refused (drop_conn_table_full), so no request
 * is answered: the check can fail.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { DirectorBed, SCRIPTS } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';
import { pathArgs } from '../../src/lab/test-path.js';
import { answeredRequests, engineCounters } from '../support/flood-client.js';

const V = LAB.VIP;
const RS = [0, 1].map(LAB.realServer);
const rules = [`-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`)].join('\n');
const MAX_CONNS = 3000;

interface Flooded {
  during: number;
  after: number;
  later: number;
  laterRefused: number;
  counters: Record<string, number>;
  flood: { sent: number; write_errors: number };
}

/** ulvsd with `sysctl`, the flood, 20 concurrent requests during it and 20 after it. */
async function flooded(prefix: string, sysctl: string): Promise<Flooded> {
  const bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080, prefix, ulvsdArgs: ['--max-conns', String(MAX_CONNS), '--sysctl', sysctl] }).start();
  try {
    const client = bed.bed.clients[0]!;
    const requests = (): number => answeredRequests(bed, 20);
    const flood = spawn('ip', ['netns', 'exec', client, process.execPath, SCRIPTS.flood, '--proto', 'tcp', '--dst', V, '--port', '80', '--flows', '60000', '--rate', '10000', '--addrs', '64', '--src-base', '198.51.100.128'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    flood.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise((r) => flood.once('exit', r));
    await new Promise((r) => setTimeout(r, 1000));
    const during = requests();
    await done;
    const after = requests();
    await new Promise((r) => setTimeout(r, 12_000));
    const before = await engineCounters(bed);
    const later = requests();
    const counters = await engineCounters(bed);
    const laterRefused = counters['drop_conn_table_full']! - before['drop_conn_table_full']!;
    return { during, after, later, laterRefused, counters, flood: JSON.parse(out) as Flooded['flood'] };
  } finally {
    await bed.stop();
  }
}

describe('SYN flood with spoofed sources', { skip: needsRoot }, () => {
  const runs: Record<string, Flooded> = {};
  after(() => {
    for (const [k, r] of Object.entries(runs)) console.log(`# ${k}: during ${r.during}/20, after ${r.after}/20, 12 s later ${r.later}/20 answered, ${r.laterRefused} refused, flood ${JSON.stringify(r.flood)}, evicted ${r.counters['embryonic_evicted']}, table full ${r.counters['drop_conn_table_full']}`);
  });

  test('evict_embryonic=1 (default): the flood fills the table, real clients are answered during and after it', async () => {
    const r = (runs['evict'] = await flooded(`sfe${process.pid % 10000}`, 'evict_embryonic=1'));
    assert.ok(r.flood.sent === 60000 && r.flood.write_errors === 0, JSON.stringify(r.flood));
    assert.ok(r.counters['embryonic_evicted']! > MAX_CONNS, `the flood filled the table and entries were evicted: ${r.counters['embryonic_evicted']}`);
    assert.ok(r.during >= 19, `answered during the flood: ${r.during}/20`);
    assert.equal(r.after, 20, 'answered after the flood');
    assert.equal(r.laterRefused, 0, 'no new connection refused 12 s after the flood');
  });

  test('control: evict_embryonic=0, the same flood locks real clients out', async () => {
    const r = (runs['control'] = await flooded(`sfc${process.pid % 10000}`, 'evict_embryonic=0'));
    assert.equal(r.counters['embryonic_evicted'], 0);
    assert.ok(r.during <= 1, `answered during the flood without eviction: ${r.during}/20`);
    // With kernel set-up (the exactness run, scripts/run-tests.js) the flood is set up in the
    // kernel and a full table refuses its reports (kernel_orphans), not SYNs (drop_conn_table_full
    // counts only the SYNs that fell back to the engine: 0 in one run): the lock-out during the
    // flood is the same, what follows it is not (runs: 20 and 3 of 20 answered at once after it,
    // 0 and 10 of 20 12 s later). Checked on the engine's path.
    if (pathArgs().length > 0) return;
    assert.ok(r.counters['drop_conn_table_full']! > 0);
    assert.ok(r.after <= 1, `answered after the flood without eviction: ${r.after}/20`);
    assert.ok(r.laterRefused >= 20, `refused 12 s after the flood without eviction: ${r.laterRefused}`);
  });
});
