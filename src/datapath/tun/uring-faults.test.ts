/**
 * The real data-path worker (worker.js, its io_uring loop uring-loop.ts) in a worker thread,
 * without root: its "TUN queue" is one end of a SOCK_SEQPACKET socket pair (one packet per
 * message, readable by a multishot read, written back to the same end); the test writes UDP
 * packets for a masqueraded service into the other end and reads what the worker sends back.
 * io_uring_enter failures cannot be caused for real on demand (EAGAIN and ENOMEM need the
 * kernel out of memory), so they are injected (WorkerInit.uringFault: the first N enters fail
 * with an errno, as the kernel would answer) — which is the part that is not real here.
 *   - EAGAIN for 50 enters: retried, counted (uring_enter_retries 50), still on io_uring, forwarding;
 *   - EAGAIN for ever: after 1 s the worker falls back to read/write (`io` message, uring_fallbacks
 *     1) and goes on forwarding;
 *   - EINVAL once (the ring unusable): falls back at once, forwarding.
 * Control: each case asserts the packet sent after the fault comes back rewritten; before this
 * change any of these errors made the worker report `error` and stop reading its queue.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { libc } from './syscalls.js';
import { sys } from './sys.js';
import type { FromWorker, WorkerInit } from './worker-protocol.js';
import { ipv4 } from '../../wire/build.js';
import { VNET_HDR_LEN } from '../../wire/virtio.js';
import { EAGAIN, EINVAL } from './syscalls.js';
import { Fwd } from '../../core/service.js';

const socketpair = libc.func('int socketpair(int domain, int type, int protocol, _Out_ int *sv)') as (d: number, t: number, p: number, sv: Int32Array) => number;
const AF_UNIX = 1;
const SOCK_SEQPACKET = 5;
const SOCK_NONBLOCK = 0o4000;
const VIP = 0xcb00710a; // 203.0.113.10
const RIP = 0xc000020b; // 192.0.2.11
const WORKER = new URL('./worker.js', import.meta.url);

/** A worker on one end of a socket pair, with a UDP service VIP:53 -> RIP:5353 (masquerade). */
async function start(io: 'uring' | 'auto', fault: WorkerInit['uringFault']) {
  const sv = new Int32Array(2);
  assert.equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, sv), 0);
  const ch = new MessageChannel();
  const init: WorkerInit = {
    fd: sv[1]!,
    control: ch.port2,
    seed: 7,
    maxConns: 64,
    ops: [
      { op: 'addService', spec: { proto: 17, addr: VIP, port: 53, scheduler: 'rr' } },
      { op: 'addDest', service: { proto: 17, addr: VIP, port: 53 }, dest: { addr: RIP, port: 5353, fwd: Fwd.MASQ, weight: 1 } },
    ],
    io,
    busyPollUs: 0,
    localAddrs: [],
    sharedState: new Int32Array(new SharedArrayBuffer(1024)),
    ...(fault ? { uringFault: fault } : {}),
  };
  const w = new Worker(WORKER, { workerData: init, transferList: [ch.port2] });
  const msgs: FromWorker[] = [];
  ch.port1.on('message', (m: FromWorker) => msgs.push(m));
  const until = async (what: string, f: () => boolean, ms = 10_000) => {
    const t0 = Date.now();
    while (!f()) {
      if (Date.now() - t0 > ms) throw new Error(`${what} not within ${ms} ms: ${JSON.stringify(msgs)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await until('ready', () => msgs.some((m) => m.type === 'ready'));
  let id = 0;
  const counters = async (): Promise<Record<string, number>> => {
    const my = ++id;
    ch.port1.postMessage({ type: 'call', id: my, call: 'counters', args: [] });
    await until('counters', () => msgs.some((m) => m.type === 'reply' && m.id === my));
    const r = msgs.find((m) => m.type === 'reply' && m.id === my) as { result: { datapath: Record<string, number> } };
    return r.result.datapath;
  };
  /** Send one UDP packet to VIP:53 from port `sport`; resolve with the destination it comes back with. */
  const roundTrip = async (sport: number): Promise<string> => {
    const pkt = ipv4({ src: '198.51.100.2', dst: '203.0.113.10' }).udp({ sport, dport: 53 }).payload('hello').build();
    const out = Buffer.concat([Buffer.alloc(VNET_HDR_LEN), pkt]);
    assert.equal(sys.write(sv[0]!, out, out.length), out.length);
    const back = Buffer.alloc(2048);
    await until(`packet from port ${sport} back`, () => sys.read(sv[0]!, back, back.length) > 0);
    const ip = VNET_HDR_LEN;
    return `${back.subarray(ip + 16, ip + 20).join('.')}:${back.readUInt16BE(ip + 22)}`;
  };
  const stop = async () => {
    ch.port1.postMessage({ type: 'stop' });
    await until('stopped', () => msgs.some((m) => m.type === 'stopped'));
    await w.terminate();
    ch.port1.close();
    sys.close(sv[0]!);
    sys.close(sv[1]!);
  };
  return { msgs, counters, roundTrip, stop, until, port: ch.port1 as MessagePort };
}

test('io_uring_enter EAGAIN 50 times: retried and counted, the worker stays on io_uring and forwards', async () => {
  const w = await start('uring', { errno: EAGAIN, calls: 50 });
  try {
    assert.equal(await w.roundTrip(4000), '192.0.2.11:5353');
    const c = await w.counters();
    assert.equal(c['uring_enter_retries'], 50);
    assert.equal(c['uring_fallbacks'], 0);
    assert.ok(!w.msgs.some((m) => m.type === 'io' || m.type === 'error'), JSON.stringify(w.msgs));
  } finally {
    await w.stop();
  }
});

test('io_uring_enter EAGAIN for good: after 1 s the worker falls back to read/write and forwards', async () => {
  const w = await start('auto', { errno: EAGAIN, calls: 1e12 });
  try {
    await w.until('fallback', () => w.msgs.some((m) => m.type === 'io'));
    const io = w.msgs.find((m) => m.type === 'io') as { io: string; reason: string };
    assert.equal(io.io, 'syscalls');
    assert.match(io.reason, /failed while forwarding \(io_uring_enter: Resource temporarily unavailable\)/);
    assert.equal(await w.roundTrip(4001), '192.0.2.11:5353');
    const c = await w.counters();
    assert.equal(c['uring_fallbacks'], 1);
    assert.ok(c['uring_enter_retries']! > 0);
    assert.ok(!w.msgs.some((m) => m.type === 'error'));
  } finally {
    await w.stop();
  }
});

test('io_uring_enter EINVAL (ring unusable), even under --io uring: falls back at once and forwards', async () => {
  const w = await start('uring', { errno: EINVAL, calls: 1 });
  try {
    await w.until('fallback', () => w.msgs.some((m) => m.type === 'io'));
    assert.equal(await w.roundTrip(4002), '192.0.2.11:5353');
    const c = await w.counters();
    assert.equal(c['uring_fallbacks'], 1);
    assert.equal(c['uring_enter_retries'], 0);
  } finally {
    await w.stop();
  }
});
