/**
 * Concurrency and live changes: 500 concurrent connections all complete; a server set to
 * weight 0 by a reload (SIGHUP) keeps its open connection while new ones go elsewhere.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';

const V = LAB.VIP;
const RS = [0, 1, 2].map(LAB.realServer);
const rulesWith = (w: number[]) => [`-A -t ${V}:80 -s wlc`, ...RS.map((a, i) => `-a -t ${V}:80 -r ${a}:8080 -m -w ${w[i]}`)].join('\n');

describe('concurrency and live changes', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  before(async () => {
    bed = await new DirectorBed({ rules: rulesWith([1, 1, 1]), realServers: 3, httpPort: 8080 }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('500 concurrent connections all complete', async () => {
    const r = bed.client(['--requests', '500', '--concurrent', '--timeout', '20000'], 0, 60_000);
    assert.equal(r.length, 500);
    const failed = r.filter((x) => !x['ok']);
    assert.equal(failed.length, 0, JSON.stringify(failed.slice(0, 5)));
    const per: Record<string, number> = {};
    for (const x of r) per[String(x['server'])] = (per[String(x['server'])] ?? 0) + 1;
    assert.equal(Object.keys(per).length, 3, JSON.stringify(per));
    // the dump has what /metrics has beyond the workers' counters (daemon.ts #counters): the
    // defences' state, there from the defence feed's first one-second sample on
    let dump = await bed.dump();
    for (let k = 0; k < 50 && !dump.includes('; defense '); k++) {
      await new Promise((r) => setTimeout(r, 100));
      dump = await bed.dump();
    }
    assert.match(dump, /; defense mode\.drop_entry=0 .*mode\.secure_tcp=0 /);
  });

  test('weight 0 by reload: the open connection keeps working, new ones go elsewhere', async () => {
    const held = bed.clientAsync(['--hold', '3000', '--timeout', '10000']);
    // Wait until the held connection is open (one server shows ActiveConn 1), then quiesce
    // that server.
    let line: string | undefined;
    for (let k = 0; k < 50 && !line; k++) {
      await new Promise((r) => setTimeout(r, 100));
      line = (await bed.dump()).split('\n').find((l) => /->\s+192\.0\.2\.\d+:8080\s+Masq\s+1\s+1\s/.test(l));
    }
    assert.ok(line, 'one server has the held connection active');
    const holder = /192\.0\.2\.\d+/.exec(line)![0];
    const idx = RS.indexOf(holder);
    const w = [1, 1, 1];
    w[idx] = 0;
    const log = await bed.reload(rulesWith(w));
    assert.match(log, /applied: .*real servers \+0 -0 ~1/);
    const fresh = bed.client(['--requests', '12']);
    assert.equal(fresh.filter((x) => x['ok']).length, 12);
    const holderName = `rs${idx + 1}`;
    assert.ok(fresh.every((x) => x['server'] !== holderName), `no new connection to the quiesced ${holderName}`);
    const r = await held;
    const first = r.find((x) => x['step'] === 1);
    const second = r.find((x) => x['step'] === 2);
    assert.equal(first?.['server'], holderName);
    assert.equal(second?.['ok'], true, JSON.stringify(r));
    assert.equal(second?.['server'], holderName, 'the open connection still reaches its server');
    assert.equal(second?.['local'], first?.['local'], 'and it is the same TCP connection');
  });
});
