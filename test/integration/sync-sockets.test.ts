/**
 * The sync daemon's sockets in network namespaces (daemon/sync-socket.ts, sync-daemon.ts), the
 * kernel's make_send_sock / make_receive_sock options and the sysctls that shape them:
 *
 *   A (hCa0 198.51.100.1) ---- (hCb0 198.51.100.2) B (hCb1 203.0.113.2) ---- (hCc1 203.0.113.1) C
 *
 * B runs a backup on hCb0 with sync_ports 2 and sync_sock_size 100000; A a master on hCa0 with
 * sync_ports 2 whose workers 0 and 1 send 3 datagrams each (-> ports 8848 and 8849) and one of
 * 3000 bytes (over the 1500-byte MTU: fragmented, IP_PMTUDISC_DONT); C a master on hCc1 whose 5
 * datagrams reach B on hCb1, where another socket has joined the group.
 *   - the backup gets A's 7 datagrams on its two ports and none of C's (SO_BINDTODEVICE hCb0);
 *     control: a socket made as ulvs made it before (dgram, bound to group:8848, joined on hCb0's
 *     address, no device) in the same namespace gets C's 5 as well as A's 4 on port 8848; and a
 *     backup with sync_ports 1 gets only A's 4 on port 8848.
 *   - the kernel holds: master IP_MTU_DISCOVER 0 (DONT; control: a plain UDP socket there has 1,
 *     WANT), SO_SNDBUF / SO_RCVBUF 2 x sync_sock_size (capped by wmem_max/rmem_max), the backup
 *     bound to hCb0.
 *   - sync_qlen_max: 50 datagrams sent at once with sync_qlen_max 1 -> 1 sent, 49 dropped and
 *     counted; control: with 1000, 50 sent, none dropped.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { needsRoot } from '../support/root.js';

const PROBE = fileURLToPath(new URL('../support/sync-socket-probe.js', import.meta.url));
const P = `hC-${randomBytes(2).toString('hex')}`;
const NS = { a: `${P}-a`, b: `${P}-b`, c: `${P}-c` };

function sh(argv: string[]): string {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', timeout: 15_000 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface ProbeResult {
  options: { pmtudisc: number; sndbuf: number; rcvbuf: number; device: string }[];
  counters: Record<string, number>;
  plainReceived: number;
}
interface ProbeArgs {
  role: 'master' | 'backup';
  iface: string;
  ports: number;
  sockSize?: number;
  qlenMax?: number;
  sends?: { worker: number; size: number; count: number }[];
  listenMs?: number;
  plain?: boolean;
  joinOn?: string;
}

/** Start the probe in `ns`; `started` resolves once its sockets are open, `done` with its result. */
function probe(ns: string, a: ProbeArgs): { started: Promise<void>; done: Promise<ProbeResult> } {
  const args = { sockSize: 0, qlenMax: 1000, listenMs: 300, ...a };
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, PROBE, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  let onStart: () => void = () => undefined;
  const started = new Promise<void>((r) => (onStart = r));
  p.stdout.on('data', (d: Buffer) => {
    out += d.toString();
    if (out.includes('started\n')) onStart();
  });
  p.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const done = new Promise<ProbeResult>((resolve, reject) => {
    p.on('exit', (code) => {
      if (code !== 0) return reject(new Error(`probe in ${ns} exited ${code}: ${err}`));
      resolve(JSON.parse(out.trim().split('\n').pop()!) as ProbeResult);
    });
  });
  return { started: Promise.race([started, done.then(() => undefined)]), done };
}

describe('sync daemon sockets: sync_ports, sync_sock_size, sync_qlen_max, PMTU discovery off, bound to the device', { skip: needsRoot }, () => {
  before(() => {
    for (const ns of Object.values(NS)) {
      sh(['ip', 'netns', 'add', ns]);
      sh(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
    }
    sh(['ip', 'link', 'add', 'name', 'hCa0', 'netns', NS.a, 'type', 'veth', 'peer', 'name', 'hCb0', 'netns', NS.b]);
    sh(['ip', 'link', 'add', 'name', 'hCc1', 'netns', NS.c, 'type', 'veth', 'peer', 'name', 'hCb1', 'netns', NS.b]);
    const addr = (ns: string, dev: string, a: string) => {
      sh(['ip', '-n', ns, 'addr', 'add', a, 'dev', dev]);
      sh(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    };
    addr(NS.a, 'hCa0', '198.51.100.1/24');
    addr(NS.b, 'hCb0', '198.51.100.2/24');
    addr(NS.b, 'hCb1', '203.0.113.2/24');
    addr(NS.c, 'hCc1', '203.0.113.1/24');
  });
  after(() => {
    for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns]);
  });

  test('sync_ports 2, SO_BINDTODEVICE, buffer sizes, PMTU discovery off', async () => {
    const backup = probe(NS.b, { role: 'backup', iface: 'hCb0', ports: 2, sockSize: 100000, plain: true, joinOn: 'hCb1', listenMs: 6000 });
    const narrow = probe(NS.b, { role: 'backup', iface: 'hCb0', ports: 1, listenMs: 6000 });
    await Promise.all([backup.started, narrow.started]);
    const a = probe(NS.a, { role: 'master', iface: 'hCa0', ports: 2, sockSize: 100000, sends: [{ worker: 0, size: 100, count: 3 }, { worker: 1, size: 100, count: 3 }, { worker: 0, size: 3000, count: 1 }] });
    const c = probe(NS.c, { role: 'master', iface: 'hCc1', ports: 1, sends: [{ worker: 0, size: 100, count: 5 }] });
    const [b, n, ma, mc] = await Promise.all([backup.done, narrow.done, a.done, c.done]);
    assert.equal(ma.counters['sync_daemon_tx_datagrams'], 7);
    assert.equal(mc.counters['sync_daemon_tx_datagrams'], 5);
    assert.equal(b.counters['sync_daemon_rx_datagrams'], 7, 'A\'s 7 on ports 8848 and 8849, none of C\'s (another interface)');
    assert.equal(b.counters['sync_daemon_rx_bytes'], 6 * 100 + 3000, 'the 3000-byte datagram arrived whole (fragmented on the way)');
    assert.equal(b.plainReceived, 4 + 5, 'control: a socket without the device filter gets C\'s datagrams too');
    assert.equal(n.counters['sync_daemon_rx_datagrams'], 4, 'control: sync_ports 1 listens on 8848 only');
    // what the kernel holds for the sockets
    const wmem = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
    const rmem = Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
    assert.equal(ma.options.length, 2);
    for (const o of ma.options) {
      assert.equal(o.pmtudisc, 0, 'IP_PMTUDISC_DONT');
      assert.equal(o.sndbuf, 2 * Math.min(100000, wmem));
      assert.equal(o.device, '', 'a master is not bound to its device (make_send_sock)');
    }
    assert.equal(b.options.length, 2);
    for (const o of b.options) {
      assert.equal(o.device, 'hCb0');
      assert.equal(o.rcvbuf, 2 * Math.min(100000, rmem));
    }
    // control: the kernel's default for a UDP socket is IP_PMTUDISC_WANT (1), DF set
    assert.equal(sh(['ip', 'netns', 'exec', NS.a, 'python3', '-c', 'import socket; print(socket.socket(2, 2).getsockopt(0, 10))']).trim(), '1');
    // control: sync_sock_size 0 leaves the system's default (net.core.wmem_default doubled is not it)
    assert.notEqual(mc.options[0]!.sndbuf, 2 * 100000);
  });

  test('sync_qlen_max: beyond it datagrams are dropped and counted; control: a larger queue sends them all', async () => {
    const one = await probe(NS.a, { role: 'master', iface: 'hCa0', ports: 1, qlenMax: 1, sends: [{ worker: 0, size: 100, count: 50 }] }).done;
    assert.equal(one.counters['sync_daemon_tx_datagrams'], 1);
    assert.equal(one.counters['sync_daemon_tx_dropped_queue'], 49);
    const big = await probe(NS.a, { role: 'master', iface: 'hCa0', ports: 1, qlenMax: 1000, sends: [{ worker: 0, size: 100, count: 50 }] }).done;
    assert.equal(big.counters['sync_daemon_tx_datagrams'], 50);
    assert.equal(big.counters['sync_daemon_tx_dropped_queue'], 0);
  });
});
