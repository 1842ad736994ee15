/**
 * syn_cookies=2 (automatic, daemon/syn-cookie-auto.ts) through a live ulvsd: an unpaced SYN
 * flood from 1,000,000 spoofed source tuples (src/lab/flood.ts --rate 0: as fast as the
 * generator writes, far more than the workers read, so the TUN's queue overflows) switches SYN
 * cookies on by itself; real clients are answered during the flood (each request a new
 * connection, 3 s timeout); after it, cookies switch off again within QUIET_S + 3 s, logged
 * both ways. Control: the same flood with syn_cookies=0 — the TUN drops, nothing switches on
 * and the kernel sends no cookie (so the "switched on" checks can fail).
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { DirectorBed, SCRIPTS } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';
import { answeredRequests, engineCounters } from '../support/flood-client.js';
import { QUIET_S } from '../../src/daemon/syn-cookie-auto.js';

const V = LAB.VIP;
const RS = [0, 1].map(LAB.realServer);
const rules = [`-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`)].join('\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Run {
  during: number;
  after: number;
  activeDuring: number;
  counters: Record<string, number>;
  offAfterMs: number | null;
  flood: { sent: number; pps: number };
  log: string;
}

async function flooded(prefix: string, mode: number): Promise<Run> {
  const bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080, prefix, ulvsdArgs: ['--sysctl', `syn_cookies=${mode}`] }).start();
  try {
    assert.equal(answeredRequests(bed, 5), 5, 'answered before the flood');
    const client = bed.bed.clients[1] ?? bed.bed.clients[0]!;
    const flood = spawn('ip', ['netns', 'exec', client, process.execPath, SCRIPTS.flood, '--proto', 'tcp', '--dst', V, '--port', '80', '--rate', '0', '--seconds', '7', '--sources', '1000000', '--addrs', '128', '--src-base', '198.51.100.128', '--io', 'uring', '--flows', '100000000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    flood.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise((r) => flood.once('exit', r));
    await sleep(2500);
    const activeDuring = (await engineCounters(bed))['syncookie_active'] ?? 0;
    const during = answeredRequests(bed, 20);
    await done;
    const afterN = answeredRequests(bed, 20);
    let offAfterMs: number | null = null;
    const t0 = Date.now();
    while (Date.now() - t0 < (QUIET_S + 3) * 1000) {
      if ((await engineCounters(bed))['syncookie_active'] === 0) {
        offAfterMs = Date.now() - t0;
        break;
      }
      await sleep(250);
    }
    return { during, after: afterN, activeDuring, counters: await engineCounters(bed), offAfterMs, flood: JSON.parse(out.trim().split('\n').at(-1)!) as Run['flood'], log: bed.ulvsdLog };
  } finally {
    await bed.stop();
  }
}

describe('syn_cookies=2: an unpaced SYN flood switches cookies on, and off after it', { skip: needsRoot }, () => {
  const runs: Record<string, Run> = {};
  after(() => {
    for (const [k, r] of Object.entries(runs)) console.log(`# ${k}: during ${r.during}/20, after ${r.after}/20, active during ${r.activeDuring}, off ${r.offAfterMs} ms after, flood ${JSON.stringify(r.flood)}, tun dropped ${r.counters['tun_queue_dropped']}, cookies sent ${r.counters['syncookie_sent']} valid ${r.counters['syncookie_valid']}, switches ${r.counters['syncookie_auto_switches']}, conns created ${r.counters['conns_created']}`);
  });

  test('syn_cookies=2: on during the flood, real clients answered, off within QUIET_S + 3 s after it', async () => {
    const r = (runs['auto'] = await flooded(`sca${process.pid % 10000}`, 2));
    assert.equal(r.activeDuring, 1, 'cookies on 2.5 s into the flood');
    assert.ok(r.counters['syncookie_sent']! > 10_000, `the kernel answered the flood: ${r.counters['syncookie_sent']}`);
    assert.ok(r.during >= 19, `answered during the flood: ${r.during}/20`);
    assert.equal(r.after, 20, 'answered after the flood');
    assert.notEqual(r.offAfterMs, null, 'cookies switched off after the flood');
    assert.match(r.log, /syn_cookies 2: on/);
    assert.match(r.log, /syn_cookies 2: off/);
  });

  test('control: syn_cookies=0, the same flood overflows the TUN and nothing switches on', async () => {
    const r = (runs['off'] = await flooded(`scz${process.pid % 10000}`, 0));
    assert.ok(r.counters['tun_queue_dropped']! > 0, `the TUN dropped: ${r.counters['tun_queue_dropped']}`);
    assert.equal(r.activeDuring, 0);
    assert.equal(r.counters['syncookie_sent'], 0);
  });
});
