/**
 * sed — shortest expected delay (ip_vs_sed.c): as wlc but the cost is (active + 1) / weight;
 * inactive connections are ignored.
 */
import type { Scheduler } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { weightedLeast } from './common.js';

export const sedOverhead = (d: RealServer): number => d.activeConns + 1;

export function createSed(): Scheduler {
  return {
    name: 'sed',
    pick(svc: VirtualService): RealServer | null {
      return weightedLeast(svc.dests, sedOverhead);
    },
  };
}
