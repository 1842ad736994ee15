/**
 * The benchmark's own load tools move real packets: the TUN flow generator (src/lab/flood.ts)
 * creates exactly one tracked connection per flow in ulvsd, and the fixed-rate latency client
 * (src/lab/latency.ts) gets every request answered through the director.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectorBed, SCRIPTS } from '../../src/lab/director-bed.js';
import { run } from '../../src/lab/shell.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';
import { callAdmin as call } from '../../src/control/admin-client.js';

const V = LAB.VIP;
const RS = [0, 1].map(LAB.realServer);
const rules = [`-A -u ${V}:5201 -s rr`, ...RS.map((a) => `-a -u ${V}:5201 -r ${a}:5201 -m`), `-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`)].join('\n');

describe('benchmark load tools', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  before(async () => {
    bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080 }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('flood: 20,000 distinct UDP flows become 20,000 connections', async () => {
    const out = JSON.parse(run(['ip', 'netns', 'exec', bed.bed.clients[0]!, process.execPath, SCRIPTS.flood, '--dst', V, '--port', '5201', '--flows', '20000', '--rate', '20000'])) as { sent: number; write_errors: number };
    assert.deepEqual([out.sent, out.write_errors], [20000, 0]);
    let n = 0;
    for (let i = 0; i < 50 && n < 20000; i++) {
      n = (await call(bed.socket, 'GET', '/v1/snapshot')).json.connections as number;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(n, 20000);
  });

  test('latency: every request at a fixed rate is answered, quantiles in order', () => {
    const j = JSON.parse(run(['ip', 'netns', 'exec', bed.bed.clients[0]!, process.execPath, SCRIPTS.latency, '--host', V, '--port', '80', '--rate', '200', '--seconds', '1', '--connections', '4'])) as Record<string, number>;
    assert.equal(j['sent'], 200);
    assert.equal(j['answered'], 200);
    assert.equal(j['errors'], 0);
    assert.ok(j['p50_ms']! > 0 && j['p50_ms']! <= j['p99_ms']! && j['p99_ms']! <= j['max_ms']!, JSON.stringify(j));
  });
});
