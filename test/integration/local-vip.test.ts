/**
 * A VIP that is a local address of the director (keepalived's VRRP puts it there): service
 * ports are captured by tc before the local stack (no reset even without a real server that
 * answers, no local socket sees them), other ports reach local sockets, pings are answered by
 * the director, NAT works, with the fast path (VIP on lo) and through the IP stack (VIP on the
 * outside interface, --fast-path off: the replies with a local source cross the stack's input).
 * The VIP may appear and disappear while ulvsd runs. Controls: with ulvsd stopped, or with
 * --capture rules and the VIP added later (a warning), the local stack resets the same probes
 * (so they can fail); --capture rules refuses a local VIP at start.
 *
 * Services: VIP:80 -> rs1, rs2 :8080 (HTTP); VIP:81 -> 192.0.2.99:8080, an address nobody has
 * (the SYN is forwarded into an unanswered ARP: silence, never a reset).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { DirectorBed, waitFor } from '../../src/lab/director-bed.js';
import { LAB, type TestBed } from '../../src/lab/testbed.js';
import { CommandError, run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { LISTENER, ping, strayAck, tcpConnect } from '../support/probes.js';
import { SCRIPTS } from '../../src/lab/director-bed.js';

const V = LAB.VIP;
const rules = [`-A -t ${V}:80 -s rr`, `-a -t ${V}:80 -r ${LAB.realServer(0)}:8080 -m`, `-a -t ${V}:80 -r ${LAB.realServer(1)}:8080 -m`, `-A -t ${V}:81 -s rr`, `-a -t ${V}:81 -r 192.0.2.99:8080 -m`, ''].join('\n');
const vipOn = (dev: string) => (b: TestBed) => b.ip(b.director, ['addr', 'add', `${V}/32`, 'dev', dev]);

/** A local listener on VIP:2222 in the director namespace (binds with ip_nonlocal_bind off: the VIP must be local). */
async function listen(bed: DirectorBed, port = 2222): Promise<ChildProcess> {
  const p = spawn('ip', ['netns', 'exec', bed.bed.director, process.execPath, '-e', LISTENER(V, port, 'director')], { stdio: ['ignore', 'pipe', 'pipe'] });
  bed.procs.push(p);
  await waitFor(p, /listening/);
  return p;
}

/** A probe of VIP:81 that met no reset: silence while the director resolves 192.0.2.99, then the
 *  director's own "host unreachable" (it routes to an address nobody has), never `refused`. */
const notReset = (r: string, msg: string) => assert.ok(r === 'timeout' || r === 'EHOSTUNREACH', `${msg}: ${r}`);

/** The checks every local-VIP set-up must pass. */
async function localVipWorks(bed: DirectorBed): Promise<void> {
  const c = bed.bed.clients[0]!;
  const r = bed.client(['--requests', '6']);
  assert.equal(r.filter((x) => x['ok']).length, 6, JSON.stringify(r));
  assert.deepEqual(new Set(r.map((x) => x['server'])), new Set(['rs1', 'rs2']), 'NAT to both real servers');
  notReset(tcpConnect(c, V, 81), 'a service port whose server never answers: no reset from the director');
  assert.equal(strayAck(c, LAB.client(0), V, 81), 'rst', 'a stray ACK to a local VIP reaches the host stack, which resets it (as under IPVS)');
  assert.equal(tcpConnect(c, V, 2222), 'connected director', 'another port of the VIP reaches the local listener');
  assert.equal(tcpConnect(c, V, 2223), 'refused', 'a port nobody serves is reset by the local stack');
  assert.equal(ping(c, V), 'reply', 'the director answers pings to the VIP');
}

describe('local VIP', { skip: needsRoot }, () => {
  describe('on lo at start (fast path on)', () => {
    let bed: DirectorBed;
    before(async () => {
      bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080, beforeDirector: vipOn('lo') }).start();
      await listen(bed);
    });
    after(async () => {
      await bed?.stop();
    });

    test('ulvsd starts and says the VIP is local', async () => {
      await bed.logged(/VIP 203\.0\.113\.10 is a local address: its service ports are captured by tc/);
    });

    test('NAT, no reset on service ports, local listener, ping, stray ACK reset', () => localVipWorks(bed));

    test('established connections go through the kernel fast path (replies rewritten to the local VIP)', async () => {
      const counter = (dump: string, name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(dump)?.[1] ?? 0);
      const before = await bed.dump();
      const r = bed.client(['--get-bytes', String(50e6)]);
      assert.equal(r[0]?.['ok'], true, JSON.stringify(r));
      const dump = await bed.dump();
      const inKernel = counter(dump, 'offloaded') - counter(before, 'offloaded') + counter(dump, 'kernel_opened') - counter(before, 'kernel_opened');
      assert.ok(inKernel >= 1, 'the connection was offloaded (by the engine, or set up by the kernel from its SYN)');
      const reads = counter(dump, 'reads') - counter(before, 'reads');
      assert.ok(reads < 1000, `packets read by ulvsd for 50 MB: ${reads} (the kernel forwarded the rest)`);
    });

    test('control: without ulvsd the same probes meet the local stack (reset)', async () => {
      assert.equal(await bed.stopDirector(), 0);
      const c = bed.bed.clients[0]!;
      assert.equal(tcpConnect(c, V, 81), 'refused', 'the service port is reset by the local stack');
      assert.equal(tcpConnect(c, V, 80), 'refused');
      await bed.startDirector();
      notReset(tcpConnect(c, V, 81), 'captured again');
    });

    test('control: --capture rules refuses a local VIP (the local table would win)', () => {
      let err: CommandError | undefined;
      try {
        run(['ip', 'netns', 'exec', bed.bed.director, process.execPath, SCRIPTS.ulvsd, '--rules', bed.rulesFile, '--socket', `${bed.dir}/other.sock`, '--dev', 'ulvs9', '--pref', '4300', '--table', '4300', '--capture', 'rules']);
      } catch (e) {
        err = e as CommandError;
      }
      assert.ok(err, 'ulvsd refused');
      assert.equal(err.status, 2, 'the rules are refused, as a configuration this host cannot serve');
      assert.match(err.stderr, /VIP 203\.0\.113\.10 is a local address here and service traffic is not captured by tc .* a local VIP needs --capture tc/);
    });
  });

  describe('on the outside interface (--fast-path off: replies with a local source cross the IP stack)', () => {
    let bed: DirectorBed;
    before(async () => {
      bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080, beforeDirector: vipOn('pubbr'), ulvsdArgs: ['--fast-path', 'off'] }).start();
      await listen(bed);
    });
    after(async () => {
      await bed?.stop();
    });

    test('NAT, no reset on service ports, local listener, ping, stray ACK reset', () => localVipWorks(bed));
  });

  describe('control: --capture rules, VIP added after start', () => {
    let bed: DirectorBed;
    before(async () => {
      bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080, ulvsdArgs: ['--capture', 'rules'] }).start();
    });
    after(async () => {
      await bed?.stop();
    });

    test('ulvsd warns, and the local stack answers the service ports with a reset (what the capture prevents)', async () => {
      const c = bed.bed.clients[0]!;
      assert.equal(bed.client(['--requests', '2']).filter((x) => x['ok']).length, 2, 'served while the VIP is not local');
      vipOn('lo')(bed.bed);
      await bed.logged(/VIP 203\.0\.113\.10 became a local address, but service traffic is not captured by tc/, 6000);
      assert.equal(tcpConnect(c, V, 81), 'refused', 'the local table delivered the SYN to the local stack');
      assert.ok(bed.ulvsd!.exitCode === null, 'ulvsd still runs');
    });
  });

  describe('added after start and removed while traffic runs', () => {
    let bed: DirectorBed;
    before(async () => {
      bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080 }).start();
    });
    after(async () => {
      await bed?.stop();
    });

    test('requests keep succeeding across both changes; stray TCP is reset only while the VIP is local', async () => {
      const c = bed.bed.clients[0]!;
      assert.equal(strayAck(c, LAB.client(0), V, 80), 'none', 'not local: a stray ACK is dropped');
      const traffic = bed.clientAsync(['--streams', '4', '--duration', '9000']);
      await new Promise((r) => setTimeout(r, 1000));
      vipOn('lo')(bed.bed);
      await bed.logged(/VIP 203\.0\.113\.10 is a local address/, 6000);
      const during = bed.client(['--requests', '4']);
      assert.equal(during.filter((x) => x['ok']).length, 4, JSON.stringify(during));
      notReset(tcpConnect(c, V, 81), 'service ports captured, no reset');
      // the probe sends one ACK; on a loaded machine give it three tries, as a client would resend
      let stray = strayAck(c, LAB.client(0), V, 80);
      for (let i = 0; i < 2 && stray !== 'rst'; i++) stray = strayAck(c, LAB.client(0), V, 80);
      assert.equal(stray, 'rst', 'local now: the host stack resets a stray ACK');
      await listen(bed);
      assert.equal(tcpConnect(c, V, 2222), 'connected director');
      assert.equal(ping(c, V), 'reply');
      bed.bed.ip(bed.bed.director, ['addr', 'del', `${V}/32`, 'dev', 'lo']);
      await bed.logged(/VIP 203\.0\.113\.10 is no longer a local address/, 6000);
      const afterwards = bed.client(['--requests', '4']);
      assert.equal(afterwards.filter((x) => x['ok']).length, 4, JSON.stringify(afterwards));
      assert.equal(strayAck(c, LAB.client(0), V, 80), 'none', 'not local again: dropped');
      const t = await traffic;
      const failed = t.filter((x) => x['ok'] === false || (Number(x['failures']) || 0) > 0);
      assert.equal(failed.length, 0, `streams kept working through both changes: ${JSON.stringify(t)}`);
      assert.ok(bed.ulvsd!.exitCode === null, 'ulvsd still runs');
    });
  });
});
