/**
 * SYN cookies through a live ulvsd (syn_cookies=1: the kernel fast path answers SYNs with
 * cookies, bpf/ulvs_syncookie.h; the engine opens a connection on the checked ACK and makes the
 * real server's handshake itself, core/syn-proxy.ts):
 *   - HTTP requests are answered through the proxied handshake (the engine counted the SYNs it
 *     sent to the servers: send_synproxy_syn), and a 20 MB download and upload arrive intact
 *     (sequence numbers translated in both directions, SHA-256 checked);
 *   - under a spoofed SYN flood (src/lab/flood.ts --proto tcp, 10,000 SYNs/s for 6 s from 64
 *     addresses of 198.51.100.128/26) real clients are answered and the connection table holds
 *     no entry of the flood's sources.
 * Control: the same flood with syn_cookies=0 leaves thousands of the flood's SYN_RECV entries in
 * the table (so the "no flood entries" check can fail), and sends no cookie-handshake SYN.
 * The table is kept small (3,000) as in syn-flood.test.ts.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { DirectorBed, SCRIPTS } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { needsRoot } from '../support/root.js';
import { answeredRequests, engineCounters } from '../support/flood-client.js';
import { callAdmin } from '../../src/control/admin-client.js';
import { downloadAndUpload } from '../support/transfer.js';

const V = LAB.VIP;
const RS = [0, 1].map(LAB.realServer);
const rules = [`-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`)].join('\n');
const MAX_CONNS = 3000;
const FLOOD_BASE = '198.51.100.128';

interface Flooded {
  during: number;
  after: number;
  counters: Record<string, number>;
  flood: { sent: number; write_errors: number };
  /** table entries whose client is one of the flood's 64 sources, read at the flood's end */
  floodEntries: number;
}

const bedFor = (prefix: string, mode: number) => new DirectorBed({ rules, realServers: 2, httpPort: 8080, prefix, ulvsdArgs: ['--max-conns', String(MAX_CONNS), '--sysctl', `syn_cookies=${mode}`] }).start();

async function floodEntries(bed: DirectorBed): Promise<number> {
  const list = (await callAdmin(bed.socket, 'GET', '/v1/connections')).json as { caddr: number }[];
  const base = parseIPv4(FLOOD_BASE) >>> 0;
  return list.filter((c) => ((c.caddr >>> 0) & 0xffffffc0) >>> 0 === base).length;
}

async function flooded(prefix: string, mode: number): Promise<Flooded> {
  const bed = await bedFor(prefix, mode);
  try {
    const client = bed.bed.clients[0]!;
    const flood = spawn('ip', ['netns', 'exec', client, process.execPath, SCRIPTS.flood, '--proto', 'tcp', '--dst', V, '--port', '80', '--flows', '60000', '--rate', '10000', '--addrs', '64', '--src-base', FLOOD_BASE], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    flood.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    const done = new Promise((r) => flood.once('exit', r));
    await new Promise((r) => setTimeout(r, 1000));
    const during = answeredRequests(bed, 20);
    await done;
    const entries = await floodEntries(bed); // SYN_RECV lasts 60 s: the flood's entries are still there
    const afterN = answeredRequests(bed, 20);
    return { during, after: afterN, counters: await engineCounters(bed), flood: JSON.parse(out) as Flooded['flood'], floodEntries: entries };
  } finally {
    await bed.stop();
  }
}

describe('SYN cookies through ulvsd', { skip: needsRoot }, () => {
  const runs: Record<string, Flooded> = {};
  after(() => {
    for (const [k, r] of Object.entries(runs)) console.log(`# ${k}: during ${r.during}/20, after ${r.after}/20, flood ${JSON.stringify(r.flood)}, flood entries ${r.floodEntries}, synproxy SYNs ${r.counters['send_synproxy_syn']}`);
  });

  test('syn_cookies=1: requests answered through the proxied handshake; 20 MB each way intact', async () => {
    const bed = await bedFor(`qsh${process.pid % 10000}`, 1);
    try {
      const sys = (await callAdmin(bed.socket, 'GET', '/v1/sysctl')).json as Record<string, number>;
      assert.equal(sys['syn_cookies'], 1);
      assert.equal(answeredRequests(bed, 20), 20);
      downloadAndUpload(bed, 20e6, 60_000);
      const c = await engineCounters(bed);
      assert.ok(c['send_synproxy_syn']! >= 22, `every connection opened by a checked ACK: ${c['send_synproxy_syn']}`);
      assert.ok(c['send_synproxy_ack']! >= 22, `every server SYN-ACK answered by the director: ${c['send_synproxy_ack']}`);
      assert.ok(c['syncookie_sent']! >= 22 && c['syncookie_valid']! >= 22, `the kernel answered the SYNs and checked the ACKs: ${c['syncookie_sent']}, ${c['syncookie_valid']}`);
      assert.equal(c['syncookie_refused'], 0);
    } finally {
      await bed.stop();
    }
  });

  test('syn_cookies=1 under a spoofed SYN flood: real clients answered, no flood entry in the table', async () => {
    const r = (runs['cookies'] = await flooded(`qsf${process.pid % 10000}`, 1));
    assert.ok(r.flood.sent === 60000 && r.flood.write_errors === 0, JSON.stringify(r.flood));
    assert.equal(r.floodEntries, 0, 'the flood created no state');
    assert.ok(r.during >= 19, `answered during the flood: ${r.during}/20`);
    assert.equal(r.after, 20, 'answered after the flood');
    assert.ok(r.counters['send_synproxy_syn']! >= 39, `the clients' connections went through the cookie handshake: ${r.counters['send_synproxy_syn']}`);
    assert.ok(r.counters['syncookie_sent']! >= 60000, `the kernel answered the flood: ${r.counters['syncookie_sent']}`);
  });

  test('control: syn_cookies=0, the same flood leaves its entries in the table', async () => {
    const r = (runs['control'] = await flooded(`qsc${process.pid % 10000}`, 0));
    assert.ok(r.floodEntries > 1000, `the flood's SYN_RECV entries: ${r.floodEntries}`);
    assert.equal(r.counters['send_synproxy_syn'], 0);
    assert.equal(r.counters['syncookie_sent'], 0);
  });
});
