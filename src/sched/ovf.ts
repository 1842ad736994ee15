/**
 * ovf — weighted overflow (ip_vs_ovf.c): the highest-weight server among those not
 * overloaded, with weight != 0 and active connections <= weight (capacity); ties keep the
 * earlier server. Counts active connections only, so it does not suit UDP.
 */
import type { Scheduler } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';

export function createOvf(): Scheduler {
  return {
    name: 'ovf',
    pick(svc: VirtualService): RealServer | null {
      let h: RealServer | null = null;
      for (const d of svc.dests) {
        const w = d.weight;
        if (d.overloaded || d.activeConns > w || w === 0) continue;
        if (h === null || w > h.weight) h = d;
      }
      return h;
    },
  };
}
