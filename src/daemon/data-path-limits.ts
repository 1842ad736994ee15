/**
 * What the engine accepts but this data path cannot carry, refused when a rule set is validated
 * (at start, reload and every change), so nothing half-works:
 *   - tunnelling servers (-i) with a checksummed tunnel (--tun-csum for gue and gre,
 *     --tun-remcsum for gue): the data path encapsulates IPIP, GUE and GRE without checksums
 *     (--tun-nocsum, the default; bpf/ulvs_net.h tun_encap);
 *   - direct-routing (-g) and tunnelling (-i) servers when the data path cannot send them (`dr`
 *     says why: the TUN's way-out program or the flow map it reads is missing, e.g.
 *     --fast-path off);
 *   - direct-routing servers that are not on a directly connected network of this host: DR
 *     sends the unchanged packet (destination the VIP) to the server's link-layer address, so a
 *     server behind a gateway would get nothing (IPVS accepts such a server and the packets
 *     loop), nor can the server be this host itself (IPVS's local node);
 *   - tunnelling servers without a route from this host, or that are this host: the outer
 *     packet is an ordinary routed one, so a server behind a gateway is fine (the data path
 *     sends it to the gateway), but ulvs has no local delivery of tunnelled packets.
 *   - firewall-mark services (-f) when the TUN's egress program that notes packets' marks
 *     (bpf/tun_mark.bpf.c) is missing (`fwmark` says why): the engine would never see a mark.
 * Route refusals have code ENETUNREACH: ipvsadm has no message of its own for them, so ulvsadm
 * prints this one. The routing check reads this host's routes (`ip route get`) now: a route
 * that changes later is the operator's (the data path then drops the packets, it never routes
 * a DR packet by the VIP).
 */
import { IpvsError } from '../core/errors.js';
import { Fwd, FWD_NAMES, isFwmarkKey, TUN_FLAG_NAMES, TUN_TYPE_NAMES, TunFlags, TunType } from '../core/service.js';
import type { Rules } from '../control/rules.js';
import { routeTo, type RouteTo } from '../datapath/tun/routing.js';
import { formatIPv4 } from '../wire/addr.js';

export interface DataPathCaps {
  /** why direct routing and tunnelling cannot be carried, null when they can */
  dr: string | null;
  /** why firewall-mark services cannot be carried, null (or absent) when they can */
  fwmark?: string | null;
  /** how this host reaches an address (injected by tests) */
  route?: (addr: number) => RouteTo;
}

export function checkDataPath(r: Rules, caps: DataPathCaps): void {
  const route = caps.route ?? routeTo;
  const seen = new Map<number, RouteTo>();
  const fwm = r.services.find(isFwmarkKey);
  if (fwm && caps.fwmark) throw new IpvsError('EOPNOTSUPP', `Firewall-mark services are not available: ${caps.fwmark} (FWM ${fwm.addr >>> 0})`);
  for (const x of r.dests) {
    const fwd = x.dest.fwd ?? Fwd.MASQ;
    if (fwd === Fwd.MASQ) continue;
    const server = `server ${formatIPv4(x.dest.addr >>> 0)}:${x.dest.port}, ${FWD_NAMES[fwd]}`;
    const tun = fwd === Fwd.TUNNEL;
    if (fwd !== Fwd.DROUTE && !tun) throw new IpvsError('EOPNOTSUPP', `${FWD_NAMES[fwd]} forwarding is not supported by ulvs (${server}); use -m, -g or -i`);
    const type = TUN_TYPE_NAMES[x.dest.tunType ?? TunType.IPIP] ?? 'ipip';
    const flags = x.dest.tunFlags ?? TunFlags.NOCSUM;
    if (tun && flags !== TunFlags.NOCSUM) throw new IpvsError('EOPNOTSUPP', `checksummed ${type.toUpperCase()} tunnels (--tun-${TUN_FLAG_NAMES[flags] ?? flags}) are not supported by ulvs: its data path encapsulates without tunnel checksums (${server}); use --tun-nocsum (the default)`);
    const what = !tun ? 'Direct routing (-g, the method when none is given)' : type === 'ipip' ? 'IP-in-IP tunnelling (-i)' : `${type.toUpperCase()} tunnelling (-i --tun-type ${type})`;
    if (caps.dr !== null) throw new IpvsError('EOPNOTSUPP', `${what} is not available: ${caps.dr} (${server}); use -m`);
    let to = seen.get(x.dest.addr >>> 0);
    if (to === undefined) seen.set(x.dest.addr >>> 0, (to = route(x.dest.addr)));
    if (to.kind === 'onlink' || (tun && to.kind === 'gateway')) continue;
    const why = to.kind === 'gateway' ? `it is reached through the gateway ${to.via} (dev ${to.dev})` : to.kind === 'local' ? 'it is an address of this host' : `there is no route to it (${to.error})`;
    if (tun) throw new IpvsError('ENETUNREACH', `Tunnelling needs a route from the director to the real server (directly connected or through a gateway): ${why} (${server}); use -m, or add a route`);
    throw new IpvsError('ENETUNREACH', `Direct routing needs the real server on a directly connected network of the director: ${why} (${server}); use -m or -i (tunnelling may cross routers), or give the director an interface on the server's network`);
  }
}
