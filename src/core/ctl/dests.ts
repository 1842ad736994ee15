/**
 * Real servers of a service (ip_vs_ctl.c: ip_vs_add_dest, ip_vs_edit_dest, ip_vs_del_dest).
 * Validated whole first; a deleted server still referenced by connections goes to the trash
 * (dest-registry.ts) and re-adding it revives it with its counters. The scheduler hears of each
 * change after `svc.dests` has it (kernel list order: newest first).
 */
import type { DestRegistry } from '../dest-registry.js';
import { MAX_DEST_ID } from '../dest-registry.js';
import { errors } from '../errors.js';
import { Fwd, RealServer, type ServiceKey } from '../service.js';
import type { ServiceTable } from './services.js';
import { isIntIn, type DestSpec } from './specs.js';

interface ValidDest {
  weight: number;
  fwd: number;
  u: number;
  l: number;
}

export class DestTable {
  readonly #services: ServiceTable;
  readonly #reg: DestRegistry;

  constructor(services: ServiceTable, reg: DestRegistry) {
    this.#services = services;
    this.#reg = reg;
  }

  add(k: ServiceKey, spec: DestSpec): RealServer {
    const svc = this.#services.get(k);
    if (svc === null) throw errors.serviceNotDefined();
    const v = validate(spec);
    if (svc.dests.some((d) => d.addr === spec.addr && d.port === spec.port)) throw errors.destExists();
    let d = this.#reg.revive(svc, spec.addr, spec.port);
    if (d === null) {
      const id = this.#reg.takeId();
      if (id === undefined) throw errors.tooMany(`too many real servers (at most ${MAX_DEST_ID})`);
      d = new RealServer(id, svc, spec.addr, spec.port);
      d.lastWeight = 0;
      this.#reg.register(d);
    }
    d.seq = ++svc.added;
    update(d, v);
    svc.dests = [d, ...svc.dests];
    svc.sched?.onDestAdded?.(svc, d);
    return d;
  }

  /** ipvsadm -e: replaces weight, thresholds and method. */
  edit(k: ServiceKey, spec: DestSpec): RealServer {
    const svc = this.#services.get(k);
    if (svc === null) throw errors.serviceNotDefined();
    const v = validate(spec);
    const d = svc.dests.find((x) => x.addr === spec.addr && x.port === spec.port);
    if (!d) throw errors.noDest();
    update(d, v);
    svc.sched?.onDestUpdated?.(svc, d);
    return d;
  }

  delete(k: ServiceKey, addr: number, port: number): void {
    const svc = this.#services.get(k);
    if (svc === null) throw errors.serviceNotDefined();
    const idx = svc.dests.findIndex((x) => x.addr === addr && x.port === port);
    if (idx < 0) throw errors.noDest();
    const d = svc.dests[idx]!;
    svc.dests = svc.dests.filter((x) => x !== d);
    svc.sched?.onDestRemoved?.(svc, d, idx);
    this.#reg.retire(d);
  }
}

function validate(spec: DestSpec): ValidDest {
  if (!isIntIn(spec.addr, 1, 0xffffffff)) throw errors.invalid('real server address');
  const a = spec.addr >>> 0;
  if (a >>> 28 >= 0xe || a === 0xffffffff) throw errors.invalid('real server address is not unicast');
  if (!isIntIn(spec.port, 0, 65535)) throw errors.invalid('real server port');
  const weight = spec.weight ?? 1;
  if (!isIntIn(weight, 0, 65535)) throw errors.range('weight must be 0..65535');
  const fwd = spec.fwd ?? Fwd.MASQ;
  if (fwd !== Fwd.MASQ) {
    if (fwd === Fwd.DROUTE) throw errors.notSupported('Direct routing (-g, the method when none is given; use -m)');
    if (fwd === Fwd.TUNNEL) throw errors.notSupported('IP-in-IP tunnelling (-i; use -m)');
    throw errors.invalid('forwarding method');
  }
  const u = spec.uThreshold ?? 0;
  const l = spec.lThreshold ?? 0;
  if (!isIntIn(u, 0, 0x7fffffff) || !isIntIn(l, 0, 0x7fffffff)) throw errors.range('thresholds must be 0..2147483647');
  if (l > u) throw errors.range('lower threshold above upper threshold');
  return { weight, fwd, u, l };
}

/** __ip_vs_update_dest */
function update(d: RealServer, v: ValidDest): void {
  d.fwd = v.fwd;
  d.weight = v.weight;
  if (v.weight > 0) d.lastWeight = v.weight;
  if (v.u === 0 || v.u > d.uThreshold) d.overloaded = false;
  d.uThreshold = v.u;
  d.lThreshold = v.l;
}
