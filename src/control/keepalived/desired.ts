/**
 * From keepalived configuration and health to the rules the director runs (ecosystem.md §1.6):
 * an alive real server is in the service with its weight (or its MISC_CHECK dynamic weight); a
 * dead one is removed, or kept at weight 0 with inhibit_on_failure. Quorum: the summed weight
 * of alive servers must reach `quorum + hysteresis` to gain it and stays while it is at least
 * `quorum - hysteresis`; without quorum and with a sorry_server, every real server is pulled
 * and the sorry server takes the service alone.
 */
import type { DestSpec, ServiceSpec } from '../../core/director.js';
import { FWMARK_PROTO, type ServiceKey } from '../../core/service.js';
import type { ServerHealth } from '../../health/monitor.js';
import type { Rules } from '../rules.js';
import type { KeepalivedConfig, RealServerConfig, VirtualServerConfig } from './config.js';

export const vsKey = (v: VirtualServerConfig) => `${v.proto}/${v.addr >>> 0}/${v.port}`;
export const rsKey = (v: VirtualServerConfig, r: RealServerConfig) => `${vsKey(v)}>${r.addr >>> 0}/${r.port}`;

export interface QuorumChange {
  vs: VirtualServerConfig;
  up: boolean;
  weight: number;
}

export function desiredRules(cfg: KeepalivedConfig, health: (key: string) => ServerHealth | undefined, quorum: Map<string, boolean>): { rules: Rules; changes: QuorumChange[] } {
  const rules: Rules = { services: [], dests: [] };
  const changes: QuorumChange[] = [];
  for (const v of cfg.services) {
    const spec: ServiceSpec = { proto: v.proto, addr: v.addr, port: v.port, scheduler: v.scheduler, persistent: v.persistent, schedFlags: v.schedFlags, ops: v.ops };
    if (v.netmask !== undefined) spec.netmask = v.netmask;
    rules.services.push(spec);
    const key: ServiceKey = { proto: v.proto, addr: v.addr, port: v.port };
    const states = v.realServers.map((r) => {
      const h = health(rsKey(v, r));
      return { r, alive: h?.alive ?? true, weight: h?.dynamicWeight ?? r.weight };
    });
    const sum = states.reduce((n, s) => n + (s.alive ? s.weight : 0), 0);
    const k = vsKey(v);
    const prev = quorum.get(k);
    const up = prev === undefined ? sum >= v.quorum : prev ? sum >= v.quorum - v.hysteresis : sum >= v.quorum + v.hysteresis;
    if (prev !== undefined && prev !== up) changes.push({ vs: v, up, weight: sum });
    quorum.set(k, up);
    // a real server's own lvs_method, else its virtual server's (the sorry server: NAT)
    const dest = (addr: number, port: number, weight: number, r?: RealServerConfig): DestSpec => {
      const m = r ? (r.method ?? v.method) : { fwd: 0, tunType: 0, tunPort: 0, tunFlags: 0 };
      // DR/TUN: the service port (a fwmark service has none: the server's own, as keepalived gives it)
      return { addr, port: m.fwd === 0 || v.proto === FWMARK_PROTO ? port : v.port, weight, fwd: m.fwd, tunType: m.tunType, tunPort: m.tunPort, tunFlags: m.tunFlags, uThreshold: r?.uThreshold ?? 0, lThreshold: r?.lThreshold ?? 0 };
    };
    if (!up && v.sorryServer) {
      rules.dests.push({ service: key, dest: dest(v.sorryServer.addr, v.sorryServer.port || v.port, 1) });
      continue;
    }
    for (const s of states) {
      if (s.alive) rules.dests.push({ service: key, dest: dest(s.r.addr, s.r.port, s.weight, s.r) });
      else if (s.r.inhibitOnFailure) rules.dests.push({ service: key, dest: dest(s.r.addr, s.r.port, 0, s.r) });
    }
  }
  return { rules, changes };
}

/**
 * The scripts keepalived runs at shutdown for virtual servers with `omega`: notify_down of every
 * real server that is still alive, then quorum_down if the service held its quorum. Services
 * without omega run nothing (keepalived's default). Order: per virtual server, in file order.
 */
export function omegaScripts(cfg: KeepalivedConfig, health: (key: string) => ServerHealth | undefined, quorum: Map<string, boolean>): string[] {
  const out: string[] = [];
  for (const v of cfg.services) {
    if (!v.omega) continue;
    for (const r of v.realServers) if ((health(rsKey(v, r))?.alive ?? true) && r.notifyDown) out.push(r.notifyDown);
    if ((quorum.get(vsKey(v)) ?? true) && v.quorumDown) out.push(v.quorumDown);
  }
  return out;
}
