/**
 * Path MTU discovery through a router between the director and a tunnelled real server, end
 * to end (the fast path's relay, bpf/ulvs_tun_icmp.h; IPVS's ip_vs_in_icmp):
 *
 *   client (1500) -- director (1500 on both sides) -- router --(1280)-- real server 192.0.2.194
 *
 * The real server is set up with `ulvs rs-setup tun` (IPIP, or GUE on port 6080) and advertises
 * an MSS of 1460 (route advmss, as if its own link were larger). The client's full-size DF
 * segments first exceed the director's own route (1500 with the tunnel header: the director
 * answers, tun_out.bpf.c), then, at 1500 outside, the router's link towards the server: the
 * router sends "fragmentation needed" (MTU 1280) to the outer source, the director. The fast
 * path relays it to the client with 1280 minus the tunnel overhead (1260 IPIP, 1248 GUE: the
 * GUE value is where IPVS's fixed 20 would be 12 bytes too much). A 20 MB upload completes with
 * the same SHA-256, the client's route to the VIP carries the learnt MTU, the client's nft
 * counter saw the error with that MTU, the director's fast-path counter counted the relay, and
 * the director's own stack never saw the router's errors (nft counter in its input hook: 0).
 *
 * Control (run first in each bed, before the client has learnt anything from the router): the
 * router's errors are dropped on the director before the fast path sees them (nft, bridge
 * family, prerouting of the router's bridge port: before br0's tcx ingress, where the fast
 * path runs; the director's own answers from the TUN's way out stay): the upload stalls, while
 * the drop rule's counter shows the router sent them. So the relay is what lets it complete;
 * the client's learnt MTU (1260/1248, not the director's own 1480) says the same. (ulvsd cannot
 * run TUN with --fast-path off, which would have been the other way to turn the relay off.)
 *
 * Every name starts with h9-; the beds and the extra namespaces are removed in `after`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DirectorBed, SCRIPTS, waitFor } from '../../src/lab/director-bed.js';
import { LAB, type TestBed } from '../../src/lab/testbed.js';
import { run, tryRun } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { nftMissing } from '../support/one-way.js';
import { fastPathCounters } from '../support/fast-path-stats.js';

const ULVS = fileURLToPath(new URL('../../../bin/ulvs', import.meta.url)); // from dist/test/integration
const V = LAB.VIP;
const GUE_PORT = 6080;
const ROUTER = '192.0.2.9', FAR = '192.0.2.194', FAR_NET = '192.0.2.192/26', FAR_GW = '192.0.2.193';
const skip = needsRoot || nftMissing;

/** The router namespace on the real servers' LAN (link 1500) with the server's network behind
 *  it (link 1280); the director routes that network via the router. */
function addRouter(bed: TestBed): { router: string; far: string } {
  const router = `${bed.prefix}-rt`, far = `${bed.prefix}-far`;
  const ip = (ns: string, ...a: string[]) => run(['ip', '-n', ns, ...a]);
  for (const ns of [router, far]) {
    run(['ip', 'netns', 'add', ns]);
    ip(ns, 'link', 'set', 'lo', 'up');
  }
  run(['ip', 'link', 'add', 'name', 'rtp', 'netns', bed.director, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', router]);
  ip(bed.director, 'link', 'set', 'rtp', 'master', 'br0', 'up');
  ip(router, 'addr', 'add', `${ROUTER}/24`, 'dev', 'eth0');
  ip(router, 'link', 'set', 'eth0', 'up');
  run(['ip', 'link', 'add', 'name', 'eth1', 'netns', router, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', far]);
  ip(router, 'addr', 'add', `${FAR_GW}/26`, 'dev', 'eth1');
  ip(router, 'link', 'set', 'eth1', 'mtu', '1280', 'up');
  ip(router, 'route', 'add', 'default', 'via', LAB.DIP);
  ip(far, 'addr', 'add', `${FAR}/26`, 'dev', 'eth0');
  ip(far, 'link', 'set', 'eth0', 'mtu', '1280', 'up');
  // the server advertises 1460 though its link carries 1280
  ip(far, 'route', 'add', 'default', 'via', FAR_GW, 'advmss', '1460');
  run(['ip', 'netns', 'exec', router, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.eth1.rp_filter=0']);
  ip(bed.director, 'route', 'add', FAR_NET, 'via', ROUTER);
  return { router, far };
}

/** An nft table `h9pmtu` in `ns` counting incoming "fragmentation needed" (from `from` if given,
 *  carrying `mtu` if given). */
function fragNeededCounter(ns: string, o: { mtu?: number; from?: string }) {
  const match = `${o.from ? `ip saddr ${o.from} ` : ''}icmp type destination-unreachable icmp code frag-needed${o.mtu ? ` icmp mtu ${o.mtu}` : ''}`;
  run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], `table ip h9pmtu {\n chain in {\n  type filter hook input priority -10;\n  ${match} counter\n }\n}\n`);
  return () => Number(/packets (\d+)/.exec(run(['ip', 'netns', 'exec', ns, 'nft', 'list', 'table', 'ip', 'h9pmtu']))?.[1] ?? 0);
}

/** A bed with the router and a tunnelled server of `tun` behind it; ulvsd with `ulvsdArgs`. */
function routerBed(tun: 'ipip' | 'gue', ulvsdArgs: string[] = []) {
  const prefix = `h9-${randomBytes(2).toString('hex')}`;
  const director = tun === 'gue' ? `-i --tun-type gue --tun-port ${GUE_PORT}` : '-i';
  const rs = tun === 'gue' ? ['--tun-type', 'gue', '--tun-port', String(GUE_PORT)] : ['--decap', 'bpf'];
  const s = { bed: null as DirectorBed | null, extra: null as { router: string; far: string } | null, server: null as ChildProcess | null };
  return {
    s,
    async start() {
      const rules = `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${FAR}:80 ${director} -w 1\n`;
      s.bed = await new DirectorBed({ rules, realServers: 1, httpPort: 80, prefix, ulvsdArgs, beforeDirector: (b) => (s.extra = addRouter(b)) }).start();
      s.server = spawn('ip', ['netns', 'exec', s.extra!.far, process.execPath, SCRIPTS.servers, '--name', 'far', '--http', '80'], { stdio: ['ignore', 'pipe', 'pipe'] });
      await waitFor(s.server, /ready/);
      run(['ip', 'netns', 'exec', s.extra!.far, process.execPath, ULVS, 'rs-setup', 'tun', ...rs, V]);
    },
    async stop() {
      s.server?.kill('SIGKILL');
      if (s.extra) tryRun(['ip', 'netns', 'exec', s.extra.far, process.execPath, ULVS, 'rs-setup', '--remove']);
      await s.bed?.stop();
      for (const ns of [`${prefix}-rt`, `${prefix}-far`]) {
        tryRun(['ip', 'netns', 'pids', ns]) && run(['ip', 'netns', 'pids', ns]).split(/\s+/).filter(Boolean).forEach((p) => tryRun(['kill', '-9', p]));
        tryRun(['ip', 'netns', 'del', ns]);
      }
    },
  };
}

for (const [tun, mtu] of [['ipip', 1260], ['gue', 1248]] as const)
  describe(`${tun.toUpperCase()} to a real server behind a router whose link to it carries 1280`, { skip }, () => {
    const b = routerBed(tun);
    let clientSaw: () => number, directorStackSaw: () => number;
    before(async () => {
      await b.start();
      clientSaw = fragNeededCounter(b.s.bed!.bed.clients[0]!, { mtu });
      directorStackSaw = fragNeededCounter(b.s.bed!.bed.director, { from: ROUTER });
    });
    after(() => b.stop());

    test('control: with the router\'s errors dropped before the fast path, the upload stalls', () => {
      const bed = b.s.bed!;
      const drop = (script: string) => run(['ip', 'netns', 'exec', bed.bed.director, 'nft', '-f', '-'], script);
      drop(`table bridge h9drop {\n chain pre {\n  type filter hook prerouting priority -300;\n  ip saddr ${ROUTER} icmp type destination-unreachable counter drop\n }\n}\n`);
      try {
        const before = fastPathCounters(bed);
        const [post] = bed.client(['--post-bytes', String(2e6), '--timeout', '4000'], 0, 30_000);
        assert.notEqual(post?.['ok'], true, `the upload must not complete: ${JSON.stringify(post)}`);
        const dropped = Number(/packets (\d+)/.exec(run(['ip', 'netns', 'exec', bed.bed.director, 'nft', 'list', 'table', 'bridge', 'h9drop']))?.[1] ?? 0);
        assert.ok(dropped > 0, 'the router sent "fragmentation needed" to the director');
        assert.equal(fastPathCounters(bed).FAST_ICMP_FRAG_NEEDED, before.FAST_ICMP_FRAG_NEEDED);
        assert.equal(clientSaw(), 0, `nothing told the client ${mtu}`);
      } finally {
        drop('delete table bridge h9drop\n');
        run(['ip', '-n', bed.bed.clients[0]!, 'route', 'flush', 'cache']);
      }
    });

    test(`a 20 MB upload (DF) completes intact; the client learnt ${mtu} from the router's error, relayed by the fast path`, (t) => {
      const bed = b.s.bed!;
      const before = fastPathCounters(bed);
      const [post] = bed.client(['--post-bytes', String(20e6), '--timeout', '30000'], 0, 90_000);
      const after = fastPathCounters(bed);
      t.diagnostic(`fast-path counters: ${JSON.stringify(after)}`);
      assert.equal(post?.['ok'], true, JSON.stringify(post));
      assert.equal(post?.['sha256'], post?.['expected']);
      assert.ok(after.FAST_ICMP_FRAG_NEEDED > before.FAST_ICMP_FRAG_NEEDED, JSON.stringify({ before, after }));
      assert.ok(clientSaw() > 0, `the client received "fragmentation needed" with MTU ${mtu}`);
      const learnt = run(['ip', '-n', bed.bed.clients[0]!, 'route', 'get', V]);
      assert.match(learnt, new RegExp(`mtu ${mtu}`), `the client's route to the VIP carries the learnt MTU: ${learnt}`);
      assert.equal(directorStackSaw(), 0, 'the router\'s errors never reached the director\'s own stack');
      assert.equal(after.FAST_ICMP_UNSENT, 0);
    });
  });
