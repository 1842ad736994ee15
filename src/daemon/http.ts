/**
 * --metrics: Prometheus text at /metrics (node_exporter's node_ipvs_* families and ulvs's own),
 * the /proc/net/ip_vs, ip_vs_stats and ip_vs_conn texts at the same paths, and the dashboard
 * (issue 15): the page at / (web-assets.ts), its JSON status at /v1/status
 * (metrics/status.ts) and the live stream of that status at /v1/events (dashboard-stream.ts).
 * Control work on the daemon's thread, never in a worker's loop. GET only; anything else is 404
 * with the list of paths; a failing source is 500 with its message.
 *
 * On a public address (`publicBind`, ulvsd --metrics-public) /metrics and the dashboard, which
 * show what /metrics shows (services, real servers, their counters, health, quorum, VRRP
 * states), without the recent events (log lines may name files, hosts and errors); the /proc
 * paths are 403 (ip_vs_conn lists every client's address and port; options.ts metricsAt).
 */
import { createServer, type Server } from 'node:http';
import type { ConnInfo, DirectorSnapshot } from '../core/director.js';
import { createMetrics, type VrrpMetrics } from '../metrics/prometheus.js';
import { procIpVs, procIpVsConn, procIpVsStats } from '../metrics/proc.js';
import { dashboardStatus, type StatusEvent } from '../metrics/status.js';
import { DashboardStream } from './dashboard-stream.js';
import type { HealthStates } from './health.js';
import { webAsset, WEB_HEADERS } from './web-assets.js';
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
  /** the daemon's recent events, newest first (event-ring.ts) */
  events?: () => StatusEvent[];
}

const PUBLIC_PATHS = new Set(['/metrics', '/', '/dashboard.css', '/dashboard.js', '/v1/status', '/v1/events']);

export function createMetricsServer(src: MetricsSource, publicBind = false): Server {
  let stream: DashboardStream | null = null; // made below; its counters are in /metrics
  const metrics = createMetrics(async () => {
    const [snapshot, c] = await Promise.all([src.snapshot(), src.counters()]);
    const dashboard = { streams: stream?.clients ?? 0, ...(stream?.counters ?? { opened: 0, refused: 0, dropped: 0, failed: 0 }) };
    return { snapshot, engine: c.engine, datapath: c.datapath, sync: { ...c.sync, ...(c.syncDaemon ?? {}) }, workers: src.workers, dashboard, ...(c.defense ? { defense: c.defense } : {}), ...(src.health ? src.health() : {}), ...(src.vrrp ? { vrrp: src.vrrp() } : {}), ...(src.admin ? { admin: { ...src.admin() } } : {}), ...(src.fastVerdicts ? { fastVerdicts: src.fastVerdicts() } : {}) };
  });
  const status = async () => {
    const [snapshot, c] = await Promise.all([src.snapshot(), src.counters()]);
    const events = !publicBind && src.events ? src.events() : undefined;
    return JSON.stringify(dashboardStatus({ at: Date.now(), workers: src.workers, snapshot, ...(c.defense ? { defense: c.defense } : {}), ...(src.health ? src.health() : {}), ...(src.vrrp ? { vrrp: src.vrrp() } : {}), ...(events ? { events } : {}) }));
  };
  stream = new DashboardStream(status);
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    if (publicBind && !PUBLIC_PATHS.has(path) && req.method === 'GET') {
      res.writeHead(403, { 'content-type': 'text/plain' });
      res.end(`forbidden: this listener is on a public address (--metrics-public) and serves /metrics and the dashboard only; the /proc texts are on loopback listeners and the admin socket\n`);
      return;
    }
    if (path === '/v1/events' && req.method === 'GET') return stream!.open(req, res);
    const text = async (): Promise<[string, string | Buffer, Record<string, string>?] | null> => {
      if (path === '/metrics') return [metrics.registry.contentType, await metrics.scrape()];
      if (path === '/v1/status') return ['application/json', await status(), { 'cache-control': 'no-cache' }];
      if (path === '/proc/net/ip_vs') return ['text/plain', procIpVs(await src.snapshot())];
      if (path === '/proc/net/ip_vs_stats') return ['text/plain', procIpVsStats((await src.snapshot()).totals)];
      if (path === '/proc/net/ip_vs_conn') return ['text/plain', procIpVsConn(await src.connections())];
      const asset = webAsset(path);
      return asset && [asset.type, asset.body, WEB_HEADERS];
    };
    text().then(
      (r) => {
        if (r === null || req.method !== 'GET') {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('not found: /metrics, /proc/net/ip_vs, /proc/net/ip_vs_stats, /proc/net/ip_vs_conn, / (dashboard), /v1/status, /v1/events\n');
          return;
        }
        res.writeHead(200, { 'content-type': r[0], ...r[2] });
        res.end(r[1]);
      },
      (e: Error) => {
        res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(`${e.message}\n`);
      },
    );
  });
  // close() leaves open connections alone; the streams never end by themselves
  const close = server.close.bind(server);
  server.close = (cb?: (err?: Error) => void) => {
    stream!.close();
    return close(cb);
  };
  return server;
}
