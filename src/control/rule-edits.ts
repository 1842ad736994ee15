/**
 * The ipvsadm commands as pure edits of a rule set: each takes the current rules and returns
 * the next ones, or throws the IpvsError ipvsadm would print (EEXIST, ESRCH, ENOENT) and
 * returns nothing. They are meant to run inside the control plane's serial section
 * (`ControlPlane.mutate`), so that each sees the rules every earlier command left; whether the
 * result is a valid configuration is the control plane's check, not theirs.
 */
import type { DestSpec, ServiceSpec } from '../core/director.js';
import { errors } from '../core/errors.js';
import type { ServiceKey } from '../core/service.js';
import type { Rules } from './rules.js';

type DestRule = Rules['dests'][number];

export const sameService = (a: ServiceKey, b: ServiceKey): boolean => a.proto === b.proto && a.addr >>> 0 === b.addr >>> 0 && a.port === b.port;
const sameDest = (x: DestRule, key: ServiceKey, addr: number, port: number) => sameService(x.service, key) && x.dest.addr >>> 0 === addr >>> 0 && x.dest.port === port;

export const hasService = (r: Rules, key: ServiceKey): boolean => r.services.some((s) => sameService(s, key));
export const hasDest = (r: Rules, key: ServiceKey, addr: number, port: number): boolean => r.dests.some((x) => sameDest(x, key, addr, port));

/** ipvsadm -A */
export function addService(r: Rules, spec: ServiceSpec): Rules {
  if (hasService(r, spec)) throw errors.serviceExists();
  return { services: [...r.services, spec], dests: r.dests };
}

/** ipvsadm -E: the service's settings replaced by `spec` (its key names the service). */
export function editService(r: Rules, spec: ServiceSpec): Rules {
  if (!hasService(r, spec)) throw errors.noService();
  return { services: r.services.map((s) => (sameService(s, spec) ? spec : s)), dests: r.dests };
}

/** ipvsadm -D: the service and its real servers. */
export function deleteService(r: Rules, key: ServiceKey): Rules {
  if (!hasService(r, key)) throw errors.noService();
  return { services: r.services.filter((s) => !sameService(s, key)), dests: r.dests.filter((x) => !sameService(x.service, key)) };
}

/** ipvsadm -a */
export function addDest(r: Rules, key: ServiceKey, dest: DestSpec): Rules {
  if (!hasService(r, key)) throw errors.serviceNotDefined();
  if (hasDest(r, key, dest.addr, dest.port)) throw errors.destExists();
  return { services: r.services, dests: [...r.dests, { service: key, dest }] };
}

/** ipvsadm -e: the server's settings replaced by `dest` (its address and port name the server). */
export function editDest(r: Rules, key: ServiceKey, dest: DestSpec): Rules {
  if (!hasService(r, key)) throw errors.serviceNotDefined();
  if (!hasDest(r, key, dest.addr, dest.port)) throw errors.noDest();
  return { services: r.services, dests: r.dests.map((x) => (sameDest(x, key, dest.addr, dest.port) ? { service: key, dest } : x)) };
}

/** ipvsadm -d */
export function deleteDest(r: Rules, key: ServiceKey, addr: number, port: number): Rules {
  if (!hasService(r, key)) throw errors.serviceNotDefined();
  if (!hasDest(r, key, addr, port)) throw errors.noDest();
  return { services: r.services, dests: r.dests.filter((x) => !sameDest(x, key, addr, port)) };
}
