/**
 * Virtual services (ip_vs_ctl.c: ip_vs_add_service, ip_vs_edit_service, ip_vs_del_service,
 * ip_vs_flush): each request is validated whole before anything changes, so a refused one
 * changes nothing (IpvsError with IPVS's errno and ipvsadm's text). After every change the
 * service index is rebuilt and swapped in whole; the packet path never sees a half-built one.
 * Inside a batch (`batch`, used by rule-ops.ts applyOps for a whole rules load or change) the
 * index is rebuilt once, at its end: one rebuild per service made loading n services O(n^2)
 * (16,000 services: 3 s; 65,537: over a minute before the slots' refusal). No packet is processed
 * during a batch (the engine is single-threaded and a batch is synchronous).
 */
import type { Decider } from '../decide.js';
import type { DestRegistry } from '../dest-registry.js';
import { errors, IpvsError } from '../errors.js';
import { SLOT_INTS } from '../sched-state.js';
import type { SchedulerEnv, SchedulerRegistry } from '../scheduler.js';
import { ServiceIndex } from '../service-index.js';
import { FWMARK_MAX, FWMARK_PROTO, SPEC_SCHED_FLAGS, SvcFlag, VirtualService, type ServiceKey } from '../service.js';
import { MAX_TIMEOUT_S } from '../timeouts.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../../wire/ipv4.js';
import { isIntIn, type ServiceSpec } from './specs.js';

const IPPROTO_SCTP = 132;
const keyString = (k: ServiceKey): string => `${k.proto}/${k.addr >>> 0}/${k.port}`;
/** IP_VS_SCHEDNAME_MAXLEN - 1 */
const SCHED_NAME_MAX = 15;

export class ServiceTable {
  #services: VirtualService[] = [];
  /** batch depth; while > 0 the index is rebuilt only when the outermost batch ends */
  #batch = 0;
  /** in a batch: the index is stale, `get` looks in #byKey; services deleted, not yet filtered out */
  #dirty = false;
  readonly #byKey = new Map<string, VirtualService>();
  readonly #removed = new Set<VirtualService>();
  readonly #registry: SchedulerRegistry;
  readonly #env: SchedulerEnv;
  readonly #decider: Decider;
  readonly #dests: DestRegistry;
  /** number of shared scheduler-state slots (0: none shared) */
  readonly #sharedSlots: number;

  constructor(registry: SchedulerRegistry, env: SchedulerEnv, decider: Decider, dests: DestRegistry, shared: Int32Array | null) {
    this.#registry = registry;
    this.#env = env;
    this.#decider = decider;
    this.#dests = dests;
    this.#sharedSlots = shared === null ? 0 : Math.floor(shared.length / SLOT_INTS);
  }

  get list(): readonly VirtualService[] {
    this.#compact();
    return this.#services;
  }

  get(k: ServiceKey): VirtualService | null {
    if (this.#dirty) return this.#byKey.get(keyString(k)) ?? null;
    return this.#decider.index.get(k.proto, k.addr, k.port);
  }

  /** Run `f` (a sequence of add/edit/delete/clear) with one index rebuild at its end, also when
   *  it throws (the changes made before the throw stay, as without a batch). */
  batch<T>(f: () => T): T {
    if (this.#batch++ === 0) {
      this.#services = [...this.#services]; // appended to in place below: the index's own list stays as it was
      this.#byKey.clear();
      for (const v of this.#services) this.#byKey.set(keyString(v), v);
    }
    try {
      return f();
    } finally {
      if (--this.#batch === 0 && this.#dirty) {
        this.#dirty = false;
        this.#compact();
        this.#byKey.clear();
        this.#decider.index = new ServiceIndex(this.#services);
      }
    }
  }

  add(spec: ServiceSpec): VirtualService {
    const v = this.#validate(spec);
    if (this.get(spec) !== null) throw errors.serviceExists();
    const svc = new VirtualService(spec.proto, spec.addr, spec.port, v.scheduler);
    svc.flags = v.flags;
    svc.timeout = v.timeout;
    svc.netmask = v.netmask;
    svc.stateSlot = v.stateSlot;
    svc.sched = v.factory(svc, this.#env);
    if (this.#batch > 0) {
      this.#services.push(svc);
      this.#byKey.set(keyString(svc), svc);
      this.#dirty = true;
    } else this.#replace([...this.#services, svc]);
    return svc;
  }

  /** ipvsadm -E: replaces scheduler, flags, timeout and netmask (what is not given resets). */
  edit(spec: ServiceSpec): VirtualService {
    const svc = this.get(spec);
    if (svc === null) throw errors.noService();
    const v = this.#validate(spec);
    if (v.scheduler !== svc.schedName) {
      svc.sched?.done?.();
      svc.schedName = v.scheduler;
      svc.stateSlot = v.stateSlot;
      svc.sched = v.factory(svc, this.#env);
    }
    svc.flags = v.flags;
    svc.timeout = v.timeout;
    svc.netmask = v.netmask;
    return svc;
  }

  delete(k: ServiceKey): void {
    const svc = this.get(k);
    if (svc === null) throw errors.noService();
    this.#drop(svc);
    if (this.#batch > 0) {
      this.#removed.add(svc);
      this.#byKey.delete(keyString(svc));
      this.#dirty = true;
    } else this.#replace(this.#services.filter((s) => s !== svc));
  }

  /** ipvsadm -C: delete every service (connections stay and expire; their packets drop). */
  clear(): void {
    for (const s of this.list) this.#drop(s);
    if (this.#batch > 0) {
      this.#services = [];
      this.#byKey.clear();
      this.#dirty = true;
    } else this.#replace([]);
  }

  #replace(list: VirtualService[]): void {
    this.#services = list;
    this.#decider.index = new ServiceIndex(list);
  }

  /** Filter out the services a batch deleted (once, however many). */
  #compact(): void {
    if (this.#removed.size === 0) return;
    this.#services = this.#services.filter((s) => !this.#removed.has(s));
    this.#removed.clear();
  }

  #drop(svc: VirtualService): void {
    svc.sched?.done?.();
    svc.sched = null;
    for (const d of svc.dests) this.#dests.retire(d);
    svc.dests = [];
  }

  #validate(spec: ServiceSpec) {
    const fwmark = spec.proto === FWMARK_PROTO;
    if (spec.proto !== IPPROTO_TCP && spec.proto !== IPPROTO_UDP && !fwmark)
      throw spec.proto === IPPROTO_SCTP ? errors.notSupported('SCTP') : errors.invalid(`protocol ${String(spec.proto)}`);
    if (fwmark) {
      // the key <0, mark, 0> (service.ts): ipvsadm refuses mark 0 (`invalid fwmark value`), and
      // a fwmark service has no address or port of its own
      if (!isIntIn(spec.addr, 1, FWMARK_MAX)) throw new IpvsError('EINVAL', `invalid fwmark value \`${String(spec.addr)}' specified`);
      if (spec.port !== 0) throw new IpvsError('EINVAL', 'a firewall-mark service has no port');
    }
    if (!isIntIn(spec.addr, 0, 0xffffffff)) throw errors.invalid('virtual address');
    if (!isIntIn(spec.port, 0, 65535)) throw errors.invalid('virtual port');
    const persistent = spec.persistent ?? 0;
    if (!isIntIn(persistent, 0, MAX_TIMEOUT_S)) throw errors.invalid('persistence timeout must be 1..2678400 seconds');
    if (spec.port === 0 && persistent === 0 && !fwmark) throw new IpvsError('EINVAL', 'Zero port specified for non-persistent service');
    const netmask = spec.netmask ?? 0xffffffff;
    if (!isIntIn(netmask, 0, 0xffffffff)) throw errors.invalid('netmask');
    const schedFlags = spec.schedFlags ?? 0;
    if (!isIntIn(schedFlags, 0, 0xffff) || (schedFlags & ~SPEC_SCHED_FLAGS) !== 0) throw errors.invalid('scheduler flags');
    if (spec.ops && spec.proto !== IPPROTO_UDP && !fwmark) throw new IpvsError('EINVAL', 'One-Packet Scheduling is only for UDP virtual services');
    const scheduler = spec.scheduler ?? 'wlc';
    if (typeof scheduler !== 'string' || scheduler.length > SCHED_NAME_MAX) throw errors.schedNotFound();
    const factory = this.#registry.get(scheduler);
    if (!factory) throw errors.schedNotFound();
    let stateSlot = -1;
    if (this.#sharedSlots > 0 && spec.stateSlot !== undefined) {
      if (!isIntIn(spec.stateSlot, 0, this.#sharedSlots - 1)) throw errors.invalid('scheduler state slot');
      stateSlot = spec.stateSlot;
    }
    let flags = schedFlags;
    if (persistent > 0) flags |= SvcFlag.PERSISTENT;
    if (spec.ops) flags |= SvcFlag.ONEPACKET;
    return { scheduler, factory, flags, timeout: persistent, netmask: netmask >>> 0, stateSlot };
  }
}
