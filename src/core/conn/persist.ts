/**
 * Persistence (ip_vs_sched_persist, ipvs-spec §2.5): a template per client network (the client
 * address under the service's netmask) and virtual port binds that network's connections to one
 * server for the service's timeout. A template whose server is gone or (with
 * expire_quiescent_template) quiesced no longer binds; it is invalidated and a new one made.
 */
import { ConnFlag, TICKS_PER_SEC } from '../conn-table.js';
import { UNBOUND_DEST_ID } from '../dest-registry.js';
import type { EngineState } from '../engine-state.js';
import { FWMARK_PROTO, type RealServer, type VirtualService } from '../service.js';
import { Event } from '../verdict.js';
import { checkOverload, EXPIRE_LATER_S, TABLE_FULL } from './lifecycle.js';

/** FTP's control port: its templates cover every port of the service (IPVS's ftp rule). */
const FTP_PORT = 21;

/** The template key's virtual port for a flow to `vport` of `svc`: the port, or 0 for all (a
 *  fwmark service's port is 0: its templates cover every port the mark takes). */
export function templatePort(svc: VirtualService, vport: number): number {
  return vport === svc.port && svc.port !== FTP_PORT ? vport : 0;
}

/** The template key's protocol and virtual address (ip_vs_sched_persist): those of the flow,
 *  or, for a fwmark service, IPPROTO_IP and the mark as the address, so one template binds the
 *  client network's flows of every protocol and address the mark takes (http and https). */
const templateProto = (svc: VirtualService, proto: number): number => (svc.proto === FWMARK_PROTO ? FWMARK_PROTO : proto);
const templateAddr = (svc: VirtualService, vaddr: number): number => (svc.proto === FWMARK_PROTO ? svc.addr | 0 : vaddr);

export class Persistence {
  readonly #s: EngineState;

  constructor(s: EngineState) {
    this.#s = s;
  }

  /** The template for client network `snet` (caddr & netmask) and this flow's virtual port,
   *  usable or not, or -1. Changes nothing. */
  lookup(svc: VirtualService, proto: number, snet: number, vaddr: number, vport: number): number {
    return this.#s.conns.findTemplate(templateProto(svc, proto), snet, templateAddr(svc, vaddr), templatePort(svc, vport));
  }

  /** ip_vs_check_template: the template's server still takes connections. */
  usable(t: number): boolean {
    const d = this.#s.dests.maybeById(this.#s.conns.dest(t));
    if (d === null || d.id === UNBOUND_DEST_ID || !d.available) return false; // a synced template without its server here
    return !(this.#s.sysctl.expireQuiescentTemplate && d.weight === 0);
  }

  /** Make unusable template t (-1: none) never match again. */
  invalidate(t: number): void {
    const conns = this.#s.conns;
    if (t >= 0 && conns.vport(t) !== 0xffff) {
      conns.setPorts(t, 0xffff, 0xffff);
      this.#s.events[Event.TemplatesInvalidated]!++;
    }
  }

  /** A new template binding network snet to server d. Returns its index, or TABLE_FULL. */
  create(svc: VirtualService, proto: number, snet: number, vaddr: number, vport: number, d: RealServer): number {
    const s = this.#s;
    const tvport = templatePort(svc, vport);
    const tdport = vport === svc.port && svc.port !== FTP_PORT ? d.port : 0;
    const t = s.conns.insert(templateProto(svc, proto), snet, 0, templateAddr(svc, vaddr), tvport, d.addr, tdport, d.id, ConnFlag.TEMPLATE, s.nowTick + svc.timeout * TICKS_PER_SEC, s.nowTick);
    if (t < 0) return TABLE_FULL;
    d.persistConns++;
    checkOverload(d);
    s.events[Event.TemplatesCreated]!++;
    return t;
  }

  /** ip_vs_conn_put(template): every use restarts the template's timer. */
  touch(t: number): void {
    const s = this.#s;
    const conns = s.conns;
    const ticks = (conns.flags(t) & ConnFlag.EXPIRE_LATER) !== 0 ? EXPIRE_LATER_S * TICKS_PER_SEC : s.dests.byId(conns.dest(t)).svc.timeout * TICKS_PER_SEC;
    conns.rearm(t, s.nowTick + ticks);
  }
}
