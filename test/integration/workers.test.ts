/**
 * Several data-path workers on a multi-queue TUN: the eBPF steering program sends every packet
 * of a persistent service's client to the worker the test predicts from the same formula, both
 * directions meet in that worker (requests succeed), persistence holds, ICMP errors are
 * translated, the listing adds the workers up; one client's connections to a service without
 * persistence spread over both workers; and open connections survive reloads that add and
 * remove persistent services (their steering key depends only on their own service).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { needsRoot } from '../support/root.js';
import { callAdmin as call } from '../../src/control/admin-client.js';

const V = LAB.VIP;
const RS = [0, 1, 2].map(LAB.realServer);
const CLIENTS = 6;
const rules = [
  `-A -t ${V}:80 -s rr`,
  ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`),
  `-A -t ${V}:443 -s rr -p 300`,
  ...RS.map((a) => `-a -t ${V}:443 -r ${a}:8080 -m`),
  `-A -u ${V}:54 -s rr`,
  `-a -u ${V}:54 -r ${RS[0]}:5999 -m`,
].join('\n');

/** The queue the steering program picks for a client of a persistent service with netmask /32 (see steering.ts). */
const queueOf = (client: string, queues: number) => ((Math.imul(parseIPv4(client), 0x9e3779b1) >>> 0) >>> 16) % queues;

describe('two data-path workers', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const reads = async () => ((await call(bed.socket, 'GET', '/v1/counters')).json.workers as { reads: number }[]).map((w) => w.reads);
  before(async () => {
    bed = await new DirectorBed({ rules, realServers: 3, clients: CLIENTS, httpPort: 8080, ulvsdArgs: ['--workers', '2'] }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test("each client of the persistent service is handled entirely by the worker its address hashes to", async () => {
    assert.match(bed.ulvsdLog, /2 queues \(steered by client address and port; by client network for 2 services\)/);
    for (let i = 0; i < CLIENTS; i++) {
      const before = await reads();
      const r = bed.client(['--http', '443', '--requests', '3'], i);
      assert.equal(r.filter((x) => x['ok']).length, 3, `client ${i}: ${JSON.stringify(r)}`);
      const after = await reads();
      const grew = after.map((x, w) => x - before[w]!);
      const want = queueOf(LAB.client(i), 2);
      assert.ok(grew[want]! >= 3 * 6, `client ${LAB.client(i)} -> worker ${want}: ${grew}`);
      assert.equal(grew[1 - want], 0, `the other worker saw none of ${LAB.client(i)}'s packets: ${grew}`);
    }
    const used = new Set(Array.from({ length: CLIENTS }, (_, i) => queueOf(LAB.client(i), 2)));
    assert.equal(used.size, 2, 'the chosen clients exercise both workers');
  });

  test('persistence holds per client; ICMP errors reach the right worker; listings add up', async () => {
    for (let i = 0; i < CLIENTS; i++) {
      const r = bed.client(['--http', '443', '--requests', '4'], i);
      assert.equal(new Set(r.map((x) => x['server'])).size, 1, `client ${i}: ${JSON.stringify(r)}`);
    }
    for (let i = 0; i < 2; i++) {
      const r = bed.client(['--udp', '54', '--queries', '1', '--connected', '--timeout', '3000'], i);
      assert.equal(r[0]?.['error'], 'ECONNREFUSED', JSON.stringify(r));
    }
    const snap = (await call(bed.socket, 'GET', '/v1/snapshot')).json;
    const shop = snap.services.find((s: { port: number }) => s.port === 443);
    assert.equal(shop.counters[0], CLIENTS * 3 + CLIENTS * 4, 'connections of both workers are counted');
  });
});

describe('two data-path workers, no persistent service: steering by client address and port', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  // what each worker carried: packets read from the TUN, and with kernel set-up (the exactness
  // run, scripts/run-tests.js) the connections the kernel reported to it (its own ring)
  const reads = async () => ((await call(bed.socket, 'GET', '/v1/counters')).json.workers as { reads: number; kernel_opened?: number }[]).map((w) => w.reads + (w.kernel_opened ?? 0));
  const flowRules = [`-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`), `-A -u ${V}:54 -s rr`, `-a -u ${V}:54 -r ${RS[0]}:5999 -m`].join('\n');
  before(async () => {
    bed = await new DirectorBed({ rules: flowRules, realServers: 3, httpPort: 8080, ulvsdArgs: ['--workers', '2'] }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test("one client's connections spread over both workers and all complete; ICMP errors reach their connection", async () => {
    assert.match(bed.ulvsdLog, /2 queues \(steered by client address and port\), offloads/);
    const before = await reads();
    const r = bed.client(['--requests', '40']);
    assert.equal(r.filter((x) => x['ok']).length, 40, JSON.stringify(r.filter((x) => !x['ok'])));
    const grew = (await reads()).map((x, w) => x - before[w]!);
    assert.ok(grew[0]! >= 6 && grew[1]! >= 6, `both workers carried connections of the one client: ${grew}`);
    const u = bed.client(['--udp', '54', '--queries', '6', '--connected', '--timeout', '3000']);
    assert.deepEqual(u.map((x) => x['error']), Array(6).fill('ECONNREFUSED'), JSON.stringify(u));
    const snap = (await call(bed.socket, 'GET', '/v1/snapshot')).json;
    const web = snap.services.find((s: { port: number }) => s.port === 80);
    assert.equal(web.counters[0], 40, 'one connection per request, none created twice by a wrong worker');
  });
});

describe('two data-path workers: reloads that add and remove persistent services keep open connections', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const base = [`-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`)];
  const withPersistent = [...base, `-A -t ${V}:443 -s rr -p 300 -M 255.255.255.0`, ...RS.map((a) => `-a -t ${V}:443 -r ${a}:8443 -m`)];
  before(async () => {
    bed = await new DirectorBed({ rules: base.join('\n'), realServers: 3, httpPort: 8080, ulvsdArgs: ['--workers', '2'] }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('40 streaming connections of one client (both workers) survive a reload that adds a persistent service, and one that removes it', async () => {
    // A stream that lands on the wrong worker stalls for good (its connection is in the other
    // worker's table), so a request timeout well inside the run detects it.
    for (const [next, applied] of [
      [withPersistent, /applied: services \+1 -0/],
      [base, /applied: services \+0 -1/],
    ] as const) {
      const before = ((await call(bed.socket, 'GET', '/v1/counters')).json.workers as { reads: number }[]).map((w) => w.reads);
      const streams = bed.clientAsync(['--streams', '40', '--duration', '5000', '--timeout', '2500']);
      await new Promise((r) => setTimeout(r, 1500));
      assert.match(await bed.reload(next.join('\n')), applied);
      await bed.logged(/steering map updated/);
      const [r] = await streams;
      assert.equal(r?.['ok'], true, JSON.stringify(r));
      assert.equal(r?.['changedSocket'], 0, 'every stream kept its TCP connection');
      const grew = ((await call(bed.socket, 'GET', '/v1/counters')).json.workers as { reads: number }[]).map((w, i) => w.reads - before[i]!);
      assert.ok(grew[0]! > 100 && grew[1]! > 100, `both workers carried streams: ${grew}`);
      bed.ulvsdLog = ''; // the next round waits for its own "replaced" line
    }
  });
});
