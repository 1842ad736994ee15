/**
 * lc — least connection (ip_vs_lc.c): the smallest overhead (256 * active + inactive) among
 * servers that are not overloaded and have weight != 0; ties keep the earlier server.
 */
import type { Scheduler } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { overhead } from './common.js';

export function createLc(): Scheduler {
  return {
    name: 'lc',
    pick(svc: VirtualService): RealServer | null {
      let least: RealServer | null = null;
      let loh = 0;
      for (const d of svc.dests) {
        if (d.overloaded || d.weight === 0) continue;
        const doh = overhead(d);
        if (least === null || doh < loh) {
          least = d;
          loh = doh;
        }
      }
      return least;
    },
  };
}
