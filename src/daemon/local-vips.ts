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
 */
import { hostAddresses } from '../datapath/tun/routing.js';

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
