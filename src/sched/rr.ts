/**
 * rr — round robin (ip_vs_rr.c). A cursor remembers the last pick (-1 = list head); each pick
 * walks on from it and takes the first server that is not overloaded and has weight > 0.
 * At most two passes, and the second one only when the cursor was not at the head. Deleting
 * the server under the cursor moves the cursor to its predecessor.
 */
import type { Scheduler, SchedContext } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { usable } from './common.js';

export function createRr(): Scheduler {
  let cursor = -1;
  return {
    name: 'rr',
    pick(svc: VirtualService, ctx: SchedContext): RealServer | null {
      const ds = svc.dests;
      const n = ds.length;
      const last = cursor;
      let hit = -1;
      for (let i = last + 1; i < n; i++) {
        if (usable(ds[i]!)) {
          hit = i;
          break;
        }
      }
      if (hit < 0 && last >= 0) {
        for (let i = 0; i <= last && i < n; i++) {
          if (usable(ds[i]!)) {
            hit = i;
            break;
          }
        }
      }
      if (hit < 0) return null;
      if (!ctx.dryRun) cursor = hit;
      return ds[hit]!;
    },
    onDestAdded() {
      if (cursor >= 0) cursor++; // new servers go to the head; the cursor stays on its server
    },
    onDestRemoved(_svc, _d, oldIndex) {
      if (cursor === oldIndex) cursor = oldIndex - 1;
      else if (cursor > oldIndex) cursor--;
    },
  };
}
