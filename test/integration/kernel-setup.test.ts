/**
 * Kernel connection set-up under real traffic (docs/kernel-setup.md): short HTTP connections to
 * an rr service are scheduled, set up and closed by the fast path, the engine learning of each
 * from its ring, and IPVS's view stays exact. The oracle is the network itself: nftables
 * counters in the real servers' namespaces (every packet the director forwarded to them) and in
 * the client's (every packet it forwarded back) must equal ipvsadm's inpkts/outpkts and bytes.
 * Each check runs twice on one ulvsd: kernel set-up on (`--sysctl kernel_setup=1`), then off at run time
 * (`--sysctl kernel_setup=0`, the control: the same connections through the engine, its reads
 * count every packet) and per service (`-b ulvs-exact`). Quiescing a server reaches the kernel's
 * table: no new connection goes to it.
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

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const RS = [0, 1, 2].map((i) => LAB.realServer(i));
const rules = `-A -t ${V}:80 -s rr\n` + RS.map((r) => `-a -t ${V}:80 -r ${r}:8080 -m\n`).join('');
const counter = (dump: string, name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(dump)?.[1] ?? 0);
const nftMissing = ['/usr/sbin/nft', '/usr/bin/nft'].some((f) => existsSync(f)) ? false : 'needs nft (apt nftables; .ci/run installs it)';
const N = 240;

/** An nftables counter of `match` in namespace `ns`'s input hook: packets and bytes (IP lengths, as IPVS counts). */
function nftCounter(ns: string, match: string): { read(): { packets: number; bytes: number }; remove(): void } {
  const nft = (script: string) => run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], script);
  nft(`table ip ulvsks {\n chain seen {\n  type filter hook input priority 0;\n  ${match} counter\n }\n}\n`);
  return {
    read() {
      const m = /packets (\d+) bytes (\d+)/.exec(run(['ip', 'netns', 'exec', ns, 'nft', 'list', 'table', 'ip', 'ulvsks']));
      return { packets: Number(m?.[1] ?? 0), bytes: Number(m?.[2] ?? 0) };
    },
    remove() {
      nft('delete table ip ulvsks\n');
    },
  };
}

describe('kernel connection set-up', { skip: needsRoot || nftMissing }, () => {
  let bed: DirectorBed;
  const adm = (args: string) => {
    const r = spawnSync(process.execPath, [ULVSADM, ...args.split(' ')], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
    assert.equal(r.status, 0, `ulvsadm ${args}: ${r.stderr}`);
    return r.stdout;
  };
  /** the service's and each server's stats: conns, inpkts, outpkts, inbytes, outbytes */
  const stats = () => {
    const lines = adm(`-L -n --stats --exact -t ${V}:80`).split('\n').filter((l) => /^(TCP|  ->)\s+\d/.test(l));
    return lines.map((l) => l.trim().split(/\s+/).slice(-5).map(Number));
  };
  const diff = (a: number[][], b: number[][]) => a.map((row, i) => row.map((x, j) => x - b[i]![j]!));

  /** N sequential requests; returns what ulvsd counted and what the network saw. */
  const round = async () => {
    const toServers = bed.bed.realServers.map((ns) => nftCounter(ns, 'tcp dport 8080'));
    const toClient = nftCounter(bed.bed.clients[0]!, `ip saddr ${V} tcp sport 80`);
    try {
      const d0 = await bed.dump();
      const s0 = stats();
      const got = bed.client(['--requests', String(N)]);
      assert.equal(got.filter((x) => x['ok']).length, N, JSON.stringify(got.filter((x) => !x['ok']).slice(0, 3)));
      await new Promise((r) => setTimeout(r, 300)); // the last ACKs
      const d1 = await bed.dump(); // harvests the kernel's counts, reads the rings
      const s = diff(stats(), s0);
      const servers = toServers.map((c) => c.read());
      const client = toClient.read();
      const delta = (name: string) => counter(d1, name) - counter(d0, name);
      return { s, servers, client, made: delta('ksetup_made'), reads: delta('reads'), opened: delta('kernel_opened'), orphans: delta('kernel_orphans'), unknown: delta('kernel_unknown_segments'), held: counter(d1, 'fastpath_kernel_slots_held') - counter(d1, 'fastpath_kernel_slots_returned') };
    } finally {
      for (const c of [...toServers, toClient]) c.remove();
    }
  };
  /** ipvsadm's counters equal the network's: per server inpkts/inbytes, the service's outpkts/outbytes */
  const assertExact = (r: Awaited<ReturnType<typeof round>>) => {
    const [svc, ...dests] = r.s;
    assert.equal(svc![0], N, 'connections');
    dests.forEach((d, i) => {
      assert.equal(d[1], r.servers[i]!.packets, `server ${i + 1} inpkts = packets it received`);
      assert.equal(d[3], r.servers[i]!.bytes, `server ${i + 1} inbytes = bytes it received`);
    });
    assert.equal(svc![2], r.client.packets, 'outpkts = packets the client received from the VIP');
    assert.equal(svc![4], r.client.bytes, 'outbytes = bytes the client received from the VIP');
  };

  before(async () => {
    bed = await new DirectorBed({ rules, realServers: 3, httpPort: 8080, ulvsdArgs: ['--sysctl', 'kernel_setup=1'] }).start();
    bed.client(['--requests', '6']); // the neighbours resolved (the kernel's route lookup needs them)
  });
  after(async () => {
    await bed?.stop();
  });

  test('kernel set-up (--sysctl kernel_setup=1): the fast path makes the connections, ulvsd reads almost nothing, IPVS counts every packet', async () => {
    const r = await round();
    assert.ok(r.made >= N - 3, `connections set up by the kernel: ${r.made} of ${N}`);
    assert.equal(r.opened, r.made, 'each one reported and opened by the engine');
    assert.equal(r.orphans, 0);
    assert.equal(r.unknown, 0);
    assert.ok(r.reads < N, `packets read from the TUN: ${r.reads}`);
    // finished connections (TIME_WAIT) stay listed but give their kernel slots back: held without
    // that, the slots of 120 s of connections would run out at a few thousand connections/s
    assert.ok(r.held <= 3, `kernel slots still held after ${N} closed connections: ${r.held}`);
    assertExact(r);
    // rr with a cursor per CPU: each CPU's sequence is exact, so no server is off by more than the CPUs
    for (const d of r.s.slice(1)) assert.ok(Math.abs(d[0]! - N / 3) <= 2, `rr share: ${r.s.map((x) => x[0]).join(' ')}`);
    const conns = adm('-L -n -c').split('\n').filter((l) => l.startsWith('TCP'));
    assert.ok(conns.length >= N, 'the listing shows them');
  });

  test('control: kernel_setup=0 at run time: the same connections through the engine (every packet read), the same exact counts', async () => {
    adm('--sysctl kernel_setup=0');
    try {
      const r = await round();
      assert.equal(r.made, 0, 'nothing set up by the kernel');
      assert.ok(r.reads >= 5 * N, `packets read from the TUN: ${r.reads}`);
      assertExact(r);
    } finally {
      adm('--sysctl kernel_setup=1');
    }
  });

  test('per service: -b ulvs-exact keeps the service on the engine; without it again, back in the kernel', async () => {
    adm(`-E -t ${V}:80 -s rr -b ulvs-exact`);
    try {
      const r = await round();
      assert.equal(r.made, 0);
      assertExact(r);
    } finally {
      adm(`-E -t ${V}:80 -s rr`);
    }
    await new Promise((res) => setTimeout(res, 200)); // the table's grace period (50 ms) and publication
    const r = await round();
    assert.ok(r.made >= N - 3, `set up by the kernel again: ${r.made}`);
  });

  test('a quiesced server (weight 0) gets no new connection from the kernel; weight back: it does', async () => {
    adm(`-e -t ${V}:80 -r ${RS[0]}:8080 -m -w 0`);
    try {
      await new Promise((res) => setTimeout(res, 200));
      const r = await round();
      assert.equal(r.s[1]![0], 0, `server 1 got ${r.s[1]![0]} connections while quiesced`);
      assert.ok(r.made >= N - 3, `still set up by the kernel: ${r.made}`);
      assertExact(r);
    } finally {
      adm(`-e -t ${V}:80 -r ${RS[0]}:8080 -m -w 1`);
    }
    await new Promise((res) => setTimeout(res, 200));
    const r = await round();
    assert.ok(r.s[1]![0]! > N / 4, 'server 1 back in the rotation');
  });

  // A killed ulvsd must not leave the kernel making connections no engine hears of: keepalived's
  // track_process gives the VIP up only when new connections fail (vrrp-pair.test.ts). The workers
  // beat into ulvs_kalive; a SYN whose owner has not beaten within --kernel-setup-alive-ms (250)
  // is not set up. Last in the file: it kills ulvsd twice.
  test('kill -9 of ulvsd: 600 ms later the kernel sets up no new connection; control: with --kernel-setup-alive-ms 0 it goes on making them', async () => {
    const answered = () => bed.client(['--requests', '5', '--timeout', '1500']).filter((x) => x['ok']).length;
    const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
    /** 5 requests answered, at least 4 of them set up by the kernel */
    const madeByKernel = async (what: string) => {
      const d = await bed.dump();
      assert.equal(answered(), 5);
      assert.ok(counter(await bed.dump(), 'ksetup_made') - counter(d, 'ksetup_made') >= 4, what);
    };
    const args = bed.o.ulvsdArgs;
    try {
      await madeByKernel('the kernel made them while ulvsd ran');
      await bed.stopDirector('SIGKILL');
      await sleep(600);
      const dead = answered();
      bed.o.ulvsdArgs = [...(args ?? []), '--kernel-setup-alive-ms', '0'];
      await bed.startDirector();
      await sleep(300); // the tables published
      await madeByKernel('control: made by the kernel');
      await bed.stopDirector('SIGKILL');
      await sleep(600);
      const undead = answered();
      assert.equal(dead, 0, 'with the check: no connection answered through the VIP of a dead ulvsd');
      assert.equal(undead, 5, 'control, without the check: the kernel went on making connections for a dead ulvsd');
    } finally {
      bed.o.ulvsdArgs = args;
    }
  });
});
