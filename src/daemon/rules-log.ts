/**
 * The services and real servers of a rule set, one log line each, at start (kernel-setup.ts).
 */
import type { Rules } from '../control/rules.js';
import { FWD_NAMES, isFwmarkKey, type ServiceKey } from '../core/service.js';
import { formatIPv4 } from '../wire/addr.js';
import type { DaemonLog } from './log.js';

/** `TCP 203.0.113.10:80`, or `FWM 1` for a fwmark service. */
export const serviceName = (s: ServiceKey): string => (isFwmarkKey(s) ? `FWM ${s.addr >>> 0}` : `${s.proto === 6 ? 'TCP' : 'UDP'} ${formatIPv4(s.addr)}:${s.port}`);

export function logRules(log: DaemonLog, rules: Rules): void {
  for (const s of rules.services) {
    const vip = isFwmarkKey(s) ? `fwmark ${s.addr >>> 0}` : `${formatIPv4(s.addr)}:${s.port}`;
    log.info(`${isFwmarkKey(s) ? 'service' : 'VIP'} ${serviceName(s)} scheduler ${s.scheduler ?? 'wlc'}${s.persistent ? ` persistent ${s.persistent}` : ''}`, 'startup', { vip });
  }
  for (const x of rules.dests)
    log.info(`  real server ${formatIPv4(x.dest.addr)}:${x.dest.port} for ${isFwmarkKey(x.service) ? serviceName(x.service) : `${formatIPv4(x.service.addr)}:${x.service.port}`} (${FWD_NAMES[x.dest.fwd ?? 0]}, weight ${x.dest.weight ?? 1})`, 'startup', { server: `${formatIPv4(x.dest.addr)}:${x.dest.port}` });
}
