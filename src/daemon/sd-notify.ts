/**
 * systemd's readiness protocol (sd_notify(3)): one datagram of `NAME=VALUE` lines sent to the
 * AF_UNIX datagram socket named by $NOTIFY_SOCKET — a path, or `@name` for the abstract
 * namespace. With `Type=notify` the unit counts as started at `READY=1`; `RELOADING=1` ...
 * `READY=1` brackets a reload, `STOPPING=1` starts a stop, `STATUS=` is shown by
 * `systemctl status`.
 *
 *   sdNotifier(env) -> (state) => void   a no-op without $NOTIFY_SOCKET; never throws (a failed
 *                                        send is reported once through `warn`)
 *
 * Why a system call through koffi, not `systemd-notify --ready`: Node has no Unix datagram
 * sockets, and a message sent by a short-lived child process is attributed to the unit only if
 * systemd can still read the sender's cgroup when it processes it (NotifyAccess=all, racy: the
 * child may have exited); sent from ulvsd's own pid it works with the default NotifyAccess=main.
 * socket(2) + sendto(2) + close(2) through libc, which the project already loads (syscalls.ts).
 */
import { libc } from '../datapath/tun/syscalls.js';
import koffi from 'koffi';

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const MSG_NOSIGNAL = 0x4000;
/** struct sockaddr_un: sa_family_t (2 bytes) + sun_path[108] (include/uapi/linux/un.h) */
const SUN_PATH_MAX = 108;

const socketCall = libc.func('int socket(int domain, int type, int protocol)') as (d: number, t: number, p: number) => number;
const sendto = libc.func('long sendto(int fd, const void *buf, unsigned long len, int flags, const void *addr, uint32_t addrlen)') as (fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrlen: number) => number;
const close = libc.func('int close(int fd)') as (fd: number) => number;

/** The sockaddr_un for $NOTIFY_SOCKET and its length; throws for a name that cannot be one. */
export function notifyAddress(name: string): { addr: Buffer; len: number } {
  if (!name.startsWith('/') && !name.startsWith('@')) throw new Error(`NOTIFY_SOCKET=${name} is neither an absolute path nor an abstract name (@...)`);
  const path = Buffer.from(name, 'utf8');
  if (path.length >= SUN_PATH_MAX) throw new Error(`NOTIFY_SOCKET is ${path.length} bytes long, more than a Unix socket address holds (${SUN_PATH_MAX - 1})`);
  if (name.startsWith('@')) path[0] = 0; // the abstract namespace: a leading NUL, no terminator
  const addr = Buffer.alloc(2 + SUN_PATH_MAX);
  addr.writeUInt16LE(AF_UNIX, 0);
  path.copy(addr, 2);
  // a path counts its terminating NUL; an abstract name is exactly its bytes
  return { addr, len: 2 + path.length + (name.startsWith('@') ? 0 : 1) };
}

/** See the file header. */
export function sdNotifier(env: NodeJS.ProcessEnv, warn: (msg: string) => void): (state: string) => void {
  const name = env['NOTIFY_SOCKET'];
  if (!name) return () => {};
  let warned = false;
  const fail = (why: string) => {
    if (!warned) warn(`cannot tell systemd the service state through NOTIFY_SOCKET=${name}: ${why} (systemctl may wait for readiness until its start timeout)`);
    warned = true;
  };
  let address: { addr: Buffer; len: number };
  try {
    address = notifyAddress(name);
  } catch (e) {
    return () => fail((e as Error).message);
  }
  return (state) => {
    const fd = socketCall(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return fail(`socket(AF_UNIX, SOCK_DGRAM): errno ${koffi.errno()}`);
    const msg = Buffer.from(state, 'utf8');
    const n = sendto(fd, msg, msg.length, MSG_NOSIGNAL, address.addr, address.len);
    const err = n < 0 ? koffi.errno() : 0;
    close(fd);
    if (n < 0) fail(`sendto: errno ${err}`);
  };
}
