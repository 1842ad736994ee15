/**
 * A data-path worker: owns one TUN queue and a Director, and loops
 *   read one packet (virtio_net_hdr + IPv4) -> process() -> write it back / write ICMP / drop
 * with non-blocking reads, poll(2) when idle, one preallocated buffer, nothing allocated per
 * packet. Control messages (apply operations, snapshot, stop) arrive on a MessagePort that the loop
 * polls between batches with receiveMessageOnPort, so control work never runs inside a batch.
 *
 * Pass verdicts are written back unchanged (IPVS's "ACCEPT": the kernel routes them; the
 * `iif <tun> lookup main` rule stops them from coming back), except TCP segments to a service
 * without a connection, which the kernel would answer from a local VIP; ulvs has none, so they
 * are dropped and counted (pass_no_conn).
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { Director, type Timeouts } from '../../core/director.js';
import type { ServiceKey } from '../../core/service.js';
import { applyOps, type RuleOp } from '../../core/ops.js';
import { Outcome, PacketFlag, Verdict } from '../../core/verdict.js';
import { defaultRegistry } from '../../sched/index.js';
import { VNET_HDR_LEN, vnetGsoType, vnetNeedsCsum } from '../../wire/virtio.js';
import { EAGAIN, EINTR, POLLIN, sys } from './sys.js';

export interface WorkerInit {
  fd: number;
  control: MessagePort;
  seed: number;
  maxConns: number;
  /** the initial configuration, as operations on an empty director */
  ops: RuleOp[];
}

/** Requests from the control plane; each is answered with {type: 'reply', id, result | error}. */
export type ControlMessage =
  | { type: 'stop' }
  | { type: 'call'; id: number; call: 'apply'; args: [RuleOp[]] }
  | { type: 'call'; id: number; call: 'snapshot' | 'connections' | 'timeouts' | 'counters'; args: [] }
  | { type: 'call'; id: number; call: 'setTimeouts'; args: [Partial<Timeouts>] }
  | { type: 'call'; id: number; call: 'zero'; args: [ServiceKey?] };

const init = workerData as WorkerInit;
const port = init.control;
const d = new Director({ schedulers: defaultRegistry(), seed: init.seed, maxConns: init.maxConns });
applyOps(d, init.ops);

/** Data-path counters (the engine's own counters are in d.counters()). */
const dp = { reads: 0, writes: 0, write_errors: 0, gso_packets: 0, csum_partial: 0, dropped_pass_no_conn: 0, read_errors: 0, oversize: 0 };

const SLOT = (1 << 16) + 512; // a GSO super-packet (<= 64 KiB) plus the virtio header
const buf = Buffer.alloc(SLOT);
const icmpBuf = Buffer.alloc(VNET_HDR_LEN + 576); // zero virtio header + generated ICMP
const pfd = Buffer.alloc(8); // struct pollfd
pfd.writeInt32LE(init.fd, 0);
pfd.writeInt16LE(POLLIN, 4);
const BATCH = 64;

function handle(n: number, now: number): void {
  dp.reads++;
  if (n < VNET_HDR_LEN + 20) return;
  const partial = vnetNeedsCsum(buf, 0);
  if (partial) dp.csum_partial++;
  if (vnetGsoType(buf, 0) !== 0) dp.gso_packets++;
  const v = d.process(buf, VNET_HDR_LEN, n - VNET_HDR_LEN, now, partial ? PacketFlag.CsumPartial : 0);
  if (v === Verdict.Forward) write(buf, n);
  else if (v === Verdict.Icmp) {
    d.icmpOut.copy(icmpBuf, VNET_HDR_LEN, 0, d.icmpLen);
    write(icmpBuf, VNET_HDR_LEN + d.icmpLen);
  } else if (v === Verdict.Pass) {
    if (d.lastOutcome === Outcome.PassNoConn) dp.dropped_pass_no_conn++;
    else write(buf, n);
  }
}

function write(b: Buffer, n: number): void {
  if (sys.write(init.fd, b, n) === n) dp.writes++;
  else dp.write_errors++;
}

function call(msg: Extract<ControlMessage, { type: 'call' }>, now: number): unknown {
  switch (msg.call) {
    case 'apply':
      applyOps(d, msg.args[0]);
      return null;
    case 'snapshot':
      return d.snapshot();
    case 'connections':
      return d.connections(now);
    case 'timeouts':
      return d.timeouts;
    case 'setTimeouts':
      d.setTimeouts(msg.args[0]);
      return null;
    case 'zero':
      d.zero(msg.args[0]);
      return null;
    case 'counters':
      return { engine: d.counters(), datapath: { ...dp } };
  }
}

function control(now: number): boolean {
  for (;;) {
    const m = receiveMessageOnPort(port);
    if (m === undefined) return true;
    const msg = m.message as ControlMessage;
    if (msg.type === 'stop') return false;
    if (msg.type !== 'call') continue;
    try {
      port.postMessage({ type: 'reply', id: msg.id, result: call(msg, now) });
    } catch (e) {
      // validation happened in the control plane; errors here are reported, never partial
      port.postMessage({ type: 'reply', id: msg.id, error: { code: (e as { code?: string }).code ?? 'internal', message: (e as Error).message } });
    }
  }
}

let lastTick = 0;
let running = true;
port.postMessage({ type: 'ready' });
while (running) {
  let now = Math.floor(performance.now());
  for (let k = 0; k < BATCH; k++) {
    const n = sys.read(init.fd, buf, SLOT);
    if (n > 0) {
      handle(n, now);
      continue;
    }
    const e = sys.errno();
    if (n < 0 && e !== EAGAIN && e !== EINTR) {
      dp.read_errors++;
      port.postMessage({ type: 'error', message: `read: ${sys.strerror(e)}` });
      running = false;
    } else sys.poll(pfd, 1, 20);
    break;
  }
  now = Math.floor(performance.now());
  if (now - lastTick >= 100) {
    d.tick(now);
    lastTick = now;
  }
  if (!control(now)) running = false;
}
port.postMessage({ type: 'stopped', engine: d.counters(), datapath: dp });
port.close();
