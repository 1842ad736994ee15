/**
 * Open (a queue of) a Linux TUN device: IFF_TUN | IFF_NO_PI | IFF_VNET_HDR [| IFF_MULTI_QUEUE],
 * non-blocking, then TUNSETOFFLOAD with the richest set the kernel accepts (CSUM + TSO4 + TSO6,
 * plus USO4/USO6 where supported), so bulk TCP arrives as GSO super-packets with partial
 * checksums. ulvsd makes it persistent (setPersist) so that it, and the routes and rules that
 * point at it, outlive a restart or a crash; a final stop makes it non-persistent again and it
 * disappears with its last queue.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { IFF_MULTI_QUEUE, IFF_NO_PI, IFF_TAP, IFF_TUN, IFF_VNET_HDR, O_CLOEXEC, O_NONBLOCK, O_RDWR, sys, SysError, TUN_F, TUNSETIFF, TUNSETOFFLOAD } from './sys.js';

export interface TunQueue {
  fd: number;
  name: string;
  /** TUN_F_* bits the kernel accepted (0 when none: packets then arrive fully formed) */
  offloads: number;
}

export function tunAvailable(): boolean {
  return existsSync('/dev/net/tun');
}

/** `tap`: a TAP device instead (Ethernet frames after the virtio_net_hdr; the lab's generators). */
export function openTunQueue(name: string, o: { multiQueue: boolean; offload: boolean; tap?: boolean }): TunQueue {
  if (Buffer.byteLength(name) > 15) throw new Error(`interface name ${JSON.stringify(name)} is longer than 15 bytes`);
  const fd = sys.open('/dev/net/tun', O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) throw new SysError('open /dev/net/tun', sys.errno());
  const ifr = Buffer.alloc(40); // struct ifreq: name[16], then the flags (short)
  ifr.write(name, 0, 'utf8');
  ifr.writeUInt16LE((o.tap ? IFF_TAP : IFF_TUN) | IFF_NO_PI | IFF_VNET_HDR | (o.multiQueue ? IFF_MULTI_QUEUE : 0), 16);
  if (sys.ioctlPtr(fd, TUNSETIFF, ifr) < 0) {
    const e = sys.errno();
    sys.close(fd);
    throw new SysError(`TUNSETIFF ${name}`, e);
  }
  let offloads = 0;
  if (o.offload) {
    for (const set of [TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6 | TUN_F.USO4 | TUN_F.USO6, TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6, TUN_F.CSUM]) {
      if (sys.ioctlInt(fd, TUNSETOFFLOAD, set) === 0) {
        offloads = set;
        break;
      }
    }
  }
  return { fd, name, offloads };
}

/** TUNSETPERSIST (_IOW('T', 203, int)): a persistent TUN outlives its last queue, keeping its
 *  name, addresses, routes and the rules that point at it; packets routed into it while no queue
 *  is open are dropped (TCP retransmits them). */
export const TUNSETPERSIST = 0x400454cb;

/** Make the TUN that `fd` is a queue of persistent (or not: it then goes with its last queue). */
export function setPersist(fd: number, on: boolean): void {
  if (sys.ioctlInt(fd, TUNSETPERSIST, on ? 1 : 0) < 0) throw new SysError(`TUNSETPERSIST ${on ? 1 : 0}`, sys.errno());
}

export function offloadNames(bits: number): string[] {
  return Object.entries(TUN_F)
    .filter(([, v]) => (bits & v) !== 0)
    .map(([k]) => k);
}

/** Delete a network interface (a persistent TUN a previous run left); never throws. */
export function deleteLink(dev: string): void {
  try {
    execFileSync('ip', ['link', 'del', dev], { stdio: 'ignore' });
  } catch {
    /* gone already */
  }
}
