/**
 * ulvsd's two listeners, assembled over the running daemon's parts:
 *   the admin API (control/admin.ts) on a Unix socket, mode 0600 from the moment it exists
 *   (admin-socket.ts), its directory made 0700 when missing;
 *   with --metrics HOST:PORT, the Prometheus and /proc texts and the dashboard (http.ts).
 * Both read through the control plane and the worker pool; neither changes anything but
 * through ControlPlane (mutate, serial). A listener error on the metrics port is fatal (the
 * operator asked for it: `onMetricsError` stops the daemon); one on the admin socket is logged.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import { dirname } from 'node:path';
import { createAdminServer, type AdminControlPlane } from '../control/admin.js';
import { ADMIN_LIMITS, newAdminCounters } from '../control/admin-limits.js';
import type { ControlPlane } from './control-plane.js';
import type { Health } from './health.js';
import { createMetricsServer } from './http.js';
import { fastVerdictsByInterface } from '../datapath/tun/fast-verdicts.js';
import { listenPrivate } from './admin-socket.js';
import type { DaemonLog } from './log.js';
import type { DaemonEvent } from './event-ring.js';
import type { DaemonOptions } from './options.js';
import type { SyncDaemon } from './sync-daemon.js';
import type { VrrpFollower } from './vrrp-follower.js';
import type { PoolCounters, WorkerPool } from './worker-pool.js';
import type { SynCookieGuard } from './syn-cookies.js';
import { flowOwner } from './flow-owner.js';
import { routeOf } from './next-hop.js';

export interface ApiParts {
  o: Pick<DaemonOptions, 'socket' | 'metrics' | 'workers' | 'dev'>;
  log: DaemonLog;
  cp: ControlPlane;
  pool: WorkerPool;
  /** syn_cookies: checked before the workers change, the kernel's map written after */
  synCookies: SynCookieGuard;
  /** sysctl kernel_setup changed (after the workers have it): the kernel set-up tables follow */
  kernelSetup?: (on: boolean) => void;
  /** a live trace starts (true) or ends (false): kernel set-up paused meanwhile (kernel-tables-follower.ts) */
  kernelTracing?: (on: boolean) => void;
  sync: SyncDaemon;
  health: Health | null;
  vrrp: () => VrrpFollower | null;
  /** the workers' counters with the daemon's own (hand-over) */
  counters: () => Promise<PoolCounters>;
  reload: () => Promise<string>;
  /** the daemon's recent events for the dashboard, newest first (event-ring.ts) */
  events: () => DaemonEvent[];
  onMetricsError: () => void;
}

/** Start the metrics listener (if asked for) and the admin API; returns both servers. */
export function startApiServers(p: ApiParts): { metrics: Server | null; admin: Server } {
  const { o, log, cp, pool, sync, health, synCookies, kernelSetup } = p;
  const counters = async () => ({ ...(await p.counters()), syncDaemon: sync.counters() });
  const adminCounters = newAdminCounters(); // the admin API's refusals, in /metrics too
  let metrics: Server | null = null;
  if (o.metrics) {
    const at = o.metrics;
    const vrrp = p.vrrp();
    metrics = createMetricsServer({ workers: o.workers, snapshot: () => pool.snapshot(), connections: () => pool.connections(), counters, fastVerdicts: fastVerdictsByInterface, ...(health ? { health: () => health.states() } : {}), ...(vrrp ? { vrrp: () => vrrp.status() } : {}), admin: () => ({ ...adminCounters }), events: p.events }, at.public);
    metrics.on('error', (e) => {
      log.warn(`metrics listener ${at.text}: ${e.message}`);
      p.onMetricsError();
    });
    metrics.listen(at.port, at.host, () => log.info(`metrics on http://${at.text}/metrics, dashboard on http://${at.text}/`));
  }

  mkdirSync(dirname(o.socket), { recursive: true, mode: 0o700 });
  const owner = flowOwner(pool.size, () => cp.rules());
  const backend: AdminControlPlane = {
    rules: () => cp.rules(),
    mutate: async (fn) => void (await cp.mutate(fn)),
    snapshot: () => pool.snapshot(),
    connections: () => pool.connections(),
    timeouts: () => pool.timeouts(),
    setTimeouts: (t) => cp.serial(() => pool.setTimeouts(t)),
    zero: (k) => cp.serial(() => pool.zero(k)),
    counters,
    reload: p.reload,
    vrrp: () => p.vrrp()?.status() ?? null,
    daemons: sync,
    explain: async (q) => {
      const worker = owner(q.proto, q.caddr, q.cport, q.vaddr, q.vport);
      return { worker, explanation: await pool.call(worker, 'explain', q) };
    },
    trace: {
      tun: o.dev,
      start: async (filter, budget) => {
        p.kernelTracing?.(true); // new connections through the engines, where the trace sees them
        try {
          await pool.all('traceStart', filter, budget);
        } catch (e) {
          p.kernelTracing?.(false);
          throw e;
        }
      },
      read: () => pool.all('traceRead'),
      stop: async () => {
        try {
          await pool.all('traceStop');
        } finally {
          p.kernelTracing?.(false);
        }
      },
      route: routeOf,
    },
    sysctls: {
      values: () => pool.sysctls(),
      set: (p) =>
        cp.serial(async () => {
          if (p.synCookies !== undefined) synCookies.check(cp.rules(), p.synCookies); // refused: nothing changed
          await pool.setSysctls(p);
          if (p.synCookies !== undefined) synCookies.setMode(p.synCookies, cp.rules());
          if (p.kernelSetup !== undefined) kernelSetup?.(p.kernelSetup === 1);
        }),
    },
  };
  const admin = createAdminServer(backend, ADMIN_LIMITS, adminCounters);
  admin.on('error', (e) => log.warn(`admin API: ${e.message}`));
  listenPrivate(admin, o.socket, () => chmodSync(o.socket, 0o600)); // 0600 from bind(2) on (admin-socket.ts)
  return { metrics, admin };
}
