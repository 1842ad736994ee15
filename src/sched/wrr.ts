/**
 * wrr — weighted round robin (ip_vs_wrr.c). State: cl (cursor, -1 = head), cw (current
 * weight), mw (max weight - (gcd - 1)), di (gcd of positive weights). A pick scans on from
 * cl for a non-overloaded server with weight >= cw; at the end of the list cw drops by di
 * and the scan restarts; when cw reaches 0 it wraps to mw. Any dest change resets cl to the
 * head and re-derives mw/di, keeping cw where possible (as the kernel does).
 * Example (list order A,B,C, weights 4,3,2): A A B A B C A B C ...
 */
import type { Scheduler, SchedContext } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { gcd } from './common.js';

export function createWrr(svc: VirtualService): Scheduler {
  let cl = -1;
  let di = 1;
  let mw = 0;
  let cw = 0;
  const derive = () => {
    let g = 0;
    let max = 0;
    for (const d of svc.dests) {
      if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
      if (d.weight > max) max = d.weight;
    }
    di = g > 0 ? g : 1;
    mw = max - (di - 1);
  };
  derive();
  cw = mw;
  const changed = () => {
    cl = -1;
    derive();
    if (cw > mw || cw === 0) cw = mw;
    else if (di > 1) cw = Math.floor(cw / di) * di + 1;
  };
  return {
    name: 'wrr',
    pick(s: VirtualService, ctx: SchedContext): RealServer | null {
      const ds = s.dests;
      const n = ds.length;
      if (mw === 0) return null;
      let w = cw;
      const last = cl;
      let stop = -2;
      let lastPass = false;
      let restarted = false;
      let i = cl;
      let found = -1;
      for (;;) {
        for (i = i + 1; i < n; i++) {
          const d = ds[i]!;
          if (!d.overloaded && d.weight >= w) {
            found = i;
            break;
          }
          if (i === stop) break;
        }
        if (found >= 0 || (i < n && i === stop)) break;
        i = -1; // back at the head
        w -= di;
        if (w <= 0) {
          w = mw;
          if (lastPass || last === -1) break;
          restarted = true;
        }
        lastPass = w <= di;
        if (lastPass && restarted && last !== -1) stop = last;
      }
      if (!ctx.dryRun) {
        cw = w;
        cl = found >= 0 ? found : i;
      }
      return found >= 0 ? ds[found]! : null;
    },
    onDestAdded: changed,
    onDestRemoved: changed,
    onDestUpdated: changed,
  };
}
