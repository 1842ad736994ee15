/**
 * The kernel fast path under real traffic (ulvsd's default): bulk transfers stay intact while
 * almost none of their packets cross user space, every byte still shows in ipvsadm's counters,
 * a connection leaves the fast path at its FIN (so IPVS's states follow), and a busy offloaded
 * connection is not expired by a timeout shorter than its life (the kernel's record of its last
 * packet restarts the timer), and packets leave with the TTL the kernel's forwarding would give
 * them (the fast path and the tc way out of the TUN both decrement it once).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { downloadAndUpload } from '../support/transfer.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const rules = `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${LAB.realServer(0)}:8080 -m\n`;
const counter = (dump: string, name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(dump)?.[1] ?? 0);

const nftMissing = ['/usr/sbin/nft', '/usr/bin/nft'].some((f) => existsSync(f)) ? false : 'needs nft (apt nftables; .ci/run installs it) to count TTLs at a real server';

/** nftables counters in a real server's namespace: TCP packets to port 8080 by TTL. */
function ttlCounters(ns: string): { read(): { ttl63: number; other: number }; remove(): void } {
  const nft = (script: string) => run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], script);
  nft('table ip ulvsttl {\n chain seen {\n  type filter hook input priority 0;\n  tcp dport 8080 ip ttl 63 counter\n  tcp dport 8080 ip ttl != 63 counter\n }\n}\n');
  return {
    read() {
      const n = [...run(['ip', 'netns', 'exec', ns, 'nft', 'list', 'table', 'ip', 'ulvsttl']).matchAll(/packets (\d+)/g)].map((m) => Number(m[1]));
      return { ttl63: n[0] ?? 0, other: n[1] ?? 0 };
    },
    remove() {
      nft('delete table ip ulvsttl\n');
    },
  };
}

describe('kernel fast path', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const adm = (args: string) => {
    const r = spawnSync(process.execPath, [ULVSADM, ...args.split(' ')], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
    assert.equal(r.status, 0, `ulvsadm ${args}: ${r.stderr}`);
    return r.stdout;
  };
  before(async () => {
    // the engine's own offer (after 8 packets) is what this file tests: kernel connection set-up
    // (the default, whose connections are in the kernel from their SYN) is kernel-setup.test's
    bed = await new DirectorBed({ rules, realServers: 1, httpPort: 8080, ulvsdArgs: ['--sysctl', 'kernel_setup=0'] }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('200 MB each way arrive intact, almost all in the kernel, every byte in the IPVS counters', async () => {
    assert.match(bed.ulvsdLog, /fast path: established connections forwarded by a tc program/);
    const before = await bed.dump();
    downloadAndUpload(bed, 200e6, 60_000);
    const dump = await bed.dump();
    const reads = counter(dump, 'reads') - counter(before, 'reads');
    assert.ok(counter(dump, 'offloaded') - counter(before, 'offloaded') >= 2, 'both connections offloaded');
    // through user space alone this is > 6,000 GSO super-packets plus the ACKs (transfer.test.ts)
    assert.ok(reads < 1000, `packets read by ulvsd for 400 MB: ${reads}`);
    const line = adm(`-L -n --stats --exact -t ${V}:80`).split('\n')[2]!;
    const [, , conns, inPkts, outPkts, inBytes, outBytes] = line.trim().split(/\s+/).map(Number);
    assert.equal(conns, 2, line);
    assert.ok(inBytes! > 200e6 && outBytes! > 200e6, `bytes counted: ${line}`);
    assert.ok(inPkts! > 1000 && outPkts! > 1000, `packets counted: ${line}`);
  });

  test('connections leave the fast path at their FIN, and IPVS sees them close', async () => {
    const dump = await bed.dump();
    assert.equal(counter(dump, 'fastpath_active'), 0);
    assert.equal(counter(dump, 'offload_withdrawn'), counter(dump, 'offloaded'));
    const conns = adm('-L -n -c').split('\n').filter((l) => l.startsWith('TCP'));
    assert.ok(conns.length >= 2, adm('-L -n -c'));
    for (const c of conns) assert.doesNotMatch(c, /ESTABLISHED/, 'closed connections are not ESTABLISHED');
  });

  test('a busy offloaded connection outlives a 2 s ESTABLISHED timeout (kernel activity restarts its timer)', async () => {
    adm('--set 2 120 300');
    try {
      const before = counter(await bed.dump(), 'offloaded');
      const [r] = await bed.clientAsync(['--streams', '4', '--duration', '5000', '--timeout', '3000']);
      assert.equal(r?.['ok'], true, JSON.stringify(r));
      assert.equal(r?.['failures'], 0);
      assert.equal(r?.['changedSocket'], 0, 'every stream kept its TCP connection');
      assert.ok(counter(await bed.dump(), 'offloaded') - before >= 4, 'the streams ran in the fast path');
    } finally {
      adm('--set 900 120 300');
    }
  });

  test('every packet reaches the real server with its TTL decremented once (fast path, and the tc way out of the TUN)', { skip: nftMissing }, async () => {
    const ttl = ttlCounters(bed.bed.realServers[0]!);
    try {
      const got = bed.client(['--requests', '5']); // short connections: every packet through ulvsd
      assert.equal(got.filter((x) => x['ok']).length, 5);
      const [get] = bed.client(['--get-bytes', String(20e6), '--timeout', '20000'], 0, 60_000); // its ACKs: the fast path
      assert.equal(get?.['ok'], true, JSON.stringify(get));
      const c = ttl.read();
      assert.ok(c.ttl63 > 100, `packets seen with TTL 63: ${c.ttl63}`);
      assert.equal(c.other, 0, 'no packet with another TTL (the client sends 64)');
    } finally {
      ttl.remove();
    }
  });

  test('with --fast-path off nothing is offloaded, and the TTL is the same', async () => {
    const plain = await new DirectorBed({ rules, realServers: 1, httpPort: 8080, ulvsdArgs: ['--fast-path', 'off'] }).start();
    let ttl: ReturnType<typeof ttlCounters> | undefined;
    try {
      if (!nftMissing) ttl = ttlCounters(plain.bed.realServers[0]!);
      assert.doesNotMatch(plain.ulvsdLog, /fast path/);
      const [get] = plain.client(['--get-bytes', String(20e6), '--timeout', '20000'], 0, 60_000);
      assert.equal(get?.['ok'], true, JSON.stringify(get));
      const dump = await plain.dump();
      assert.equal(counter(dump, 'offloaded'), 0);
      assert.ok(counter(dump, 'reads') > 300, 'every packet through user space');
      const c = ttl?.read();
      if (c) assert.ok(c.ttl63 > 100 && c.other === 0, JSON.stringify(c));
    } finally {
      ttl?.remove();
      await plain.stop();
    }
  });
});
