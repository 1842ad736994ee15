/**
 * The whole check of a complete rule set before ulvsd takes it (start, reload, API, health):
 * on a scratch engine (control-plane.ts validateOnScratch), against this host (`tc`: the capture
 * filters are, or at start will be, installed: checkHost) and against what the
 * data path can carry (`caps`: data-path-limits.ts). Throws the first refusal; changes nothing.
 */
import type { Rules } from '../control/rules.js';
import { validateOnScratch } from './control-plane.js';
import { checkDataPath, type DataPathCaps } from './data-path-limits.js';
import { IpvsError } from '../core/errors.js';
import { isFwmarkKey } from '../core/service.js';
import { isLocalAddress } from '../datapath/tun/routing.js';
import { formatIPv4 } from '../wire/addr.js';

export function validateRules(r: Rules, tc: boolean, caps: DataPathCaps): void {
  validateOnScratch(r);
  checkHost(r, tc);
  checkDataPath(r, caps);
}

/**
 * Refuse a rule set this host cannot serve. A VIP may be a local address (keepalived's VRRP
 * puts it there) only while the tc capture is installed (`capturedByTc`): the capture filters
 * take its service ports before the IP stack, whereas the policy rules alone come after the
 * kernel's `local` table (rule 0), which would deliver them to this host's sockets (a reset, no
 * service). A VIP that becomes local later without the capture gets a warning (daemon.ts).
 */
export function checkHost(r: Rules, capturedByTc: boolean): void {
  if (capturedByTc) return;
  for (const s of r.services) {
    if (!isFwmarkKey(s) && isLocalAddress(s.addr)) // a fwmark service has no VIP of its own
      throw new IpvsError('EINVAL', `VIP ${formatIPv4(s.addr)} is a local address here and service traffic is not captured by tc (--capture rules, or tc unavailable): the kernel's local table would deliver it to this host before ulvs's policy rules; a local VIP needs --capture tc`);
  }
}
