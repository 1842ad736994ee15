/**
 * The identity of the network namespace this process is in: its cookie, a 64-bit number the
 * kernel gives each network namespace and never gives another one until reboot (net->net_cookie,
 * read with getsockopt(SOL_SOCKET, SO_NETNS_COOKIE) on any socket of the namespace, Linux 5.14+).
 * The namespace's inode number (/proc/self/ns/net) names it only while it exists: once it is
 * freed the number goes to the next new namespace, so a record keyed by it alone outlives its
 * namespace and seems to belong to the new one. Constants from include/uapi/linux/socket.h,
 * asm-generic/socket.h (x86-64 and arm64 alike).
 */
import { libc } from './syscalls.js';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_NETNS_COOKIE = 71;

const socket = libc.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
const getsockopt = libc.func('getsockopt', 'int', ['int', 'int', 'int', 'void *', 'void *']) as (fd: number, level: number, name: number, val: Buffer, len: Buffer) => number;
const close = libc.func('int close(int fd)') as (fd: number) => number;

/** This process's network namespace cookie as a decimal string, or null where the kernel has none (before 5.14). */
export function netnsCookie(): string | null {
  const fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return null;
  try {
    const val = Buffer.alloc(8);
    const len = Buffer.alloc(4);
    len.writeUInt32LE(8);
    if (getsockopt(fd, SOL_SOCKET, SO_NETNS_COOKIE, val, len) !== 0 || len.readUInt32LE() !== 8) return null;
    return val.readBigUInt64LE().toString();
  } finally {
    close(fd);
  }
}
