/**
 * What the engine accepts but this data path cannot carry, refused when a rule set is validated
 * (at start, reload and every change), so nothing half-works:
 *   - tunnelling servers (-i) with --tun-type gue or gre: the data path encapsulates in IPIP only;
 *   - direct-routing servers (-g) and IPIP tunnelling servers (-i) when the data path cannot send them (`dr` says why: the TUN's
 *     way-out program or the flow map it reads is missing, e.g. --fast-path off), and servers
 *     that are not on a directly connected network of this host: DR sends the unchanged packet
 *     (destination the VIP) to the server's link-layer address, so a server behind a gateway
 *     would get nothing (IPVS accepts such a server and the packets loop), nor can the server be
 *     this host itself (IPVS's local node). IPIP servers are held to the same rule for now (the
 *     outer packet could be routed, but ulvs's way out sends to RIP's link-layer address only). Code ENETUNREACH: ipvsadm has no message of its own
 *     for it, so ulvsadm prints this one.
 * The routing check reads this host's routes (`ip route get`) now: a route that changes later is
 * the operator's (the data path then drops the packets, it never routes them by the VIP).
 */
import { IpvsError } from '../core/errors.js';
import { Fwd, FWD_NAMES, TunType } from '../core/service.js';
import type { Rules } from '../control/rules.js';
import { routeTo, type RouteTo } from '../datapath/tun/routing.js';
import { formatIPv4 } from '../wire/addr.js';

export interface DataPathCaps {
  /** why direct routing cannot be carried, null when it can */
  dr: string | null;
  /** how this host reaches an address (injected by tests) */
  route?: (addr: number) => RouteTo;
}

export function checkDataPath(r: Rules, caps: DataPathCaps): void {
  const route = caps.route ?? routeTo;
  const seen = new Map<number, RouteTo>();
  for (const x of r.dests) {
    const fwd = x.dest.fwd ?? Fwd.MASQ;
    if (fwd === Fwd.MASQ) continue;
    const server = `server ${formatIPv4(x.dest.addr >>> 0)}:${x.dest.port}, ${FWD_NAMES[fwd]}`;
    const tun = fwd === Fwd.TUNNEL;
    if (tun && (x.dest.tunType ?? TunType.IPIP) !== TunType.IPIP) throw new IpvsError('EOPNOTSUPP', `${x.dest.tunType === TunType.GUE ? 'GUE' : 'GRE'} tunnelling (--tun-type ${x.dest.tunType === TunType.GUE ? 'gue' : 'gre'}) is not supported by ulvs yet: its data path encapsulates in IP-in-IP only (${server}); use --tun-type ipip (the default), -g or -m`);
    if (fwd !== Fwd.DROUTE && !tun) throw new IpvsError('EOPNOTSUPP', `${FWD_NAMES[fwd]} forwarding is not supported by ulvs (${server}); use -m, -g or -i`);
    const what = tun ? 'IP-in-IP tunnelling (-i)' : 'Direct routing (-g, the method when none is given)';
    if (caps.dr !== null) throw new IpvsError('EOPNOTSUPP', `${what} is not available: ${caps.dr} (${server}); use -m`);
    let to = seen.get(x.dest.addr >>> 0);
    if (to === undefined) seen.set(x.dest.addr >>> 0, (to = route(x.dest.addr)));
    if (to.kind === 'onlink') continue;
    const why = to.kind === 'gateway' ? `it is reached through the gateway ${to.via} (dev ${to.dev})` : to.kind === 'local' ? 'it is an address of this host' : `there is no route to it (${to.error})`;
    throw new IpvsError('ENETUNREACH', `${tun ? 'IP-in-IP tunnelling (in ulvs, for now)' : 'Direct routing'} needs the real server on a directly connected network of the director: ${why} (${server}); use -m, or give the director an interface on the server's network`);
  }
}
