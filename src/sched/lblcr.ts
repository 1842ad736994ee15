/**
 * lblcr — locality-based least connection with replication (ip_vs_lblcr.c). Key: the packet's
 * destination address. A cache maps it to a *set* of servers (newest first). A hit uses the
 * set's weighted-least-loaded member; if the set has more than one member and was not changed
 * for lblcr_expiration, its weighted-most-loaded member is dropped first. If no member is
 * usable, or the chosen one is overloaded (lblc's heuristic), wlc picks over all servers and
 * the pick joins the set. Housekeeping as lblc.
 */
import type { Scheduler, SchedContext, SchedulerEnv } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { overhead, weightedLeast } from './common.js';
import { lbOverloaded, LocalityGc } from './lblc.js';

interface LblcrEntry {
  set: RealServer[];
  lastmod: number;
  lastuse: number;
}

/** ip_vs_dest_set_min */
function setMin(set: readonly RealServer[]): RealServer | null {
  let i = 0;
  while (i < set.length) {
    const d = set[i]!;
    if (!d.overloaded && d.weight > 0 && d.available) break;
    i++;
  }
  if (i === set.length) return null;
  let least = set[i]!;
  let loh = overhead(least);
  for (i++; i < set.length; i++) {
    const d = set[i]!;
    if (d.overloaded) continue;
    const doh = overhead(d);
    if (loh * d.weight > doh * least.weight && d.available) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** ip_vs_dest_set_max */
function setMax(set: readonly RealServer[]): RealServer | null {
  let i = 0;
  while (i < set.length && set[i]!.weight <= 0) i++;
  if (i === set.length) return null;
  let most = set[i]!;
  let moh = overhead(most);
  for (i++; i < set.length; i++) {
    const d = set[i]!;
    const doh = overhead(d);
    if (moh * d.weight < doh * most.weight && d.weight > 0) {
      most = d;
      moh = doh;
    }
  }
  return most;
}

export function createLblcr(_svc: VirtualService, env: SchedulerEnv): Scheduler {
  const cache = new Map<number, LblcrEntry>();
  const gc = new LocalityGc(cache, () => env.lblcrExpiration);
  return {
    name: 'lblcr',
    pick(svc: VirtualService, ctx: SchedContext): RealServer | null {
      const en = cache.get(ctx.vaddr);
      const now = ctx.now;
      if (en !== undefined) {
        if (!ctx.dryRun) en.lastuse = now;
        const d = setMin(en.set);
        if (!ctx.dryRun && en.set.length > 1 && now > en.lastmod + env.lblcrExpiration * 1000) {
          const m = setMax(en.set);
          if (m !== null) {
            en.set = en.set.filter((x) => x !== m);
            en.lastmod = now;
          }
        }
        if (d !== null && !lbOverloaded(d, svc)) return d;
        const p = weightedLeast(svc.dests, overhead);
        if (p === null || ctx.dryRun) return p;
        if (!en.set.includes(p)) {
          en.set = [p, ...en.set];
          en.lastmod = now;
        }
        return p;
      }
      const p = weightedLeast(svc.dests, overhead);
      if (p === null || ctx.dryRun) return p;
      cache.set(ctx.vaddr, { set: [p], lastmod: now, lastuse: now });
      return p;
    },
    tick: (now) => gc.tick(now),
    done: () => cache.clear(),
  };
}
