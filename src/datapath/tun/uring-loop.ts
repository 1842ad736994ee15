/**
 * A worker's io_uring loop (worker.ts): the kernel reads packets into a ring of preallocated
 * buffers (a multishot read, Linux 6.7+); one io_uring_enter(2) per batch submits the batch's
 * writes and collects the next packets (uring.ts). Nothing is allocated per packet.
 *
 * Faults, each counted in the worker's data-path counters:
 *   - the ring cannot be set up (io_uring_setup or the buffer ring refused: no memory, no
 *     descriptor, io_uring disabled) or the kernel refuses multishot reads before the first
 *     packet: `refused`, the worker decides (worker.ts: read/write system calls under --io auto);
 *   - io_uring_enter fails: transient errors (EAGAIN, ENOMEM, EBUSY) are retried
 *     (uring_enter_retries) for up to a second, then, like any other error, the worker falls
 *     back to read(2)/write(2) for good (`fellBack`; the writes still queued in the ring and the
 *     packets read but not yet handled are lost: at most one batch);
 *   - the submission queue is full when a write is queued: the packet is dropped (uring_sq_full;
 *     not expected: at most RING_BUFFERS writes are in flight, fewer than the ring's entries).
 * `fault` (tests only) makes the first `calls` enters fail with `errno`, as the kernel would.
 */
import { EINTR, EAGAIN, EINVAL, ENOBUFS } from './syscalls.js';
import { sys } from './sys.js';
import { BufferRing, IORING_CQE_BUFFER_SHIFT, IORING_CQE_F_BUFFER, IORING_CQE_F_MORE, Uring } from './uring.js';
import { EnterFailures } from './enter-failures.js';

const RING_ENTRIES = 256;
const RING_BUFFERS = 64; // 64 x 66 KiB = 4.1 MiB per worker: room for GSO super-packets in flight
const READ_TAG = 0x10000;
const WRITE_TAG = 0x20000;

/** What the loop needs of its worker. */
export interface UringHost {
  readonly fd: number;
  /** buffer size: the largest packet with its virtio header */
  readonly slot: number;
  readonly busyPollMs: number;
  readonly dp: { reads: number; writes: number; write_errors: number; read_errors: number; batches: number; no_buffers: number; uring_enter_retries: number; uring_sq_full: number };
  running(): boolean;
  /** handle the packet of n bytes at `at` in b; true: write it back from there */
  verdict(b: Buffer, at: number, n: number, now: number): boolean;
  /** after each batch, before its writes are submitted (the offloader's flush) */
  afterBatch(): void;
  housekeeping(): void;
  /** the ring is set up: the worker forwards through it */
  started(): void;
}

export interface EnterFault {
  errno: number;
  calls: number;
}

export type UringOutcome = { stopped: true } | { refused: string } | { fellBack: string } | { error: string };

/** Set up a ring and run until the worker stops (or a fault ends it: the outcome says which). */
export function runUring(host: UringHost, fault?: EnterFault): UringOutcome {
  let ring: Uring | null = null;
  let bufs: BufferRing;
  try {
    ring = new Uring(RING_ENTRIES, 20);
    bufs = new BufferRing(RING_BUFFERS, host.slot);
    ring.registerBufferRing(bufs, 0);
  } catch (e) {
    ring?.close();
    return { refused: (e as Error).message };
  }
  host.started();
  try {
    return loop(host, ring, bufs, fault ? { ...fault } : null);
  } finally {
    ring.close();
    bufs.close();
  }
}

function loop(host: UringHost, ring: Uring, bufs: BufferRing, fault: EnterFault | null): UringOutcome {
  const dp = host.dp;
  const fd = host.fd;
  const data = bufs.data;
  const size = bufs.size;
  const failures = new EnterFailures();
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
      if (host.verdict(data, bid * size, res, now)) {
        if (ring.write(fd, bufs.lo[bid]!, bufs.hi[bid]!, res, WRITE_TAG | bid)) {
          writesInFlight++;
          return;
        }
        dp.uring_sq_full++;
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
  while (host.running()) {
    if (!armed) armed = ring.readMultishot(fd, 0, READ_TAG);
    // One call submits the batch's writes and sleeps until they have completed (tun writes do
    // so at once) and the next packet has arrived: wait for writesInFlight + 1 completions.
    // Within the busy-poll time after the last packet, wait for the writes only (no sleep).
    const t = performance.now();
    const waitFor = writesInFlight + (t - lastPacket >= host.busyPollMs ? 1 : 0);
    const entered = fault !== null && fault.calls > 0 ? (fault.calls--, (ring.lastErrno = fault.errno), false) : ring.enter(waitFor);
    if (entered) failures.ok();
    else if (failures.failed(ring.lastErrno, t) === 'retry') dp.uring_enter_retries++; // what completed meanwhile is drained below
    else return { fellBack: `io_uring_enter: ${sys.strerror(ring.lastErrno)}` };
    now = Math.floor(t);
    if (ring.drain(complete) > 0) {
      dp.batches++;
      lastPacket = performance.now();
    }
    host.afterBatch(); // before the batch's writes are submitted (offloader.ts)
    bufs.publish();
    if (fatal) return fatal === EINVAL && dp.reads === 0 ? { refused: 'multishot reads refused (Linux 6.7+ needed)' } : { error: `read: ${sys.strerror(fatal)}` };
    host.housekeeping();
  }
  return { stopped: true };
}
