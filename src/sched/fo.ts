/**
 * fo — weighted failover (ip_vs_fo.c): the non-overloaded server with the highest weight
 * (> 0); ties keep the earlier server in list order.
 */
import type { Scheduler } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';

export function createFo(): Scheduler {
  return {
    name: 'fo',
    pick(svc: VirtualService): RealServer | null {
      let best: RealServer | null = null;
      let hw = 0;
      for (const d of svc.dests) {
        if (!d.overloaded && d.weight > hw) {
          best = d;
          hw = d.weight;
        }
      }
      return best;
    },
  };
}
