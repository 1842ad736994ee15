/**
 * The difference between two rule sets as director operations, so a reload applies only what
 * changed and leaves every untouched service, server and connection alone (issue 4, SIGHUP).
 * Identity: a service by (protocol, VIP, port), a server by (address, port) within it.
 * Order: deletions, then service additions/edits, then server additions/edits. Applied to a
 * director holding exactly `from`, after `to` validated on a scratch director, no operation
 * can fail.
 */
export { applyOps, type RuleOp };
import type { DestSpec, Director, ServiceSpec } from '../core/director.js';
import { applyOps, type RuleOp } from '../core/rule-ops.js';
import type { ServiceKey } from '../core/service.js';
import type { Rules } from './rules.js';

const skey = (k: ServiceKey) => `${k.proto}/${k.addr >>> 0}/${k.port}`;
const dkey = (k: ServiceKey, d: { addr: number; port: number }) => `${skey(k)}/${d.addr >>> 0}/${d.port}`;
const keyOf = (s: ServiceKey): ServiceKey => ({ proto: s.proto, addr: s.addr, port: s.port });
const svcSame = (a: ServiceSpec, b: ServiceSpec) =>
  (a.scheduler ?? 'wlc') === (b.scheduler ?? 'wlc') &&
  (a.persistent ?? 0) === (b.persistent ?? 0) &&
  (a.netmask ?? 0xffffffff) >>> 0 === (b.netmask ?? 0xffffffff) >>> 0 &&
  (a.schedFlags ?? 0) === (b.schedFlags ?? 0) &&
  !!a.ops === !!b.ops;
const destSame = (a: DestSpec, b: DestSpec) =>
  (a.weight ?? 1) === (b.weight ?? 1) &&
  (a.fwd ?? 0) === (b.fwd ?? 0) &&
  (a.tunType ?? 0) === (b.tunType ?? 0) &&
  (a.tunPort ?? 0) === (b.tunPort ?? 0) &&
  (a.tunFlags ?? 0) === (b.tunFlags ?? 0) &&
  (a.uThreshold ?? 0) === (b.uThreshold ?? 0) &&
  (a.lThreshold ?? 0) === (b.lThreshold ?? 0);

export function diffRules(from: Rules, to: Rules): RuleOp[] {
  const ops: RuleOp[] = [];
  const oldSvc = new Map(from.services.map((s) => [skey(s), s]));
  const newSvc = new Map(to.services.map((s) => [skey(s), s]));
  const oldDest = new Map(from.dests.map((x) => [dkey(x.service, x.dest), x]));
  const newDest = new Map(to.dests.map((x) => [dkey(x.service, x.dest), x]));
  for (const [k, x] of oldDest) if (!newDest.has(k) && newSvc.has(skey(x.service))) ops.push({ op: 'deleteDest', service: keyOf(x.service), addr: x.dest.addr, port: x.dest.port });
  for (const [k, s] of oldSvc) if (!newSvc.has(k)) ops.push({ op: 'deleteService', service: keyOf(s) });
  for (const [k, s] of newSvc) {
    const o = oldSvc.get(k);
    if (!o) ops.push({ op: 'addService', spec: s });
    else if (!svcSame(o, s)) ops.push({ op: 'editService', spec: s });
  }
  for (const [k, x] of newDest) {
    const o = oldDest.get(k);
    if (!o || !oldSvc.has(skey(x.service))) ops.push({ op: 'addDest', service: keyOf(x.service), dest: x.dest });
    else if (!destSame(o.dest, x.dest)) ops.push({ op: 'editDest', service: keyOf(x.service), dest: x.dest });
  }
  return ops;
}

/** Load a rule set into a fresh-state director (start-up, and validation on a scratch one). */
export function loadRules(d: Director, r: Rules): void {
  applyOps(d, diffRules({ services: [], dests: [] }, r));
}
