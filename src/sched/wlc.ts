/**
 * wlc — weighted least connection, ipvsadm's default (ip_vs_wlc.c): minimise
 * (256 * active + inactive) / weight, by cross-multiplication; ties keep the earlier server.
 */
import type { Scheduler } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { overhead, weightedLeast } from './common.js';

export function createWlc(): Scheduler {
  return {
    name: 'wlc',
    pick(svc: VirtualService): RealServer | null {
      return weightedLeast(svc.dests, overhead);
    },
  };
}
