/**
 * The dashboard's JSON snapshot (GET /v1/status and each message of the live stream, daemon/
 * http.ts): services and their real servers with weight, health, active and inactive
 * connections and counters; quorum and the sorry server; the VRRP and sync-daemon role; the
 * flood defences; recent events. Built from the same sources as /metrics (one engine snapshot,
 * health and VRRP state), once per request or stream tick; nothing here runs per packet.
 *
 * Counters are totals since start (connections, packets and bytes in and out); rates are the
 * IPVS estimator's (per second, averaged over its 2 s periods, core/stats.ts). A client draws
 * its own per-second history from successive totals.
 *
 * A real server that health checking took out of the rules (keepalived's removal on failure)
 * is not in the engine's snapshot; it is listed from the health state with `inRules: false`,
 * so the page shows it down instead of forgetting it.
 */
import { DEFENSES, type DefenseStatus } from '../core/defense.js';
import type { DirectorSnapshot, StatsSnapshot } from '../core/director.js';
import { Fwd, SvcFlag } from '../core/service.js';
import { formatIPv4 } from '../wire/addr.js';

export const STATUS_VERSION = 1;

export interface StatusCounts {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
  /** estimator rates per second: connections, packets in/out, bytes in/out */
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
}

export interface StatusServer extends StatusCounts {
  /** "192.0.2.11:8080" */
  id: string;
  forward: 'Masq' | 'Local' | 'Tunnel' | 'Route';
  weight: number;
  active: number;
  inactive: number;
  persist: number;
  /** the checkers' verdict; null without health checking (rules mode) */
  up: boolean | null;
  /** false: taken out of the rules by health checking (not in the engine) */
  inRules: boolean;
  /** this server is the service's sorry server (keepalived sorry_server) */
  sorry: boolean;
}

export interface StatusService extends StatusCounts {
  /** "TCP 203.0.113.10:80" */
  id: string;
  proto: 'TCP' | 'UDP' | 'SCTP';
  scheduler: string;
  /** persistence timeout, s (0: none) */
  persistent: number;
  /** keepalived quorum; null without health checking */
  quorum: boolean | null;
  /** "addr:port" of the configured sorry server, or null */
  sorryServer: string | null;
  servers: StatusServer[];
}

export interface StatusEvent {
  at: number;
  level: string;
  kind: string;
  msg: string;
}

export interface DashboardStatus {
  v: number;
  /** ms since the epoch, when this snapshot was taken */
  at: number;
  workers: number;
  connections: number;
  capacity: number;
  totals: StatusCounts;
  services: StatusService[];
  /** keepalived mode with a notify FIFO; null otherwise */
  vrrp: { instances: { name: string; state: string | null }[]; groups: { name: string; state: string | null }[]; syncRole: string | null } | null;
  /** defences acting now (names of core/defense.ts DEFENSES with on=1) and their modes */
  defense: { on: string[]; mode: Record<string, number> } | null;
  /** newest first; absent on a public listener (log lines may name files and hosts) */
  events?: StatusEvent[];
}

export interface StatusSource {
  at: number;
  workers: number;
  snapshot: DirectorSnapshot;
  health?: { proto: number; vaddr: number; vport: number; raddr: number; rport: number; up: boolean }[];
  quorum?: { proto: number; vaddr: number; vport: number; up: boolean; sorry?: { addr: number; port: number } | null }[];
  vrrp?: { instances: { name: string; state: string | null }[]; groups: { name: string; state: string | null }[]; syncDaemon: { role: string } | null };
  defense?: DefenseStatus;
  events?: StatusEvent[];
}

const PROTO = (p: number): StatusService['proto'] => (p === 6 ? 'TCP' : p === 17 ? 'UDP' : 'SCTP');
const FORWARD: Record<number, StatusServer['forward']> = { [Fwd.MASQ]: 'Masq', [Fwd.LOCALNODE]: 'Local', [Fwd.TUNNEL]: 'Tunnel', [Fwd.DROUTE]: 'Route' };
const hostPort = (a: number, p: number) => `${formatIPv4(a)}:${p}`;
const serviceKey = (proto: number, a: number, p: number) => `${proto}/${a >>> 0}/${p}`;

function counts(s: StatsSnapshot): StatusCounts {
  const [conns = 0, inpkts = 0, outpkts = 0, inbytes = 0, outbytes = 0] = s.counters;
  const [cps = 0, inpps = 0, outpps = 0, inbps = 0, outbps = 0] = s.rates;
  return { conns, inpkts, outpkts, inbytes, outbytes, cps, inpps, outpps, inbps, outbps };
}
const ZERO: StatsSnapshot = { counters: [0, 0, 0, 0, 0], rates: [0, 0, 0, 0, 0] };

export function dashboardStatus(src: StatusSource): DashboardStatus {
  // health by service, then by server: one pass over each list (no search per server)
  const health = new Map<string, Map<string, boolean>>();
  for (const h of src.health ?? []) {
    const key = serviceKey(h.proto, h.vaddr, h.vport);
    const m = health.get(key) ?? new Map<string, boolean>();
    health.set(key, m.set(hostPort(h.raddr, h.rport), h.up));
  }
  const quorum = new Map((src.quorum ?? []).map((q) => [serviceKey(q.proto, q.vaddr, q.vport), q]));
  const services: StatusService[] = src.snapshot.services.map((v) => {
    const key = serviceKey(v.proto, v.addr, v.port);
    const q = quorum.get(key);
    const up = health.get(key);
    const sorry = q?.sorry ? hostPort(q.sorry.addr, q.sorry.port || v.port) : null;
    const inRules = new Set<string>();
    const servers: StatusServer[] = v.dests.map((d) => {
      const id = hostPort(d.addr, d.port);
      inRules.add(id);
      return { id, forward: FORWARD[d.fwd] ?? 'Masq', weight: d.weight, active: d.activeConns, inactive: d.inactConns, persist: d.persistConns, up: up?.get(id) ?? null, inRules: true, sorry: id === sorry, ...counts(d) };
    });
    // servers health checking removed from the rules: shown down, with no counters
    for (const [id, isUp] of up ?? []) if (!inRules.has(id)) servers.push({ id, forward: 'Masq', weight: 0, active: 0, inactive: 0, persist: 0, up: isUp, inRules: false, sorry: false, ...counts(ZERO) });
    return { id: `${PROTO(v.proto)} ${hostPort(v.addr, v.port)}`, proto: PROTO(v.proto), scheduler: v.scheduler, persistent: v.flags & SvcFlag.PERSISTENT ? v.timeout : 0, quorum: q ? q.up : null, sorryServer: sorry, servers, ...counts(v) };
  });
  const d = src.defense;
  return {
    v: STATUS_VERSION,
    at: src.at,
    workers: src.workers,
    connections: src.snapshot.connections,
    capacity: src.snapshot.capacity,
    totals: counts(src.snapshot.totals),
    services,
    vrrp: src.vrrp ? { instances: src.vrrp.instances.map(({ name, state }) => ({ name, state })), groups: src.vrrp.groups.map(({ name, state }) => ({ name, state })), syncRole: src.vrrp.syncDaemon?.role ?? null } : null,
    defense: d ? { on: DEFENSES.filter((k) => d.on[k] === 1), mode: { ...d.mode } } : null,
    ...(src.events ? { events: src.events } : {}),
  };
}
