/**
 * Direct routing (VS/DR, `-g`) end to end: ulvsd sends each request unchanged (but for its TTL)
 * to the link-layer address of its real server: the first packets through the TUN and its
 * way-out program (tun_out.bpf.c, from the FLOW_DR_ROUTE entry the worker writes when it creates
 * the connection), established connections by the NIC fast path (fastpath.bpf.c, FLOW_DR).
 *
 * Test bed: the real servers hold the VIP as a /32 on `lo` with arp_ignore=1 and arp_announce=2
 * (set here, as an operator would). Their replies (source VIP) go to their default gateway, the
 * director, whose kernel forwards them to the client: ulvs never sees them (no capture matches a
 * source VIP:port), which the counters below check. A real network would route them elsewhere.
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

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const RS = [0, 1, 2].map(LAB.realServer);
const rules = `-A -t ${V}:80 -s rr\n${RS.map((r) => `-a -t ${V}:80 -r ${r}:80 -g -w 1\n`).join('')}`;

/** A real server's DR set-up: the VIP on lo (/32), ARP for it neither answered nor used. */
function realServerSetup(ns: string): void {
  for (const k of ['all', 'eth0', 'lo']) {
    run(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.conf.${k}.arp_ignore=1`]);
    run(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.conf.${k}.arp_announce=2`]);
  }
  run(['ip', '-n', ns, 'addr', 'add', `${V}/32`, 'dev', 'lo']);
}

describe('direct routing (-g)', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const adm = (args: string) => spawnSync(process.execPath, [ULVSADM, ...args.split(' ')], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
  before(async () => {
    bed = await new DirectorBed({ rules, realServers: 3, httpPort: 80 }).start();
    for (const ns of bed.bed.realServers) realServerSetup(ns);
  });
  after(async () => {
    await bed?.stop();
  });

  test('HTTP requests are answered by the three servers in turn (rr), the client address intact', () => {
    const got = bed.client(['--requests', '9', '--timeout', '3000']);
    assert.equal(got.filter((x) => x['ok']).length, 9, JSON.stringify(got));
    const by = new Map<string, number>();
    for (const x of got) by.set(String(x['server']), (by.get(String(x['server'])) ?? 0) + 1);
    assert.deepEqual([...by.values()], [3, 3, 3], JSON.stringify([...by]));
    for (const x of got) assert.match(String(x['client']), new RegExp(`^${LAB.client(0).replace(/\./g, '\\.')}:`));
    assert.match(adm(`-L -n -t ${V}:80`).stdout, /Route/);
  });

  test('packets arrive at the real server addressed to the VIP, ports unchanged, TTL one less', { skip: nftMissing }, () => {
    assertArrivals(bed, 'DR packets');
  });

  test('200 MB each way arrive intact, almost all in the kernel fast path, counted by IPVS', async (t) => {
    await assertOneWayTransfer(bed, adm, `${V}:80`, t);
  });

  test('a server off the directly connected networks, or on this host, is refused with nothing changed', () => {
    const state = adm('-S -n').stdout;
    run(['ip', '-n', bed.bed.director, 'route', 'add', '192.0.2.128/25', 'via', RS[0]!]);
    try {
      const gw = adm(`-a -t ${V}:80 -r 192.0.2.200:80 -g`);
      assert.equal(gw.status, 255);
      assert.match(gw.stderr, /Direct routing needs the real server on a directly connected network of the director: it is reached through the gateway 192\.0\.2\.11/);
      const local = adm(`-a -t ${V}:80 -r ${LAB.DIP}:80 -g`);
      assert.equal(local.status, 255);
      assert.match(local.stderr, /it is an address of this host/);
      assert.equal(adm('-S -n').stdout, state);
      assert.equal(adm(`-a -t ${V}:80 -r 192.0.2.200:80 -m`).status, 0, 'masquerading is routed: accepted');
      assert.equal(adm(`-d -t ${V}:80 -r 192.0.2.200:80`).status, 0);
    } finally {
      run(['ip', '-n', bed.bed.director, 'route', 'del', '192.0.2.128/25']);
    }
  });

  test('control: without the VIP on its lo a real server drops what it gets (the packets are addressed to the VIP)', () => {
    const ns = bed.bed.realServers[0]!;
    run(['ip', '-n', ns, 'addr', 'del', `${V}/32`, 'dev', 'lo']);
    try {
      const got = bed.client(['--requests', '3', '--timeout', '1500']);
      const failed = got.filter((x) => !x['ok']);
      assert.equal(failed.length, 1, `one in three (rr) goes to that server: ${JSON.stringify(got)}`);
    } finally {
      run(['ip', '-n', ns, 'addr', 'add', `${V}/32`, 'dev', 'lo']);
    }
  });

  test('with --fast-path off ulvsd refuses DR servers at start', async () => {
    const plain = new DirectorBed({ rules, realServers: 1, httpPort: 80, ulvsdArgs: ['--fast-path', 'off'] });
    await assert.rejects(plain.start(), /Direct routing .* is not available: it needs the kernel fast path/);
  });
});
