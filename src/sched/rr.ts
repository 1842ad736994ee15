/**
 * rr — round robin (ip_vs_rr.c). A cursor remembers the last pick (none = list head); each pick
 * walks on from it and takes the first server that is not overloaded and has weight > 0.
 * At most two passes, and the second one only when the cursor was not at the head. Deleting
 * the server under the cursor moves the cursor to its predecessor.
 *
 * The cursor lives in the service's state slot (core/sched-state.ts) as the last server's `seq`
 * (its place in the order servers were added to the service, the same in every engine of a
 * director; 0 = the head), not its index, so every engine sharing the slot reads it the same way
 * whatever moment it applied a list change: adding a server needs no update, and the update on
 * deletion (cursor on the deleted server -> its predecessor) is idempotent.
 */
import type { Scheduler, SchedContext, SchedulerEnv } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { MAX_ATTEMPTS } from '../core/sched-state.js';
import { usable } from './common.js';

export function createRr(svc: VirtualService, env: SchedulerEnv): Scheduler {
  const st = env.stateSlot(svc);
  let guess = 0; // where this engine last found the cursor's server
  /** index in `ds` of the server whose seq is `cursor`, -1 for the head (or a server this list lacks) */
  const cursorIndex = (ds: RealServer[], cursor: number): number => {
    if (cursor === 0) return -1;
    const g = ds[guess];
    if (g !== undefined && g.seq === cursor) return guess;
    for (let i = 0; i < ds.length; i++) if (ds[i]!.seq === cursor) return (guess = i);
    return -1;
  };
  /** the first usable server after index `last` (-1: the head), wrapping once; -1 for none */
  const scan = (ds: RealServer[], last: number): number => {
    const n = ds.length;
    for (let i = last + 1; i < n; i++) if (usable(ds[i]!)) return i;
    if (last >= 0) for (let i = 0; i <= last && i < n; i++) if (usable(ds[i]!)) return i;
    return -1;
  };
  return {
    name: 'rr',
    pick(s: VirtualService, ctx: SchedContext): RealServer | null {
      const ds = s.dests;
      for (let attempt = 1; ; attempt++) {
        const seen = st.load();
        const hit = scan(ds, cursorIndex(ds, seen));
        if (hit < 0) return null;
        const d = ds[hit]!;
        if (ctx.dryRun) return d;
        if (st.swap(seen, d.seq)) {
          guess = hit;
          return d;
        }
        if (attempt === MAX_ATTEMPTS) {
          st.gaveUp();
          return d;
        }
      }
    },
    cursor(s) {
      const i = cursorIndex(s.dests, st.load());
      const d = i >= 0 ? s.dests[i]! : null;
      return { server: d && { addr: d.addr, port: d.port }, weight: 0 };
    },
    setCursor(s, c) {
      const d = c.server && s.dests.find((x) => x.addr >>> 0 === c.server!.addr >>> 0 && x.port === c.server!.port);
      for (let attempt = 1; attempt <= MAX_ATTEMPTS && !st.swap(st.load(), d ? d.seq : 0); attempt++);
    },
    onDestRemoved(s, d, oldIndex) {
      // cursor on the deleted server -> its predecessor (idempotent: every engine applies it)
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const seen = st.load();
        if (seen !== d.seq) return;
        const pred = oldIndex > 0 ? s.dests[oldIndex - 1] : undefined;
        if (st.update(seen, pred === undefined ? 0 : pred.seq)) return;
      }
    },
  };
}
