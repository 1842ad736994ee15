/**
 * What the engine accepts but this data path cannot carry yet, refused when a rule set is
 * validated (at start, reload and every change), so nothing half-works: the engine knows direct
 * routing and tunnelling servers (core/ctl/dests.ts: input-only state, no reply rewrite), but the
 * TUN data path can only send packets on by routing them, which for DR and TUN would deliver
 * them to the VIP instead of the real server's link-layer address or a tunnel.
 */
import { IpvsError } from '../core/errors.js';
import { Fwd, FWD_NAMES } from '../core/service.js';
import type { Rules } from '../control/rules.js';
import { formatIPv4 } from '../wire/addr.js';

export function checkDataPath(r: Rules): void {
  for (const x of r.dests) {
    const fwd = x.dest.fwd ?? Fwd.MASQ;
    if (fwd === Fwd.MASQ) continue;
    const method = fwd === Fwd.DROUTE ? 'Direct routing (-g, the method when none is given)' : 'IP-in-IP tunnelling (-i)';
    throw new IpvsError(
      'EOPNOTSUPP',
      `${method} is not supported by ulvs yet: its data path forwards masqueraded connections only (server ${formatIPv4(x.dest.addr >>> 0)}:${x.dest.port}, ${FWD_NAMES[fwd]}); use -m`,
    );
  }
}
