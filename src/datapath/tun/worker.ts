/**
 * A data-path worker: owns one TUN queue and a Director, and loops
 *   read packets (virtio_net_hdr + IPv4) -> process() -> write them back / write ICMP / drop
 * with nothing allocated per packet. Two ways to move packets:
 *   io_uring (default where the kernel has multishot reads, 6.7+): the kernel reads packets into
 *     a ring of preallocated buffers; one io_uring_enter(2) per batch submits the batch's writes
 *     and collects the next packets (src/datapath/tun/uring.ts);
 *   syscalls: non-blocking read(2)/write(2) per packet, poll(2) when idle, one buffer.
 * Control messages (apply operations, snapshot, stop) arrive on a MessagePort that the loop
 * polls between batches with receiveMessageOnPort, so control work never runs inside a batch.
 *
 * With the kernel fast path (fastpath.ts), the engine offers established connections to it
 * through an Offloader (offload.ts): queued map changes are flushed after each batch, before the
 * batch's writes go out, and the kernel's counts are folded into the engine every 0.5 s and
 * before any listing, reset or configuration change.
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
import { POLLIN, sys } from './sys.js';
import { EAGAIN, EINTR, EINVAL, ENOBUFS } from './syscalls.js';
import { Offloader, type OffloaderInit } from './offload.js';
import { BufferRing, IORING_CQE_BUFFER_SHIFT, IORING_CQE_F_BUFFER, IORING_CQE_F_MORE, Uring } from './uring.js';

export interface WorkerInit {
  fd: number;
  control: MessagePort;
  seed: number;
  maxConns: number;
  /** the initial configuration, as operations on an empty director */
  ops: RuleOp[];
  /** microseconds to keep polling after the last packet before sleeping (io_uring only) */
  busyPollUs: number;
  /** scheduler state shared by every worker's engine (rr/wrr cursors; core/sched-state.ts) */
  sharedState: Int32Array;
  /** 'auto' (io_uring where the kernel can, else syscalls), 'uring' or 'syscalls' (see above) */
  io: 'auto' | 'uring' | 'syscalls';
  /** the kernel fast path's maps and this worker's slots (fastpath.ts, offload.ts), if enabled */
  fastPath?: OffloaderInit & { after: number };
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
let offloader = null as Offloader | null; // set by the Director when it builds its port
const fastPath = init.fastPath;
const d = new Director({
  schedulers: defaultRegistry(),
  seed: init.seed,
  maxConns: init.maxConns,
  sharedState: init.sharedState,
  ...(fastPath && { offload: { port: (conns) => (offloader = new Offloader(conns, fastPath)), after: fastPath.after } }),
});
applyOps(d, init.ops);
/** the fast path's counters, named fastpath_* among the data-path counters */
function fastPathCounters(): Record<string, number> {
  if (offloader === null) return {};
  const out: Record<string, number> = { fastpath_active: offloader.active };
  for (const [k, v] of Object.entries(offloader.counters)) out[`fastpath_${k}`] = v;
  return out;
}
/** how often the fast path's counts are folded into the engine (and before any listing), ms */
const HARVEST_MS = 500;
let lastHarvest = 0;
function harvest(now: number): void {
  if (offloader === null) return;
  offloader.harvest(d);
  lastHarvest = now;
}

/** Data-path counters (the engine's own counters are in d.counters()). */
const dp = { reads: 0, writes: 0, write_errors: 0, gso_packets: 0, csum_partial: 0, dropped_pass_no_conn: 0, read_errors: 0, oversize: 0, batches: 0, no_buffers: 0 };

const SLOT = (1 << 16) + 512; // a GSO super-packet (<= 64 KiB) plus the virtio header
const buf = Buffer.alloc(SLOT);
const icmpBuf = Buffer.alloc(VNET_HDR_LEN + 576); // zero virtio header + generated ICMP
const pfd = Buffer.alloc(8); // struct pollfd
pfd.writeInt32LE(init.fd, 0);
pfd.writeInt16LE(POLLIN, 4);
const BATCH = 64;

/**
 * Process the packet of n bytes (virtio header included) at `at` in `b`; returns true when it
 * is to be written back from where it is. ICMP replies are written at once (rare).
 */
function verdict(b: Buffer, at: number, n: number, now: number): boolean {
  dp.reads++;
  if (n < VNET_HDR_LEN + 20) return false;
  const partial = vnetNeedsCsum(b, at);
  if (partial) dp.csum_partial++;
  if (vnetGsoType(b, at) !== 0) dp.gso_packets++;
  const v = d.process(b, at + VNET_HDR_LEN, n - VNET_HDR_LEN, now, partial ? PacketFlag.CsumPartial : 0);
  if (v === Verdict.Forward) return true;
  if (v === Verdict.Icmp) {
    d.icmpOut.copy(icmpBuf, VNET_HDR_LEN, 0, d.icmpLen);
    write(icmpBuf, VNET_HDR_LEN + d.icmpLen);
  } else if (v === Verdict.Pass) {
    if (d.lastOutcome === Outcome.PassNoConn) dp.dropped_pass_no_conn++;
    else return true;
  }
  return false;
}

function write(b: Buffer, n: number): void {
  if (sys.write(init.fd, b, n) === n) dp.writes++;
  else dp.write_errors++;
}

function call(msg: Extract<ControlMessage, { type: 'call' }>, now: number): unknown {
  switch (msg.call) {
    case 'apply':
      // servers may go away or change: the engine decides again for every connection (taking
      // one back also counts what the kernel forwarded and restarts its timer)
      d.withdrawAll();
      offloader?.flush();
      applyOps(d, msg.args[0]);
      return null;
    case 'snapshot':
      harvest(now);
      return d.snapshot();
    case 'connections':
      harvest(now);
      return d.connections(now);
    case 'timeouts':
      return d.timeouts;
    case 'setTimeouts':
      d.setTimeouts(msg.args[0]);
      return null;
    case 'zero':
      harvest(now); // what the kernel forwarded before the reset is not counted after it
      d.zero(msg.args[0]);
      return null;
    case 'counters':
      return { engine: d.counters(), datapath: { ...dp, ...fastPathCounters() } };
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

/** Timers and control messages, between batches. */
function housekeeping(): void {
  const now = Math.floor(performance.now());
  if (now - lastTick >= 100) {
    if (now - lastHarvest >= HARVEST_MS) harvest(now); // before the timers: activity restarts them
    d.tick(now);
    lastTick = now;
  }
  if (!control(now)) running = false;
}

function loopSyscalls(): void {
  while (running) {
    const now = Math.floor(performance.now());
    for (let k = 0; k < BATCH; k++) {
      const n = sys.read(init.fd, buf, SLOT);
      if (n > 0) {
        const fwd = verdict(buf, 0, n, now);
        offloader?.flush(); // before the packet goes on (offload.ts)
        if (fwd) write(buf, n);
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
    housekeeping();
  }
}

/** --busy-poll: keep polling this long (ms) after the last packet before sleeping */
const BUSY_POLL_MS = init.busyPollUs / 1000;
const RING_BUFFERS = 64; // 64 x 66 KiB = 4.1 MiB per worker: room for GSO super-packets in flight
const READ_TAG = 0x10000;
const WRITE_TAG = 0x20000;

/** Runs until stopped; returns an error text, or 'unsupported' when multishot reads are refused before any packet. */
function loopUring(ring: Uring, bufs: BufferRing): string | null {
  const data = bufs.data;
  const size = bufs.size;
  let armed = false;
  let now = 0;
  let writesInFlight = 0;
  let lastPacket = 0;
  let fatal = 0;
  const complete = (tag: number, res: number, flags: number): void => {
    if (tag === READ_TAG) {
      if ((flags & IORING_CQE_F_MORE) === 0) armed = false;
      if (res < 0) {
        if (-res === ENOBUFS) dp.no_buffers++;
        else if (-res !== EINTR && -res !== EAGAIN) {
          dp.read_errors++;
          fatal = -res;
        }
        return;
      }
      if ((flags & IORING_CQE_F_BUFFER) === 0) return; // nothing read, no buffer taken
      const bid = flags >>> IORING_CQE_BUFFER_SHIFT;
      if (verdict(data, bid * size, res, now)) {
        // at most RING_BUFFERS writes are in flight, fewer than the ring's 256 entries
        if (ring.write(init.fd, bufs.lo[bid]!, bufs.hi[bid]!, res, WRITE_TAG | bid)) {
          writesInFlight++;
          return;
        }
        dp.write_errors++;
      }
      bufs.recycle(bid);
    } else {
      writesInFlight--;
      const bid = tag & 0xffff;
      if (res > 0) dp.writes++;
      else dp.write_errors++;
      bufs.recycle(bid);
    }
  };
  while (running) {
    if (!armed) armed = ring.readMultishot(init.fd, 0, READ_TAG);
    // One call submits the batch's writes and sleeps until they have completed (tun writes do
    // so at once) and the next packet has arrived: wait for writesInFlight + 1 completions.
    // Within the busy-poll time after the last packet, wait for the writes only (no sleep).
    const t = performance.now();
    if (!ring.enter(writesInFlight + (t - lastPacket >= BUSY_POLL_MS ? 1 : 0))) return `io_uring_enter: ${sys.strerror(ring.lastErrno)}`;
    now = Math.floor(t);
    if (ring.drain(complete) > 0) {
      dp.batches++;
      lastPacket = performance.now();
    }
    offloader?.flush(); // before the batch's writes are submitted (offload.ts)
    bufs.publish();
    if (fatal) return fatal === EINVAL && dp.reads === 0 ? 'unsupported' : `read: ${sys.strerror(fatal)}`;
    housekeeping();
  }
  return null;
}

/** The io_uring set-up, or null (with the reason) when this kernel cannot do it. */
function openUring(): { ring: Uring; bufs: BufferRing } | { error: string } {
  let ring: Uring | null = null;
  try {
    ring = new Uring(256, 20);
    const bufs = new BufferRing(RING_BUFFERS, SLOT);
    ring.registerBufferRing(bufs, 0);
    return { ring, bufs };
  } catch (e) {
    ring?.close();
    return { error: (e as Error).message };
  }
}

let readySent = false;
/** Tell the control plane how this worker moves packets (the first time: that it is ready). */
function announce(io: 'uring' | 'syscalls', reason?: string): void {
  port.postMessage({ type: readySent ? 'io' : 'ready', io, ...(reason ? { reason } : {}) });
  readySent = true;
}

/** Run the io_uring loop; null when it ran (until stopped, or a reported error), else why it could not. */
function runUring(): string | null {
  const u = openUring();
  if ('error' in u) return u.error;
  announce('uring');
  const r = loopUring(u.ring, u.bufs);
  u.ring.close();
  u.bufs.close();
  if (r === 'unsupported') return 'multishot reads refused (Linux 6.7+ needed)';
  if (r !== null) port.postMessage({ type: 'error', message: r });
  return null;
}

const refused = init.io === 'syscalls' ? null : runUring();
if (refused !== null && init.io === 'uring') port.postMessage({ type: 'error', message: `io_uring unavailable: ${refused}` });
else if (init.io === 'syscalls' || refused !== null) {
  announce('syscalls', refused ?? undefined);
  loopSyscalls();
}
if (offloader) {
  d.withdrawAll();
  offloader.flush();
  offloader.close();
}
port.postMessage({ type: 'stopped', engine: d.counters(), datapath: dp });
port.close();
