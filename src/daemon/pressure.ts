/**
 * The daemon's own resource-exhaustion counters, and the once-a-second look at every counter
 * that logs a cause once (pressure-watch.ts):
 *   tun_queue_dropped        the TUN device's tx_dropped since this ulvsd started: packets the
 *                            kernel could not queue to a worker because its queue (txqueuelen
 *                            packets, per queue: tun_net_xmit's ptr_ring_produce failing) was
 *                            full; read from /sys/class/net/<dev>/statistics/tx_dropped (the
 *                            namespace of the sysfs mount, as ifindexOf reads it)
 *   health_not_run_<ERRNO>   checks that did not run for want of this director's descriptors or
 *                            processes (health/monitor.ts notRun)
 * The workers' own (uring_*, fastpath_map_full) come with their data-path counters, and are
 * looked at whenever they are read (/metrics, GET /v1/counters: observe()); the
 * daemon's own are looked at every second. (Asking the workers for their counters every second
 * made an HA pair's takeover fail in test/integration/ha-slow-flows.test.ts, for a reason not
 * yet found: so they are not polled.)
 */
import { readFileSync } from 'node:fs';
import type { DaemonLog } from './log.js';
import { PressureWatch } from './pressure-watch.js';

/** The device's tx_dropped, or null when it cannot be read (the device is gone). */
export function readTunDropped(dev: string): number | null {
  try {
    return Number(readFileSync(`/sys/class/net/${dev}/statistics/tx_dropped`, 'utf8'));
  } catch {
    return null;
  }
}

export class DaemonPressure {
  readonly #dev: string;
  readonly #base: number | null;
  readonly #notRun: () => Readonly<Record<string, number>>;
  readonly #watch: PressureWatch;

  /** `notRun`: the checkers' counts (daemon/health.ts), empty without keepalived mode. */
  constructor(dev: string, log: DaemonLog, notRun: () => Readonly<Record<string, number>>) {
    this.#dev = dev;
    this.#base = readTunDropped(dev);
    this.#notRun = notRun;
    this.#watch = new PressureWatch({ warn: (m, f) => log.warn(m, 'pressure', f), info: (m, f) => log.info(m, 'pressure', f) });
  }

  /** The daemon's counters, to merge with the workers' data-path counters. */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    const now = readTunDropped(this.#dev);
    if (now !== null && this.#base !== null) out['tun_queue_dropped'] = Math.max(0, now - this.#base);
    for (const [k, n] of Object.entries(this.#notRun())) out[`health_not_run_${k}`] = n;
    return out;
  }

  /** Log what grew among `counters` (the workers' data-path counters when they are read). */
  observe(counters: Readonly<Record<string, number>>): void {
    this.#watch.observe(counters, Date.now());
  }

  /** Every `everyMs`, look at the daemon's own counters and log what grew. */
  follow(stopping: () => boolean, everyMs = 1000): void {
    setInterval(() => {
      if (!stopping()) this.#watch.observe(this.counters(), Date.now());
    }, everyMs).unref();
  }
}
