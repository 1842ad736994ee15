/**
 * rr — round robin (ip_vs_rr.c). A cursor remembers the last pick (none = list head); each pick
 * walks on from it and takes the first server that is not overloaded and has weight > 0.
 * At most two passes, and the second one only when the cursor was not at the head. Deleting
 * the server under the cursor moves the cursor to its predecessor.
 *
 * The cursor lives in the service's state slot (core/sched-state.ts) as the *identity* of the
 * last server picked (v0 = 1 when set, v1 = address, v2 = port), not its index, so every engine
 * sharing the slot reads it the same way whatever moment it applied a list change: adding a
 * server needs no update, and the update on deletion (cursor on the deleted server -> its
 * predecessor) is idempotent.
 */
import type { Scheduler, SchedContext, SchedulerEnv } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { MAX_ATTEMPTS } from '../core/sched-state.js';
import { usable } from './common.js';

export function createRr(svc: VirtualService, env: SchedulerEnv): Scheduler {
  const st = env.stateSlot(svc);
  let guess = 0; // where this engine last found the cursor's server
  /** index of the cursor's server in `ds`, -1 for the head (or a server this list lacks) */
  const cursorIndex = (ds: RealServer[]): number => {
    if (st.get(0) === 0) return -1;
    const addr = st.get(1);
    const port = st.get(2);
    const g = ds[guess];
    if (g !== undefined && (g.addr | 0) === addr && g.port === port) return guess;
    for (let i = 0; i < ds.length; i++) {
      const d = ds[i]!;
      if ((d.addr | 0) === addr && d.port === port) return (guess = i);
    }
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
        const ver = st.begin();
        const hit = scan(ds, cursorIndex(ds));
        if (hit < 0) return null;
        const d = ds[hit]!;
        if (ctx.dryRun) return d;
        if (st.commit(ver, 1, d.addr | 0, d.port)) {
          guess = hit;
          return d;
        }
        if (ver < 0) return d; // a writer stalled mid-write: answer without moving the cursor
        if (attempt === MAX_ATTEMPTS) {
          st.gaveUp();
          return d;
        }
      }
    },
    onDestRemoved(s, d, oldIndex) {
      // cursor on the deleted server -> its predecessor (idempotent: every engine applies it)
      for (let attempt = 1; ; attempt++) {
        const ver = st.begin();
        if (st.get(0) === 0 || st.get(1) !== (d.addr | 0) || st.get(2) !== d.port) {
          if (st.unchangedSince(ver) || ver < 0 || attempt === MAX_ATTEMPTS) return;
          continue;
        }
        const pred = oldIndex > 0 ? s.dests[oldIndex - 1] : undefined;
        const done = pred === undefined ? st.commit(ver, 0, 0, 0) : st.commit(ver, 1, pred.addr | 0, pred.port);
        if (done || ver < 0 || attempt === MAX_ATTEMPTS) return;
      }
    },
  };
}
