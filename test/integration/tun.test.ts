/**
 * IP-in-IP tunnelling (VS/TUN, `-i`, --tun-type ipip) end to end: ulvsd sends each request,
 * TTL - 1, inside an outer IPv4 header (the director's address on the route to RIP -> RIP,
 * protocol 4) to the real server: the first packets through the TUN and its way-out program
 * (tun_out.bpf.c, FLOW_TUN_ROUTE), established connections by the NIC fast path (fastpath.bpf.c,
 * FLOW_TUN).
 *
 * Test bed: the real servers are prepared with `ulvs rs-setup tun --decap bpf VIP` (this kernel
 * has no ipip module: ulvs's own decapsulation program, bpf/rs_decap.bpf.c), as an operator
 * would. Their replies (source VIP) go to their default gateway, the director, whose kernel
 * forwards them to the client: ulvs never sees them.
 *
 * MTU: the outer header adds 20 bytes. The real servers' network here has an MTU of 1520 (the
 * client's stays 1500), as a tunnelling operator would provision it. One test uses a 1500-byte
 * network: full-size DF segments are answered with ICMP "fragmentation needed" (1480), as IPVS
 * does, and the upload completes (dr-tun-pmtu.test.ts tests path MTU in depth).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { assertArrivals, assertOneWayTransfer, nftMissing } from '../support/one-way.js';
import { wayOutCounters } from '../support/way-out-stats.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const ULVS = fileURLToPath(new URL('../../../bin/ulvs', import.meta.url)); // from dist/test/integration
const V = LAB.VIP;
const RS = [0, 1, 2].map(LAB.realServer);
const rules = `-A -t ${V}:80 -s rr\n${RS.map((r) => `-a -t ${V}:80 -r ${r}:80 -i -w 1\n`).join('')}`;

const rsSetup = (ns: string, ...args: string[]) => run(['ip', 'netns', 'exec', ns, process.execPath, ULVS, 'rs-setup', ...args]);

/** The decapsulator's counters at a real server (ulvs rs-setup --status). */
function decapsulated(ns: string): number {
  const m = /decapsulated (\d+)/.exec(rsSetup(ns, '--status'));
  return Number(m?.[1] ?? 0);
}

/** A bed whose real servers are prepared for tunnelling (ulvs's own decapsulator). */
async function startTunBed(o: { rsMtu?: number } = {}): Promise<DirectorBed> {
  const bed = await new DirectorBed({ rules, realServers: 3, httpPort: 80, ...o }).start();
  for (const ns of bed.bed.realServers) rsSetup(ns, 'tun', '--decap', 'bpf', V);
  return bed;
}

/** Undo rs-setup on every real server, then remove the bed. */
async function stopTunBed(bed: DirectorBed | undefined): Promise<void> {
  for (const ns of bed?.bed.realServers ?? []) {
    try {
      rsSetup(ns, '--remove');
    } catch {
      // the namespace goes with the bed anyway; the state file is per namespace
    }
  }
  await bed?.stop();
}

describe('IP-in-IP tunnelling (-i)', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const adm = (args: string) => spawnSync(process.execPath, [ULVSADM, ...args.split(' ')], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
  before(async () => {
    bed = await startTunBed({ rsMtu: 1520 });
  });
  after(async () => {
    await stopTunBed(bed);
  });

  test('HTTP requests are answered by the three servers in turn (rr), the client address intact', () => {
    const before = bed.bed.realServers.map(decapsulated);
    const got = bed.client(['--requests', '9', '--timeout', '3000']);
    assert.equal(got.filter((x) => x['ok']).length, 9, JSON.stringify(got));
    const by = new Map<string, number>();
    for (const x of got) by.set(String(x['server']), (by.get(String(x['server'])) ?? 0) + 1);
    assert.deepEqual([...by.values()], [3, 3, 3], JSON.stringify([...by]));
    for (const x of got) assert.match(String(x['client']), new RegExp(`^${LAB.client(0).replace(/\./g, '\\.')}:`));
    assert.match(adm(`-L -n -t ${V}:80`).stdout, /Tunnel/);
    for (const [i, ns] of bed.bed.realServers.entries()) assert.ok(decapsulated(ns) - before[i]! >= 3, `real server ${i + 1} decapsulated its requests`);
  });

  test('the inner packets arrive at the real server addressed to the VIP from the client, TTL one less', { skip: nftMissing }, () => {
    assertArrivals(bed, 'tunnelled packets');
  });

  test('200 MB each way arrive intact (SHA-256), almost all requests tunnelled by the kernel fast path', async (t) => {
    await assertOneWayTransfer(bed, adm, `${V}:80`, t);
  });

  test('control: without the decapsulator a real server gets nothing it can use (the requests to it fail)', () => {
    const ns = bed.bed.realServers[0]!;
    rsSetup(ns, '--remove');
    try {
      const got = bed.client(['--requests', '3', '--timeout', '1500']);
      const failed = got.filter((x) => !x['ok']);
      assert.equal(failed.length, 1, `one in three (rr) goes to that server: ${JSON.stringify(got)}`);
    } finally {
      rsSetup(ns, 'tun', '--decap', 'bpf', V);
    }
    const got = bed.client(['--requests', '3', '--timeout', '3000']);
    assert.equal(got.filter((x) => x['ok']).length, 3, 'set up again: all answered');
  });

  test('with --fast-path off ulvsd refuses tunnelling servers at start', async () => {
    const plain = new DirectorBed({ rules, realServers: 1, httpPort: 80, ulvsdArgs: ['--fast-path', 'off'] });
    await assert.rejects(plain.start(), /IP-in-IP tunnelling \(-i\) is not available: it needs the kernel fast path/);
  });
});

describe('IP-in-IP tunnelling on a 1500-byte real-server network', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  before(async () => {
    bed = await startTunBed();
  });
  after(async () => {
    await stopTunBed(bed);
  });

  test('MTU-sized DF segments (+ 20 > 1500) are answered with "fragmentation needed" (1480), not sent broken; the upload completes', () => {
    const got = bed.client(['--requests', '3', '--timeout', '3000']);
    assert.equal(got.filter((x) => x['ok']).length, 3, JSON.stringify(got));
    const before = wayOutCounters(bed);
    // one MSS per packet (as a NIC without GRO delivers; veth would carry TSO super-packets,
    // whose segments the encapsulation shrinks by 20, but any lone full-size segment sticks)
    run(['ip', '-n', bed.bed.clients[0]!, 'link', 'set', 'eth0', 'gso_max_segs', '1']);
    const [post] = bed.client(['--post-bytes', String(1e6), '--timeout', '5000'], 0, 30_000);
    assert.equal(post?.['ok'], true, JSON.stringify(post));
    assert.equal(post?.['sha256'], post?.['expected']);
    const after = wayOutCounters(bed);
    assert.ok(after.TUN_OUT_TOO_BIG - before.TUN_OUT_TOO_BIG > 0, `way-out counters: ${JSON.stringify({ before, after })}`);
    assert.ok(after.TUN_OUT_ENCAP > 0);
    assert.match(run(['ip', '-n', bed.bed.clients[0]!, 'route', 'get', V]), /mtu 1480/, 'the client learnt the tunnel MTU');
  });
});
