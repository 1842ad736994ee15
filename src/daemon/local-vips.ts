/**
 * Which VIPs are local addresses of this host, followed while ulvsd runs (keepalived adds a VIP
 * on becoming VRRP master and removes it on leaving; an operator may `ip addr add` one on `lo`).
 * ulvs serves a VIP the same whether it is local or not (the tc capture does not look at it);
 * what depends on it is where stray TCP segments go (core/director.ts strayTcp 'local': the
 * engines get the host's address list) and what the log says.
 *
 *   poll(vips, addrs?)  the host's IPv4 addresses (`addrs`, else one `ip -4 -o addr` through
 *                `read`), and what changed since the previous call: whether the address list changed, and
 *                which of `vips` became local or stopped being local. Throws when the read does.
 *   addrs        the address list of the last poll (uint32, sorted)
 *   logLocalChange(ch, tc, log)   the log lines for the VIPs that became or stopped being local
 */
import { hostAddresses } from '../datapath/tun/routing.js';
import { formatIPv4 } from '../wire/addr.js';
import type { DaemonLog } from './log.js';

export interface LocalChange {
  /** the host's address list differs from the previous poll's */
  addrsChanged: boolean;
  /** VIPs local now that were not at the previous poll (or were not VIPs then) */
  appeared: number[];
  /** VIPs that were local at the previous poll and are not now (or are no VIPs any more) */
  gone: number[];
}

export class LocalAddresses {
  #addrs: number[] = [];
  #local = new Set<number>();

  constructor(readonly read: () => number[] = () => hostAddresses().map((a) => a.addr)) {}

  get addrs(): number[] {
    return this.#addrs;
  }

  /** VIPs local at the last poll */
  get localVips(): number[] {
    return [...this.#local];
  }

  poll(vips: Iterable<number>, host: number[] = this.read()): LocalChange {
    const addrs = [...new Set(host.map((a) => a >>> 0))].sort((a, b) => a - b);
    const addrsChanged = addrs.length !== this.#addrs.length || addrs.some((a, i) => a !== this.#addrs[i]);
    const have = new Set(addrs);
    const local = new Set([...vips].map((v) => v >>> 0).filter((v) => have.has(v)));
    const appeared = [...local].filter((v) => !this.#local.has(v));
    const gone = [...this.#local].filter((v) => !local.has(v));
    this.#addrs = addrs;
    this.#local = local;
    return { addrsChanged, appeared, gone };
  }
}

/** Log the VIPs that became local or stopped being local (`tc`: the tc capture is in place). */
export function logLocalChange(ch: LocalChange, tc: boolean, log: Pick<DaemonLog, 'info' | 'warn'>): void {
  for (const v of ch.appeared) {
    const vip = formatIPv4(v);
    if (tc) log.info(`VIP ${vip} is a local address: its service ports are captured by tc before the local stack, its other ports and pings reach this host`, 'daemon', { vip });
    else log.warn(`VIP ${vip} became a local address, but service traffic is not captured by tc: the kernel delivers it to this host's stack instead of the real servers (a local VIP needs --capture tc)`, 'daemon', { vip });
  }
  for (const v of ch.gone) log.info(`VIP ${formatIPv4(v)} is no longer a local address; service continues for traffic routed to this host`, 'daemon', { vip: formatIPv4(v) });
}
