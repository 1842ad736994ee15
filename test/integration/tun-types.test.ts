/**
 * Tunnelling (VS/TUN, `-i`) with IPVS's other tunnel types, end to end: GUE (`--tun-type gue
 * --tun-port 6080`: outer IPv4 + UDP to the port + 4-byte GUE header) and GRE (`--tun-type gre`:
 * outer IPv4 + 4-byte GRE header), sent by ulvsd's way out of the TUN (first packets) and the
 * NIC fast path (established connections), both through bpf/ulvs_net.h tun_encap; and a
 * tunnelled server behind a router, which the outer packet reaches as an ordinary routed packet.
 *
 * The real servers are prepared as an operator would: `ulvs rs-setup tun --tun-type gue
 * --tun-port 6080 VIP` or `--tun-type gre VIP` (this kernel has no fou or ip_gre module: ulvs's
 * decapsulation program, bpf/rs_decap.bpf.c). Their replies go to their default gateway, the
 * director (or the router, then the director), and never cross ulvs.
 *
 * MTU: GUE adds 32 bytes, GRE 24; the real servers' networks have an MTU of 1540 (the client's
 * stays 1500), so full-size segments fit without path MTU discovery (which the way out answers,
 * with the route's MTU minus the overhead: tun-encap-program.test.ts).
 *
 * Controls: a server whose decapsulator is removed loses exactly its share of the requests; a
 * direct-routing server behind the router is refused with nothing changed (only tunnels may be
 * routed); checksummed tunnels are refused.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DirectorBed, SCRIPTS, waitFor } from '../../src/lab/director-bed.js';
import { LAB, type TestBed } from '../../src/lab/testbed.js';
import { run, tryRun } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { assertOneWayTransfer } from '../support/one-way.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const ULVS = fileURLToPath(new URL('../../../bin/ulvs', import.meta.url)); // from dist/test/integration
const V = LAB.VIP;
const GUE_PORT = 6080;
const MTU = 1540;

const rsSetup = (ns: string, ...args: string[]) => run(['ip', 'netns', 'exec', ns, process.execPath, ULVS, 'rs-setup', ...args]);
/** The decapsulator's count at a real server (ulvs rs-setup --status). */
const decapsulated = (ns: string) => Number(/decapsulated (\d+)/.exec(rsSetup(ns, '--status'))?.[1] ?? 0);
/** Undo rs-setup in each namespace (its record lives in /run/ulvs, keyed by the namespace's
 *  inode, which a later namespace may reuse: a record left behind would refuse that one). */
const rsRemove = (namespaces: readonly string[]) => {
  for (const ns of namespaces) {
    try {
      rsSetup(ns, '--remove');
    } catch {
      // not set up (a failed start), or the namespace is gone
    }
  }
};
const admIn = (bed: DirectorBed) => (args: string) => spawnSync(process.execPath, [ULVSADM, ...args.split(' ')], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
/** How many answers each server gave (the client's JSON lines), in first-seen order. */
const spread = (got: Record<string, unknown>[]) => {
  const by = new Map<string, number>();
  for (const x of got) by.set(String(x['server']), (by.get(String(x['server'])) ?? 0) + 1);
  return [...by.values()];
};

const TYPES = [
  { name: 'GUE', director: `-i --tun-type gue --tun-port ${GUE_PORT}`, rs: ['--tun-type', 'gue', '--tun-port', String(GUE_PORT)], info: `gue:${GUE_PORT}:-c` },
  { name: 'GRE', director: '-i --tun-type gre', rs: ['--tun-type', 'gre'], info: 'gre:-c' },
] as const;

for (const t of TYPES)
  describe(`${t.name} tunnelling (${t.director})`, { skip: needsRoot }, () => {
    let bed: DirectorBed;
    let adm: ReturnType<typeof admIn>;
    const rules = `-A -t ${V}:80 -s rr\n${[0, 1, 2].map((i) => `-a -t ${V}:80 -r ${LAB.realServer(i)}:80 ${t.director} -w 1\n`).join('')}`;
    before(async () => {
      bed = await new DirectorBed({ rules, realServers: 3, httpPort: 80, rsMtu: MTU, prefix: `h1-${t.name.toLowerCase()}${randomBytes(2).toString('hex')}` }).start();
      adm = admIn(bed);
      for (const ns of bed.bed.realServers) rsSetup(ns, 'tun', ...t.rs, V);
    });
    after(async () => {
      rsRemove(bed?.bed.realServers ?? []);
      await bed?.stop();
    });

    test('ulvsd started with these servers and lists them with their tunnel', () => {
      const l = adm(`-L -n --tun-info -t ${V}:80`);
      assert.equal(l.status, 0, l.stderr);
      for (const i of [0, 1, 2]) assert.match(l.stdout, new RegExp(`${LAB.realServer(i).replace(/\./g, '\\.')}:80 +Tunnel +${t.info} +1 `));
      assert.match(adm('-S -n').stdout, new RegExp(`-r ${LAB.realServer(0)}:80 -i -w 1 ${t.director.slice(3)} --tun-nocsum\n`));
      // and ulvsadm adds one at run time (ipvsadm's command line), listed alike, then deletes it
      const add = adm(`-a -t ${V}:80 -r 192.0.2.50:80 ${t.director}`);
      assert.equal(add.status, 0, add.stderr);
      assert.match(adm(`-L -n --tun-info -t ${V}:80`).stdout, new RegExp(`192\\.0\\.2\\.50:80 +Tunnel +${t.info} +1 `));
      assert.equal(adm(`-d -t ${V}:80 -r 192.0.2.50:80`).status, 0);
    });

    test('HTTP requests are answered by the three servers in turn (rr 3/3/3), the client address intact, each decapsulated there', () => {
      const before = bed.bed.realServers.map(decapsulated);
      const got = bed.client(['--requests', '9', '--timeout', '3000']);
      assert.equal(got.filter((x) => x['ok']).length, 9, JSON.stringify(got));
      assert.deepEqual(spread(got), [3, 3, 3], JSON.stringify(got));
      for (const x of got) assert.match(String(x['client']), new RegExp(`^${LAB.client(0).replace(/\./g, '\\.')}:`));
      for (const [i, ns] of bed.bed.realServers.entries()) assert.ok(decapsulated(ns) - before[i]! >= 3, `real server ${i + 1} decapsulated its requests`);
    });

    test('100 MB each way arrive intact (SHA-256), almost all requests encapsulated by the kernel fast path (GSO super-packets)', async (ctx) => {
      await assertOneWayTransfer(bed, adm, `${V}:80`, ctx);
    });

    // (the bridge br0 segments encapsulated super-packets in software already; the ports are
    // made to as well, whatever the bridge's features)
    test('GSO super-packets segmented in software on the way to the servers (ports with gso_max_size 1500): 30 MB up arrive intact', () => {
      const ports = bed.bed.realServers.map((_, i) => `rsp${i + 1}`);
      for (const p of ports) run(['ip', '-n', bed.bed.director, 'link', 'set', p, 'gso_max_size', '1500']);
      try {
        const [post] = bed.client(['--post-bytes', String(30e6), '--timeout', '30000'], 0, 90_000);
        assert.equal(post?.['ok'], true, JSON.stringify(post));
        assert.equal(post?.['sha256'], post?.['expected']);
      } finally {
        for (const p of ports) run(['ip', '-n', bed.bed.director, 'link', 'set', p, 'gso_max_size', '65536']);
      }
    });

    test('control: a server without the decapsulator loses exactly its share (1 of 3 requests fails)', () => {
      const ns = bed.bed.realServers[1]!;
      rsSetup(ns, '--remove');
      try {
        const got = bed.client(['--requests', '3', '--timeout', '1500']);
        assert.equal(got.filter((x) => !x['ok']).length, 1, JSON.stringify(got));
      } finally {
        rsSetup(ns, 'tun', ...t.rs, V);
      }
      const got = bed.client(['--requests', '3', '--timeout', '3000']);
      assert.equal(got.filter((x) => x['ok']).length, 3, 'set up again: all answered');
    });

    test('checksummed tunnels are refused with nothing changed', () => {
      const state = adm('-S -n').stdout;
      const r = adm(`-a -t ${V}:80 -r 192.0.2.50:80 ${t.director} --tun-csum`);
      assert.equal(r.status, 255);
      assert.match(r.stderr, new RegExp(`checksummed ${t.name} tunnels \\(--tun-csum\\) are not supported by ulvs`));
      assert.equal(adm('-S -n').stdout, state);
    });
  });

/**
 * A router namespace on the real servers' LAN (192.0.2.9) with a network behind it,
 * 192.0.2.192/26, where one more real server sits (192.0.2.194, default via the router, whose
 * default is the director). The director routes 192.0.2.192/26 via the router.
 */
const ROUTER = '192.0.2.9', FAR = '192.0.2.194', FAR_NET = '192.0.2.192/26', FAR_GW = '192.0.2.193';
function addRouter(bed: TestBed): { router: string; far: string } {
  const router = `${bed.prefix}-rt`, far = `${bed.prefix}-far`;
  const ip = (ns: string, ...a: string[]) => run(['ip', '-n', ns, ...a]);
  for (const ns of [router, far]) {
    run(['ip', 'netns', 'add', ns]);
    ip(ns, 'link', 'set', 'lo', 'up');
  }
  run(['ip', 'link', 'add', 'name', 'rtp', 'netns', bed.director, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', router]);
  ip(bed.director, 'link', 'set', 'rtp', 'master', 'br0', 'mtu', String(MTU), 'up');
  ip(router, 'addr', 'add', `${ROUTER}/24`, 'dev', 'eth0');
  ip(router, 'link', 'set', 'eth0', 'mtu', String(MTU), 'up');
  run(['ip', 'link', 'add', 'name', 'eth1', 'netns', router, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', far]);
  ip(router, 'addr', 'add', `${FAR_GW}/26`, 'dev', 'eth1');
  ip(router, 'link', 'set', 'eth1', 'mtu', String(MTU), 'up');
  ip(router, 'route', 'add', 'default', 'via', LAB.DIP);
  ip(far, 'addr', 'add', `${FAR}/26`, 'dev', 'eth0');
  ip(far, 'link', 'set', 'eth0', 'mtu', String(MTU), 'up');
  ip(far, 'route', 'add', 'default', 'via', FAR_GW);
  // the router forwards; the servers' replies (source the VIP) arrive where its route to the VIP does not lead
  run(['ip', 'netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.eth1.rp_filter=0']);
  ip(bed.director, 'route', 'add', FAR_NET, 'via', ROUTER);
  return { router, far };
}

describe('a tunnelled server behind a router (the outer packet is routed)', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  let adm: ReturnType<typeof admIn>;
  let extra: { router: string; far: string } | null = null;
  let server: ChildProcess | null = null;
  const prefix = `h1-gw${randomBytes(2).toString('hex')}`;
  // one GUE server on the LAN, one GRE server behind the router
  const rules = `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${LAB.realServer(0)}:80 -i --tun-type gue --tun-port ${GUE_PORT} -w 1\n-a -t ${V}:80 -r ${FAR}:80 -i --tun-type gre -w 1\n`;
  before(async () => {
    // the route to the far server must exist when ulvsd checks its rules at start
    bed = await new DirectorBed({ rules, realServers: 1, httpPort: 80, rsMtu: MTU, prefix, beforeDirector: (b) => (extra = addRouter(b)) }).start();
    adm = admIn(bed);
    rsSetup(bed.bed.realServers[0]!, 'tun', '--tun-type', 'gue', '--tun-port', String(GUE_PORT), V);
    server = spawn('ip', ['netns', 'exec', extra!.far, process.execPath, SCRIPTS.servers, '--name', 'far', '--http', '80'], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitFor(server, /ready/);
    rsSetup(extra!.far, 'tun', '--tun-type', 'gre', V);
  });
  after(async () => {
    server?.kill('SIGKILL');
    rsRemove([...(bed?.bed.realServers ?? []), ...(extra ? [extra.far] : [])]);
    await bed?.stop();
    for (const ns of [`${prefix}-rt`, `${prefix}-far`]) {
      tryRun(['ip', 'netns', 'pids', ns]) && run(['ip', 'netns', 'pids', ns]).split(/\s+/).filter(Boolean).forEach((p) => tryRun(['kill', '-9', p]));
      tryRun(['ip', 'netns', 'del', ns]);
    }
  });

  test('requests alternate between the LAN server and the one behind the router, which decapsulates its share', () => {
    const before = decapsulated(extra!.far);
    const got = bed.client(['--requests', '6', '--timeout', '3000']);
    assert.equal(got.filter((x) => x['ok']).length, 6, JSON.stringify(got));
    assert.deepEqual(spread(got), [3, 3], JSON.stringify(got));
    assert.ok(got.some((x) => x['server'] === 'far'), 'the far server answered');
    for (const x of got) assert.match(String(x['client']), new RegExp(`^${LAB.client(0).replace(/\./g, '\\.')}:`));
    assert.ok(decapsulated(extra!.far) - before >= 3);
  });

  test('bulk both ways through the router: two 20 MB uploads (one per server) and a download arrive intact', () => {
    const before = decapsulated(extra!.far);
    for (const args of [['--post-bytes', String(20e6)], ['--post-bytes', String(20e6)], ['--get-bytes', String(20e6)]]) {
      const [r] = bed.client([...args, '--timeout', '30000'], 0, 90_000);
      assert.equal(r?.['ok'], true, JSON.stringify(r));
      assert.equal(r?.['sha256'], r?.['expected']);
    }
    assert.ok(decapsulated(extra!.far) - before > 1000, 'the far server received an upload through the tunnel');
  });

  test('control: a direct-routing server behind the router is still refused, with nothing changed', () => {
    const state = adm('-S -n').stdout;
    const r = adm(`-a -t ${V}:80 -r 192.0.2.195:80 -g`);
    assert.equal(r.status, 255);
    assert.match(r.stderr, /^Direct routing needs the real server on a directly connected network of the director: it is reached through the gateway 192\.0\.2\.9/);
    const ok = adm(`-a -t ${V}:80 -r 192.0.2.195:80 -i --tun-type gue --tun-port ${GUE_PORT}`);
    assert.equal(ok.status, 0, `the same address as a tunnelled server is accepted: ${ok.stderr}`);
    assert.equal(adm(`-d -t ${V}:80 -r 192.0.2.195:80`).status, 0);
    assert.equal(adm('-S -n').stdout, state);
  });
});
