/**
 * nq — never queue (ip_vs_nq.c): the first usable server with no active connection wins at
 * once; otherwise the minimum (active + 1) / weight, ties keep the earlier server.
 */
import type { Scheduler } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { sedOverhead } from './sed.js';

export function createNq(): Scheduler {
  return {
    name: 'nq',
    pick(svc: VirtualService): RealServer | null {
      let least: RealServer | null = null;
      let loh = 0;
      for (const d of svc.dests) {
        if (d.overloaded || d.weight === 0) continue;
        const doh = sedOverhead(d);
        if (d.activeConns === 0) return d;
        if (least === null || loh * d.weight > doh * least.weight) {
          least = d;
          loh = doh;
        }
      }
      return least;
    },
  };
}
