/**
 * A minimal io_uring for the TUN data path, through koffi (no compiler): one ring per worker,
 * a multishot read (IORING_OP_READ_MULTISHOT, Linux 6.7+) that fills buffers from a provided
 * buffer ring, and plain writes. One io_uring_enter(2) submits every write of a batch and waits
 * for the next packets, where the plain loop makes a read(2) and a write(2) per packet.
 *
 * Only the mechanics live here (struct layouts from include/uapi/linux/io_uring.h, x86-64 and
 * arm64 alike); the worker decides what to read, write and recycle. Memory shared with the
 * kernel (rings, SQEs, buffers) is mmap'd and seen from JavaScript through koffi.view; the ring
 * indexes are written with Atomics so the stores are ordered as the kernel expects.
 */
import koffi from 'koffi';
import { mapMemory, munmap, sys, type Mapping } from './sys.js';
import { EINTR, ETIME, libc, syscall, syscalls } from './syscalls.js';

/** io_uring_enter through a fixed prototype: a variadic koffi call parses its types on every call */
const enterCall = libc.func('syscall', 'long', ['long', 'uint', 'uint', 'uint', 'uint', 'void *', 'ulong']) as (n: number, fd: number, submit: number, wait: number, flags: number, arg: Buffer | null, argLen: number) => number;

const IORING_OFF_SQ_RING = 0;
const IORING_OFF_SQES = 0x10000000;
const IORING_SETUP_SINGLE_ISSUER = 1 << 12;
const IORING_SETUP_DEFER_TASKRUN = 1 << 13;
const IORING_FEAT_SINGLE_MMAP = 1 << 0;
const IORING_FEAT_EXT_ARG = 1 << 8;
const IORING_ENTER_GETEVENTS = 1 << 0;
const IORING_ENTER_EXT_ARG = 1 << 3;
const IORING_REGISTER_PBUF_RING = 22;
export const IORING_OP_WRITE = 23;
export const IORING_OP_READ_MULTISHOT = 49;
export const IOSQE_BUFFER_SELECT = 1 << 5;
export const IORING_CQE_F_BUFFER = 1 << 0;
export const IORING_CQE_F_MORE = 1 << 1;
export const IORING_CQE_BUFFER_SHIFT = 16;

export class Uring {
  readonly fd: number;
  /** io_uring_enter's number, looked up once */
  readonly #nrEnter = syscalls().io_uring_enter;
  readonly #maps: Mapping[] = [];
  readonly #sqes: Buffer;
  readonly #sqMask: number;
  readonly #sqHead: Uint32Array;
  readonly #sqTail: Uint32Array;
  readonly #cq: Buffer;
  readonly #cqMask: number;
  readonly #cqHead: Uint32Array;
  readonly #cqTail: Uint32Array;
  readonly #cqesOff: number;
  #tail: number;
  readonly #arg = Buffer.alloc(24); // struct io_uring_getevents_arg
  readonly #ts = Buffer.alloc(16); // struct __kernel_timespec

  /**
   * A ring with `entries` submission slots (power of two) and twice as many completion slots;
   * enter(n) waits at most `waitMs` for n completions.
   */
  constructor(entries: number, waitMs: number) {
    const p = Buffer.alloc(120); // struct io_uring_params
    p.writeUInt32LE(IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 8);
    const fd = syscall(syscalls().io_uring_setup, 'unsigned int', entries, 'void *', p);
    if (fd < 0) throw new Error(`io_uring_setup: ${sys.strerror(sys.errno())}`);
    this.fd = fd;
    try {
      const features = p.readUInt32LE(20);
      if (!(features & IORING_FEAT_SINGLE_MMAP) || !(features & IORING_FEAT_EXT_ARG)) throw new Error('io_uring: kernel lacks SINGLE_MMAP or EXT_ARG');
      const sqEntries = p.readUInt32LE(0);
      const cqEntries = p.readUInt32LE(4);
      const so = (i: number) => p.readUInt32LE(40 + i * 4); // io_sqring_offsets
      const co = (i: number) => p.readUInt32LE(80 + i * 4); // io_cqring_offsets
      const ringLen = Math.max(so(6) + sqEntries * 4, co(5) + cqEntries * 16);
      const ring = mapMemory(ringLen, fd, IORING_OFF_SQ_RING);
      this.#maps.push(ring);
      const sqes = mapMemory(sqEntries * 64, fd, IORING_OFF_SQES);
      this.#maps.push(sqes);
      this.#sqes = sqes.buf;
      const u32 = (off: number) => new Uint32Array(ring.buf.buffer, ring.buf.byteOffset + off, 1);
      this.#sqHead = u32(so(0));
      this.#sqTail = u32(so(1));
      this.#sqMask = ring.buf.readUInt32LE(so(2));
      // identity map: SQE i is array slot i
      for (let i = 0; i < sqEntries; i++) ring.buf.writeUInt32LE(i, so(6) + i * 4);
      this.#cq = ring.buf;
      this.#cqHead = u32(co(0));
      this.#cqTail = u32(co(1));
      this.#cqMask = ring.buf.readUInt32LE(co(2));
      this.#cqesOff = co(5);
      this.#tail = Atomics.load(this.#sqTail, 0);
      this.#arg.writeBigUInt64LE(BigInt(koffi.address(this.#ts) as bigint), 16);
      this.#ts.writeBigInt64LE(BigInt(Math.floor(waitMs / 1000)), 0);
      this.#ts.writeBigInt64LE(BigInt((waitMs % 1000) * 1_000_000), 8);
    } catch (e) {
      this.close();
      throw e;
    }
  }

  /** Next free SQE (zeroed), or -1 when the submission ring is full. Returns its byte offset in sqes(). */
  #sqe(): number {
    if (this.#tail - Atomics.load(this.#sqHead, 0) > this.#sqMask) return -1;
    const off = (this.#tail & this.#sqMask) * 64;
    this.#sqes.fill(0, off, off + 64);
    this.#tail = (this.#tail + 1) >>> 0;
    return off;
  }

  /** Queue a write of `len` bytes at address hi:lo (two uint32 halves) to `fd`; false when the ring is full. */
  write(fd: number, lo: number, hi: number, len: number, userData: number): boolean {
    const o = this.#sqe();
    if (o < 0) return false;
    const s = this.#sqes;
    s[o] = IORING_OP_WRITE;
    s.writeInt32LE(fd, o + 4);
    s.writeUInt32LE(lo, o + 16);
    s.writeUInt32LE(hi, o + 20);
    s.writeUInt32LE(len, o + 24);
    s.writeUInt32LE(userData >>> 0, o + 32);
    return true;
  }

  /** Queue a multishot read from `fd` into buffers of group `bgid`; false when the ring is full. */
  readMultishot(fd: number, bgid: number, userData: number): boolean {
    const o = this.#sqe();
    if (o < 0) return false;
    const s = this.#sqes;
    s[o] = IORING_OP_READ_MULTISHOT;
    s[o + 1] = IOSQE_BUFFER_SELECT;
    s.writeInt32LE(fd, o + 4);
    s.writeUInt32LE(userData >>> 0, o + 32);
    s.writeUInt16LE(bgid, o + 40);
    return true;
  }

  /**
   * Submit what is queued, then wait (at most waitMs) until `waitFor` completions are ready;
   * with waitFor 0, only collect what deferred task work produces, without sleeping. Returns
   * false on an error (errno in lastErrno; EBUSY, EAGAIN and ENOMEM pass: enter-failures.ts),
   * true otherwise (timeouts and signals included). SQEs a failed call left are submitted by the next.
   */
  lastErrno = 0;
  enter(waitFor: number): boolean {
    Atomics.store(this.#sqTail, 0, this.#tail);
    // everything the kernel has not consumed yet: SQEs left by a failed enter are submitted now
    const submit = (this.#tail - Atomics.load(this.#sqHead, 0)) >>> 0;
    const r =
      waitFor > 0
        ? enterCall(this.#nrEnter, this.fd, submit, waitFor, IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, this.#arg, 24)
        : enterCall(this.#nrEnter, this.fd, submit, 0, IORING_ENTER_GETEVENTS, null, 0);
    if (r < 0) {
      const e = sys.errno();
      if (e === ETIME || e === EINTR) return true;
      this.lastErrno = e;
      return false;
    }
    return true;
  }

  /**
   * Call `f(userData, res, flags)` for every completion, then release them. Returns the count.
   * `f` must not call enter().
   */
  drain(f: (userData: number, res: number, flags: number) => void): number {
    let head = Atomics.load(this.#cqHead, 0);
    const tail = Atomics.load(this.#cqTail, 0);
    let n = 0;
    const c = this.#cq;
    while (head !== tail) {
      const o = this.#cqesOff + (head & this.#cqMask) * 16;
      f(c.readUInt32LE(o), c.readInt32LE(o + 8), c.readUInt32LE(o + 12));
      head = (head + 1) >>> 0;
      n++;
    }
    Atomics.store(this.#cqHead, 0, head);
    return n;
  }

  close(): void {
    for (const m of this.#maps.splice(0)) munmap(m.ptr, m.len);
    if (this.fd >= 0) sys.close(this.fd);
  }

  /** Register a provided-buffer ring for group `bgid` (see BufferRing). */
  registerBufferRing(ring: BufferRing, bgid: number): void {
    const reg = Buffer.alloc(40); // struct io_uring_buf_reg
    reg.writeBigUInt64LE(ring.ringAddr, 0);
    reg.writeUInt32LE(ring.count, 8);
    reg.writeUInt16LE(bgid, 12);
    const r = syscall(syscalls().io_uring_register, 'unsigned int', this.fd, 'unsigned int', IORING_REGISTER_PBUF_RING, 'void *', reg, 'unsigned int', 1);
    if (r < 0) throw new Error(`io_uring_register(PBUF_RING): ${sys.strerror(sys.errno())}`);
  }
}

/**
 * `count` (power of two) buffers of `size` bytes in one mapping (`data`, buffer i at i*size),
 * offered to the kernel through a provided-buffer ring. The kernel takes buffers in ring order;
 * give one back with `recycle(i)` once its packet has been written or dropped, then `publish()`.
 */
export class BufferRing {
  readonly count: number;
  readonly size: number;
  readonly data: Buffer;
  /** buffer i's address as two uint32 halves (no BigInt on the hot path) */
  readonly lo: Uint32Array;
  readonly hi: Uint32Array;
  readonly ringAddr: bigint;
  readonly #ring: Mapping;
  readonly #mem: Mapping;
  readonly #tailView: Uint16Array;
  #tail = 0;

  constructor(count: number, size: number) {
    if (count & (count - 1) || count > 32768) throw new Error('buffer ring size must be a power of two <= 32768');
    this.count = count;
    this.size = size;
    this.#ring = mapMemory(count * 16);
    this.#mem = mapMemory(count * size);
    this.data = this.#mem.buf;
    this.lo = new Uint32Array(count);
    this.hi = new Uint32Array(count);
    for (let i = 0; i < count; i++) {
      const a = this.#mem.addr + BigInt(i * size);
      this.lo[i] = Number(a & 0xffffffffn);
      this.hi[i] = Number(a >> 32n);
    }
    this.ringAddr = this.#ring.addr;
    // the ring's tail is the 16-bit `resv` field of its first entry (offset 14)
    this.#tailView = new Uint16Array(this.#ring.buf.buffer, this.#ring.buf.byteOffset + 14, 1);
    for (let i = 0; i < count; i++) this.recycle(i);
    this.publish();
  }

  /** Put buffer `i` back in the ring (visible to the kernel after publish()). */
  recycle(i: number): void {
    const o = (this.#tail & (this.count - 1)) * 16;
    const r = this.#ring.buf;
    r.writeUInt32LE(this.lo[i]!, o);
    r.writeUInt32LE(this.hi[i]!, o + 4);
    r.writeUInt32LE(this.size, o + 8);
    r.writeUInt16LE(i, o + 12);
    this.#tail = (this.#tail + 1) & 0xffff;
  }

  publish(): void {
    Atomics.store(this.#tailView, 0, this.#tail);
  }

  close(): void {
    munmap(this.#ring.ptr, this.#ring.len);
    munmap(this.#mem.ptr, this.#mem.len);
  }
}
