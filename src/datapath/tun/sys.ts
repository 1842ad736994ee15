/**
 * The few Linux system calls the TUN data path needs, reached through koffi (FFI, no compiler
 * needed; the package ships prebuilt binaries). Only thin wrappers live here: every decision is
 * made in TypeScript by the callers. Constants from include/uapi/linux/if_tun.h and
 * asm-generic/fcntl.h, x86-64 / arm64 values.
 */
import koffi from 'koffi';

const libc = koffi.load('libc.so.6');
export const sys = {
  open: libc.func('int open(const char *path, int flags)') as (path: string, flags: number) => number,
  close: libc.func('int close(int fd)') as (fd: number) => number,
  ioctlPtr: libc.func('ioctl', 'int', ['int', 'unsigned long', 'void *']) as (fd: number, req: number, arg: Buffer) => number,
  ioctlInt: libc.func('ioctl', 'int', ['int', 'unsigned long', 'unsigned long']) as (fd: number, req: number, arg: number) => number,
  read: libc.func('long read(int fd, void *buf, unsigned long count)') as (fd: number, buf: Buffer, n: number) => number,
  write: libc.func('long write(int fd, const void *buf, unsigned long count)') as (fd: number, buf: Buffer, n: number) => number,
  poll: libc.func('int poll(void *fds, unsigned long nfds, int timeout)') as (fds: Buffer, n: number, timeoutMs: number) => number,
  strerror: libc.func('const char *strerror(int errnum)') as (e: number) => string,
  errno: (): number => koffi.errno(),
};

export const O_RDWR = 0o2;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;
export const EAGAIN = 11;
export const EINTR = 4;
export const POLLIN = 0x1;

export const TUNSETIFF = 0x400454ca;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const IFF_TUN = 0x0001;
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
