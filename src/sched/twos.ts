/**
 * twos — power of two random choices (ip_vs_twos.c, Linux >= 6.7). Two servers are drawn at
 * random, each with probability proportional to its weight (r in [0, total], inclusive, as the
 * kernel does), and the one with the lower overhead / weight wins (choice 1 on ties).
 */
import type { Scheduler, SchedulerEnv } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { overhead, usable } from './common.js';

export function createTwos(_svc: VirtualService, env: SchedulerEnv): Scheduler {
  return {
    name: 'twos',
    pick(svc: VirtualService): RealServer | null {
      let total = 0;
      let choice1: RealServer | null = null;
      for (const d of svc.dests) {
        if (usable(d)) {
          total += d.weight;
          choice1 = d; // default: the last usable server
        }
      }
      if (choice1 === null) return null;
      total += 1;
      let r1 = env.random() % total;
      let r2 = env.random() % total;
      let choice2: RealServer | null = null;
      let w1 = -1;
      let w2 = -1;
      let oh1 = 0;
      let oh2 = 0;
      for (const d of svc.dests) {
        if (!usable(d)) continue;
        r1 -= d.weight;
        r2 -= d.weight;
        if (r1 <= 0 && w1 === -1) {
          choice1 = d;
          w1 = d.weight;
          oh1 = overhead(d);
        }
        if (r2 <= 0 && w2 === -1) {
          choice2 = d;
          w2 = d.weight;
          oh2 = overhead(d);
        }
        if (w1 !== -1 && w2 !== -1) break;
      }
      if (choice2 !== null && w2 * oh1 > w1 * oh2) return choice2;
      return choice1;
    },
  };
}
