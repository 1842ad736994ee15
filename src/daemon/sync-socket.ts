/**
 * The sync daemon's UDP sockets, made as the kernel makes its own (ip_vs_sync.c make_send_sock,
 * make_receive_sock), with the two options Node's dgram has no call for:
 *
 *   master  IP_MTU_DISCOVER = IP_PMTUDISC_DONT (set_mcast_pmtudisc: a datagram larger than the
 *           path MTU is fragmented instead of refused with EMSGSIZE), SO_SNDBUF = sync_sock_size
 *           when > 0 (set_sock_size), bound to the interface's address, port 0 (bind_mcastif_addr)
 *   backup  SO_REUSEADDR (sk_reuse), SO_RCVBUF = sync_sock_size when > 0, SO_BINDTODEVICE the
 *           interface (sk_bound_dev_if: only datagrams that arrived on it), bound to group:port
 *
 * How: the socket is created, its options set and bound with libc (koffi, the project's one libc
 * load, datapath/tun/syscalls.ts), then handed to dgram with `bind({ fd })` (public in Node 20:
 * dgram takes an existing descriptor and binds nothing itself); from there dgram owns and closes
 * it, and its multicast calls (interface, TTL, loop, membership) work on it as on its own.
 * A buffer size is doubled by the kernel and capped at net.core.wmem_max / rmem_max, as the
 * kernel's set_sock_size caps it.
 *
 * Errors: IpvsError with the failing call and errno text; the descriptor is closed first.
 * Numbers: asm-generic socket.h / in.h (the same on x86-64 and arm64).
 */
import { createSocket, type Socket } from 'node:dgram';
import { IpvsError } from '../core/errors.js';
import { errno, libc } from '../datapath/tun/syscalls.js';
import { sys } from '../datapath/tun/sys.js';

const AF_INET = 2;
const SOCK_DGRAM = 2;
const SOCK_NONBLOCK = 0o4000;
const SOCK_CLOEXEC = 0o2000000;
const SOL_SOCKET = 1;
const SO_REUSEADDR = 2;
const SO_SNDBUF = 7;
const SO_RCVBUF = 8;
const SO_BINDTODEVICE = 25;
const IPPROTO_IP = 0;
const IP_MTU_DISCOVER = 10;
const IP_PMTUDISC_DONT = 0;

const socketCall = libc.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
const setsockopt = libc.func('int setsockopt(int fd, int level, int name, const void *val, uint32_t len)') as (fd: number, level: number, name: number, val: Buffer, len: number) => number;
const getsockopt = libc.func('int getsockopt(int fd, int level, int name, _Out_ void *val, _Inout_ uint32_t *len)') as (fd: number, level: number, name: number, val: Buffer, len: number[]) => number;
const bindCall = libc.func('int bind(int fd, const void *addr, uint32_t len)') as (fd: number, addr: Buffer, len: number) => number;

export interface SyncSocketSpec {
  role: 'master' | 'backup';
  /** the interface (backup: SO_BINDTODEVICE) */
  iface: string;
  /** address to bind, dotted IPv4 (master: the interface's address; backup: the group) */
  addr: string;
  /** port to bind (master: 0) */
  port: number;
  /** sync_sock_size: SO_SNDBUF (master) / SO_RCVBUF (backup) when > 0 */
  sockSize: number;
}

function int(v: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32LE(v); // host order: x86-64 and arm64 are little-endian (worker.ts assumes it too)
  return b;
}

function sockaddrIn(addr: string, port: number): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(AF_INET, 0); // sa_family_t, host order
  b.writeUInt16BE(port, 2);
  const parts = addr.split('.').map(Number);
  for (let i = 0; i < 4; i++) b[4 + i] = parts[i]!;
  return b;
}

/** A dgram socket and its descriptor (dgram owns it: closing the socket closes the descriptor). */
export interface SyncSocket {
  sock: Socket;
  fd: number;
}

/** A bound UDP socket for one sync thread (see the header); listening when it resolves. */
export async function openSyncSocket(s: SyncSocketSpec): Promise<SyncSocket> {
  const fd = socketCall(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new IpvsError('EINVAL', `sync ${s.role} socket: socket(): ${sys.strerror(errno())}`);
  const fail = (call: string) => {
    const e = errno();
    sys.close(fd);
    return new IpvsError('EINVAL', `sync ${s.role} socket on ${s.iface} (${s.addr}:${s.port}): ${call}: ${sys.strerror(e)}`);
  };
  const opt = (level: number, name: number, val: Buffer, what: string) => {
    if (setsockopt(fd, level, name, val, val.length) !== 0) throw fail(`setsockopt(${what})`);
  };
  if (s.role === 'master') {
    opt(IPPROTO_IP, IP_MTU_DISCOVER, int(IP_PMTUDISC_DONT), 'IP_MTU_DISCOVER');
    if (s.sockSize > 0) opt(SOL_SOCKET, SO_SNDBUF, int(s.sockSize), 'SO_SNDBUF');
  } else {
    opt(SOL_SOCKET, SO_REUSEADDR, int(1), 'SO_REUSEADDR');
    if (s.sockSize > 0) opt(SOL_SOCKET, SO_RCVBUF, int(s.sockSize), 'SO_RCVBUF');
    const dev = Buffer.from(`${s.iface}\0`);
    opt(SOL_SOCKET, SO_BINDTODEVICE, dev, 'SO_BINDTODEVICE');
  }
  const sa = sockaddrIn(s.addr, s.port);
  if (bindCall(fd, sa, sa.length) !== 0) throw fail('bind()');
  const sock = createSocket({ type: 'udp4' });
  await new Promise<void>((resolve, reject) => {
    sock.once('error', reject);
    sock.bind({ fd }, () => {
      sock.off('error', reject);
      resolve();
    });
  }).catch((e: Error) => {
    sys.close(fd);
    throw new IpvsError('EINVAL', `sync ${s.role} socket: dgram would not take descriptor ${fd}: ${e.message}`);
  });
  return { sock, fd };
}

/** Read back an int socket option of a dgram socket's descriptor (tests: what the kernel holds). */
export function socketIntOption(fd: number, which: 'pmtudisc' | 'sndbuf' | 'rcvbuf'): number {
  const [level, name] = which === 'pmtudisc' ? [IPPROTO_IP, IP_MTU_DISCOVER] : [SOL_SOCKET, which === 'sndbuf' ? SO_SNDBUF : SO_RCVBUF];
  const b = Buffer.alloc(4);
  const len = [4];
  if (getsockopt(fd, level, name, b, len) !== 0) throw new Error(`getsockopt: ${sys.strerror(errno())}`);
  return b.readInt32LE(0);
}

/** SO_BINDTODEVICE of a descriptor ('' when unbound). */
export function boundDevice(fd: number): string {
  const b = Buffer.alloc(16);
  const len = [16];
  if (getsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, b, len) !== 0) throw new Error(`getsockopt: ${sys.strerror(errno())}`);
  return b.subarray(0, Math.max(0, len[0]! - 1)).toString().replace(/\0.*$/, '');
}
