/**
 * wrr — weighted round robin (ip_vs_wrr.c). State: cl (cursor, -1 = head), cw (current
 * weight), mw (max weight - (gcd - 1)), di (gcd of positive weights). A pick scans on from
 * cl for a non-overloaded server with weight >= cw; at the end of the list cw drops by di
 * and the scan restarts; when cw reaches 0 it wraps to mw. Any dest change resets cl to the
 * head and re-derives mw/di, keeping cw where possible (as the kernel does).
 * Example (list order A,B,C, weights 4,3,2): A A B A B C A B C ...
 *
 * cl and cw live in the service's state slot (core/sched-state.ts) as one int32,
 * (cl + 1) << 16 | cw (cl < 65535 servers, cw <= 65535; 0 = unset: head and cw = mw), so a pick
 * commits both at once or retries so engines sharing it keep one sequence; mw and di are derived by each
 * engine from its own (identical) list. The update on a list change is idempotent (applying it
 * twice leaves what applying it once does), as every engine applies it.
 */
import type { Scheduler, SchedContext, SchedulerEnv } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { MAX_ATTEMPTS } from '../core/sched-state.js';

/** the slot's one int32 for cursor cl (-1 = head) and current weight cw */
const pack = (cl: number, cw: number): number => ((cl + 1) << 16) | cw;
import { gcd } from './common.js';

export function createWrr(svc: VirtualService, env: SchedulerEnv): Scheduler {
  const st = env.stateSlot(svc);
  let di = 1;
  let mw = 0;
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
  /** cw after a list change (kept in range; on the gcd grid when the gcd is above 1) */
  const cwAfterChange = (cw: number): number => {
    if (cw > mw || cw === 0) return mw;
    return di > 1 ? Math.floor(cw / di) * di + 1 : cw;
  };
  const changed = () => {
    derive();
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      const seen = st.load();
      if (st.update(seen, pack(-1, cwAfterChange(seen & 0xffff)))) return;
    }
  };
  return {
    name: 'wrr',
    pick(s: VirtualService, ctx: SchedContext): RealServer | null {
      const ds = s.dests;
      const n = ds.length;
      if (mw === 0) return null;
      for (let attempt = 1; ; attempt++) {
        const seen = st.load();
        const cl = (seen >>> 16) - 1;
        let w = seen & 0xffff || mw; // unset: the head, and cw = mw
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
        const picked = found >= 0 ? ds[found]! : null;
        if (ctx.dryRun || st.swap(seen, pack(found >= 0 ? found : i, w))) return picked;
        if (attempt === MAX_ATTEMPTS) {
          st.gaveUp();
          return picked;
        }
      }
    },
    cursor(s) {
      const seen = st.load();
      const d = s.dests[(seen >>> 16) - 1];
      return { server: d ? { addr: d.addr, port: d.port } : null, weight: seen & 0xffff };
    },
    setCursor(s, c) {
      derive();
      const cl = c.server ? s.dests.findIndex((x) => x.addr >>> 0 === c.server!.addr >>> 0 && x.port === c.server!.port) : -1;
      const next = pack(cl, c.weight === 0 ? 0 : cwAfterChange(c.weight));
      for (let attempt = 1; attempt <= MAX_ATTEMPTS && !st.swap(st.load(), next); attempt++);
    },
    onDestAdded: changed,
    onDestRemoved: changed,
    onDestUpdated: changed,
  };
}
