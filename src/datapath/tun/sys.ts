/**
 * The few Linux system calls the TUN data path needs, reached through koffi (FFI, no compiler
 * needed; the package ships prebuilt binaries). Only thin wrappers live here: every decision is
 * made in TypeScript by the callers. Constants from include/uapi/linux/if_tun.h and
 * asm-generic/fcntl.h, x86-64 / arm64 values (identical on both). libc, system call numbers and
 * errno values live in syscalls.ts.
 */
import koffi from 'koffi';
import { errno, libc } from './syscalls.js';
export const sys = {
  open: libc.func('int open(const char *path, int flags)') as (path: string, flags: number) => number,
  close: libc.func('int close(int fd)') as (fd: number) => number,
  ioctlPtr: libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']) as (fd: number, req: number, arg: Buffer) => number,
  ioctlInt: libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']) as (fd: number, req: number, arg: number) => number,
  read: libc.func('long read(int fd, void *buf, unsigned long count)') as (fd: number, buf: Buffer, n: number) => number,
  write: libc.func('long write(int fd, const void *buf, unsigned long count)') as (fd: number, buf: Buffer, n: number) => number,
  poll: libc.func('int poll(void *fds, unsigned long nfds, int timeout)') as (fds: Buffer, n: number, timeoutMs: number) => number,
  strerror: libc.func('const char *strerror(int errnum)') as (e: number) => string,
  errno,
};

const mmap = libc.func('void *mmap(void *addr, unsigned long length, int prot, int flags, int fd, long offset)') as (a: null, len: number, prot: number, flags: number, fd: number, off: number) => unknown;
export const munmap = libc.func('int munmap(void *addr, unsigned long length)') as (p: unknown, len: number) => number;
const PROT_RW = 0x3;
const PROT_READ = 0x1;
const MAP_SHARED = 0x01;
const MAP_PRIVATE = 0x02;
const MAP_ANONYMOUS = 0x20;
const MAP_POPULATE = 0x8000;

/** An anonymous or file mapping, with a Buffer over it and its address. */
export interface Mapping {
  ptr: unknown;
  addr: bigint;
  len: number;
  buf: Buffer;
}
/** Map `len` bytes: anonymous memory, or (fd >= 0) a shared mapping of fd at `offset`; populated. */
export function mapMemory(len: number, fd = -1, offset = 0): Mapping {
  const flags = fd >= 0 ? MAP_SHARED | MAP_POPULATE : MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE;
  const ptr = mmap(null, len, PROT_RW, flags, fd, offset);
  const addr = BigInt(koffi.address(ptr) as bigint);
  if (addr === 0xffffffffffffffffn || addr === 0n) throw new Error(`mmap ${len} bytes: ${sys.strerror(sys.errno())}`);
  return { ptr, addr, len, buf: Buffer.from(koffi.view(ptr, len) as ArrayBuffer) };
}

/** A shared mapping of `len` bytes of fd at `offset`, read-only unless `writable` (a BPF ring
 *  buffer's producer pages may only be mapped so); populated. */
export function mapShared(len: number, fd: number, offset: number, writable: boolean): Mapping {
  const ptr = mmap(null, len, writable ? PROT_RW : PROT_READ, MAP_SHARED | MAP_POPULATE, fd, offset);
  const addr = BigInt(koffi.address(ptr) as bigint);
  if (addr === 0xffffffffffffffffn || addr === 0n) throw new Error(`mmap ${len} bytes of fd ${fd} at ${offset}: ${sys.strerror(sys.errno())}`);
  return { ptr, addr, len, buf: Buffer.from(koffi.view(ptr, len) as ArrayBuffer) };
}

export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export { EAGAIN, EINTR } from './syscalls.js';
export const POLLIN = 0x1;

export const TUNSETIFF = 0x400454ca;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const IFF_TUN = 0x0001;
/** a TAP device: Ethernet frames instead of IP packets */
export const IFF_TAP = 0x0002;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;
export const IFF_MULTI_QUEUE = 0x0100;
export const TUN_F = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, TSO_ECN: 0x08, USO4: 0x20, USO6: 0x40 } as const;

export class SysError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
  ) {
    super(`${call}: ${sys.strerror(errno)} (errno ${errno})`);
  }
}

/** CLOCK_MONOTONIC minus performance.now(), in ms: the smallest of a few paired readings (a
 *  reading pair is late by the time between its two calls; the first call also warms them up). */
export function monotonicOffsetMs(): number {
  let best = Infinity;
  for (let k = 0; k < 8; k++) {
    const p = performance.now();
    best = Math.min(best, Number(process.hrtime.bigint()) / 1e6 - p);
  }
  return best;
}
