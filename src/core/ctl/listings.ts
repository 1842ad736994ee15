/**
 * What the engine shows (ip_vs_ctl.c's listings and /proc/net/ip_vs*): the connection table as
 * ipvsadm -L -c prints it, and services, servers and counters as plain structured-clone-safe data
 * that crosses worker boundaries (snapshot-merge.ts adds several engines' together).
 */
import { ConnFlag, TICK_MS } from '../conn-table.js';
import type { EngineState } from '../engine-state.js';
import type { ProtoTable } from '../proto/ops.js';
import type { Stats } from '../stats.js';
import type { VirtualService } from '../service.js';

export interface ConnInfo {
  proto: number;
  template: boolean;
  caddr: number;
  cport: number;
  vaddr: number;
  vport: number;
  daddr: number;
  dport: number;
  /** state name as ipvsadm -c prints it */
  state: string;
  /** ms until expiry (>= 0) */
  expiresInMs: number;
  /** created or updated by a sync message (Origin SYNC in /proc/net/ip_vs_conn_sync); absent
   *  for entries this director made (Origin LOCAL) */
  synced?: true;
}

export interface StatsSnapshot {
  /** conns, inpkts, outpkts, inbytes, outbytes */
  counters: number[];
  /** cps, inpps, outpps, inbps, outbps (IPVS estimator) */
  rates: number[];
}
export interface DestSnapshot extends StatsSnapshot {
  addr: number;
  port: number;
  fwd: number;
  /** Fwd.TUNNEL: TunType, GUE port, TunFlags (0 otherwise) */
  tunType: number;
  tunPort: number;
  tunFlags: number;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  activeConns: number;
  inactConns: number;
  persistConns: number;
  /** RealServer.unanswered */
  unanswered: number;
}
export interface ServiceSnapshot extends StatsSnapshot {
  proto: number;
  addr: number;
  port: number;
  scheduler: string;
  flags: number;
  timeout: number;
  netmask: number;
  /** kernel order (newest first) */
  dests: DestSnapshot[];
}
export interface DirectorSnapshot {
  /** connection-table hash buckets (ipvsadm's "size=") */
  buckets: number;
  connections: number;
  /** connection-table capacity (connections + templates) */
  capacity: number;
  services: ServiceSnapshot[];
  totals: StatsSnapshot;
}

const statsOf = (s: Stats): StatsSnapshot => ({ counters: Array.from(s.c), rates: [0, 1, 2, 3, 4].map((k) => s.rate(k)) });

/** The connection table (ipvsadm -L -c), expiry measured from `now` (ms); entries whose expiry
 *  has come (time left 0) are left out, as the kernel's timers have removed them by then. */
export function listConnections(s: EngineState, protos: ProtoTable, now: number): ConnInfo[] {
  const c = s.conns;
  const out: ConnInfo[] = [];
  const nowTick = Math.floor(now / TICK_MS);
  c.forEach((i) => {
    // past its expiry, not yet collected by the timer wheel: the kernel's timer would have
    // removed it (ip_vs_conn_expire), so no listing shows it
    if (c.expires(i) <= nowTick) return;
    const template = (c.flags(i) & ConnFlag.TEMPLATE) !== 0;
    const state = template ? ((c.flags(i) & ConnFlag.ASSURED) !== 0 ? 'ASSURED' : 'NONE') : protos.of(c.proto(i))!.stateName(i);
    out.push({
      proto: c.proto(i),
      template,
      caddr: c.caddr(i) >>> 0,
      cport: c.cport(i),
      vaddr: c.vaddr(i) >>> 0,
      vport: c.vport(i),
      daddr: c.daddr(i) >>> 0,
      dport: c.dport(i),
      state,
      expiresInMs: Math.max(0, (c.expires(i) - nowTick) * TICK_MS),
      ...((c.flags(i) & ConnFlag.SYNCED) !== 0 ? { synced: true as const } : {}),
    });
  });
  return out;
}

export function snapshotOf(s: EngineState, services: readonly VirtualService[]): DirectorSnapshot {
  return {
    buckets: s.conns.bucketCount,
    connections: s.conns.count,
    capacity: s.conns.capacity,
    totals: statsOf(s.stats),
    services: services.map((v) => ({
      proto: v.proto,
      addr: v.addr,
      port: v.port,
      scheduler: v.schedName,
      flags: v.flags,
      timeout: v.timeout,
      netmask: v.netmask >>> 0,
      ...statsOf(v.stats),
      dests: v.dests.map((d) => ({
        addr: d.addr,
        port: d.port,
        fwd: d.fwd,
        tunType: d.tunType,
        tunPort: d.tunPort,
        tunFlags: d.tunFlags,
        weight: d.weight,
        uThreshold: d.uThreshold,
        lThreshold: d.lThreshold,
        activeConns: d.activeConns,
        inactConns: d.inactConns,
        persistConns: d.persistConns,
        unanswered: d.unanswered,
        ...statsOf(d.stats),
      })),
    })),
  };
}
