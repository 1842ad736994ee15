/**
 * --metrics: Prometheus text at /metrics (node_exporter's node_ipvs_* families and ulvs's own)
 * and the /proc/net/ip_vs, ip_vs_stats and ip_vs_conn texts at the same paths, over HTTP.
 * Control work on the daemon's thread, never in a worker's loop. GET only; anything else is 404
 * with the list of paths; a failing source is 500 with its message. On a public address
 * (`publicBind`, ulvsd --metrics-public) only /metrics: the /proc paths are 403 (ip_vs_conn
 * lists every client's address and port; options.ts metricsAt).
 */
import { createServer, type Server } from 'node:http';
import type { ConnInfo, DirectorSnapshot } from '../core/director.js';
import { createMetrics, type VrrpMetrics } from '../metrics/prometheus.js';
import { procIpVs, procIpVsConn, procIpVsStats } from '../metrics/proc.js';
import type { HealthStates } from './health.js';
import type { PoolCounters } from './worker-pool.js';

/** Where the texts come from (the worker pool, and health in keepalived mode). */
export interface MetricsSource {
  workers: number;
  snapshot(): Promise<DirectorSnapshot>;
  connections(): Promise<ConnInfo[]>;
  /** the pool's counters, with the sync daemon's (sync-daemon.ts counters) */
  counters(): Promise<PoolCounters & { syncDaemon?: Record<string, number> }>;
  /** keepalived mode only */
  health?: () => HealthStates;
  /** keepalived mode with a notify FIFO */
  vrrp?: () => VrrpMetrics;
  /** the admin API's refusal counters (control/admin-limits.ts) */
  admin?: () => Record<string, number>;
  /** the kernel fast path's verdict counters by interface (datapath/tun/fast-verdicts.ts) */
  fastVerdicts?: () => { interface: string; verdict: string; frames: number }[];
}

export function createMetricsServer(src: MetricsSource, publicBind = false): Server {
  const metrics = createMetrics(async () => {
    const [snapshot, c] = await Promise.all([src.snapshot(), src.counters()]);
    return { snapshot, engine: c.engine, datapath: c.datapath, sync: { ...c.sync, ...(c.syncDaemon ?? {}) }, workers: src.workers, ...(c.defense ? { defense: c.defense } : {}), ...(src.health ? src.health() : {}), ...(src.vrrp ? { vrrp: src.vrrp() } : {}), ...(src.admin ? { admin: { ...src.admin() } } : {}), ...(src.fastVerdicts ? { fastVerdicts: src.fastVerdicts() } : {}) };
  });
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const text = async (): Promise<[string, string] | null> => {
      if (path === '/metrics') return [metrics.registry.contentType, await metrics.scrape()];
      if (path === '/proc/net/ip_vs') return ['text/plain', procIpVs(await src.snapshot())];
      if (path === '/proc/net/ip_vs_stats') return ['text/plain', procIpVsStats((await src.snapshot()).totals)];
      if (path === '/proc/net/ip_vs_conn') return ['text/plain', procIpVsConn(await src.connections())];
      return null;
    };
    if (publicBind && path !== '/metrics' && req.method === 'GET') {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end(`forbidden: this listener is on a public address (--metrics-public) and serves /metrics only; the /proc texts are on loopback listeners and the admin socket\n`);
      return;
    }
    text().then(
      (r) => {
        if (r === null || req.method !== 'GET') {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('not found: /metrics, /proc/net/ip_vs, /proc/net/ip_vs_stats, /proc/net/ip_vs_conn\n');
          return;
        }
        res.writeHead(200, { 'content-type': r[0] });
        res.end(r[1]);
      },
      (e: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`${e.message}\n`);
      },
    );
  });
}
