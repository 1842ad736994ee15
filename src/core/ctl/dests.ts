/**
 * Real servers of a service (ip_vs_ctl.c: ip_vs_add_dest, ip_vs_edit_dest, ip_vs_del_dest).
 * Validated whole first; a deleted server still referenced by connections goes to the trash
 * (dest-registry.ts) and re-adding it revives it with its counters. The scheduler hears of each
 * change after `svc.dests` has it (kernel list order: newest first).
 */
import type { DestRegistry } from '../dest-registry.js';
import { MAX_DEST_ID } from '../dest-registry.js';
import { errors } from '../errors.js';
import { Fwd, FWD_NAMES, RealServer, TUN_TYPE_NAMES, TunFlags, TunType, type ServiceKey, type VirtualService } from '../service.js';
import type { ServiceTable } from './services.js';
import { isIntIn, type DestSpec } from './specs.js';

interface ValidDest {
  weight: number;
  fwd: number;
  tunType: number;
  tunPort: number;
  tunFlags: number;
  u: number;
  l: number;
}

/** Which checksum modes each tunnel type takes (ipvsadm's tunnel_types_v_options). */
const TUN_FLAGS_ALLOWED: readonly (readonly number[])[] = [
  [TunFlags.NOCSUM], // ipip: none to choose
  [TunFlags.NOCSUM, TunFlags.CSUM, TunFlags.REMCSUM], // gue
  [TunFlags.NOCSUM, TunFlags.CSUM], // gre
];

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
    const v = validate(spec, svc);
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
    const v = validate(spec, svc);
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

/** Check a whole request for a server of `svc` (throws IpvsError; changes nothing). */
function validate(spec: DestSpec, svc: VirtualService): ValidDest {
  if (!isIntIn(spec.addr, 1, 0xffffffff)) throw errors.invalid('real server address');
  const a = spec.addr >>> 0;
  if (a >>> 28 >= 0xe || a === 0xffffffff) throw errors.invalid('real server address is not unicast');
  if (!isIntIn(spec.port, 0, 65535)) throw errors.invalid('real server port');
  const weight = spec.weight ?? 1;
  if (!isIntIn(weight, 0, 65535)) throw errors.range('weight must be 0..65535');
  const fwd = spec.fwd ?? Fwd.MASQ;
  if (fwd === Fwd.LOCALNODE) throw errors.notSupported('Local node forwarding');
  if (fwd !== Fwd.MASQ && fwd !== Fwd.DROUTE && fwd !== Fwd.TUNNEL) throw errors.invalid('forwarding method');
  // DR and TUN leave the packet's destination port alone (ipvsadm sets the service port itself;
  // a fwmark service has none: its DR/TUN servers keep the port they were given, unused)
  if (fwd !== Fwd.MASQ && spec.port !== svc.port && svc.fwmark === 0)
    throw errors.invalid(`a ${FWD_NAMES[fwd]} server keeps the service port: ${spec.port} is not ${svc.port} (only masquerading maps ports)`);
  const tunType = spec.tunType ?? TunType.IPIP;
  const tunPort = spec.tunPort ?? 0;
  const tunFlags = spec.tunFlags ?? TunFlags.NOCSUM;
  if (fwd !== Fwd.TUNNEL) {
    if (tunType !== TunType.IPIP || tunPort !== 0 || tunFlags !== TunFlags.NOCSUM) throw errors.invalid('Tunnel options conflict with forward method');
  } else {
    if (!isIntIn(tunType, 0, TUN_TYPE_NAMES.length - 1)) throw errors.invalid('tunnel type');
    const name = TUN_TYPE_NAMES[tunType]!;
    if (!isIntIn(tunPort, 0, 65535)) throw errors.invalid('tunnel port');
    if (tunType === TunType.GUE ? tunPort === 0 : tunPort !== 0) throw errors.invalid(tunType === TunType.GUE ? 'a gue tunnel needs its port' : `a ${name} tunnel has no port`);
    if (!TUN_FLAGS_ALLOWED[tunType]!.includes(tunFlags)) throw errors.invalid(`checksum option for a ${name} tunnel`);
  }
  const u = spec.uThreshold ?? 0;
  const l = spec.lThreshold ?? 0;
  if (!isIntIn(u, 0, 0x7fffffff) || !isIntIn(l, 0, 0x7fffffff)) throw errors.range('thresholds must be 0..2147483647');
  if (l > u) throw errors.range('lower threshold above upper threshold');
  return { weight, fwd, tunType, tunPort, tunFlags, u, l };
}

/** __ip_vs_update_dest */
function update(d: RealServer, v: ValidDest): void {
  d.fwd = v.fwd;
  d.tunType = v.tunType;
  d.tunPort = v.tunPort;
  d.tunFlags = v.tunFlags;
  d.weight = v.weight;
  if (v.weight > 0) d.lastWeight = v.weight;
  if (v.u === 0 || v.u > d.uThreshold) d.overloaded = false;
  d.uThreshold = v.u;
  d.lThreshold = v.l;
}
