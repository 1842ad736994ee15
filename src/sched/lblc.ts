/**
 * lblc — locality-based least connection (ip_vs_lblc.c). Key: the packet's destination
 * address (the VIP in NAT mode). A cache maps it to one server; a hit is used while that
 * server is available, has weight > 0 and is not "overloaded" in lblc's sense (active > weight
 * while some server has 2 * active < weight; the OVERLOAD flag itself is not checked on a
 * hit). Otherwise wlc picks and the entry is (re)pointed at the pick.
 * Housekeeping every 60 s: every 30th run drops entries unused for lblc_expiration (default
 * 1 day); in between, if the cache holds more than 16384 entries, entries idle >= 6 minutes
 * are dropped until the excess (times 4/3, at most 8192) is gone.
 */
import type { Scheduler, SchedContext, SchedulerEnv } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { overhead, weightedLeast } from './common.js';

export const LBLC_CHECK_INTERVAL_MS = 60_000;
export const LBLC_MAX_SIZE = 1024 * 16;
const ENTRY_TIMEOUT_MS = 6 * 60_000;
const COUNT_FOR_FULL_EXPIRATION = 30;

/** lblc/lblcr's overload heuristic (ipvs-spec §5.3). */
export function lbOverloaded(d: RealServer, svc: VirtualService): boolean {
  if (d.activeConns > d.weight) {
    for (const x of svc.dests) if (x.activeConns * 2 < x.weight) return true;
  }
  return false;
}

/** The periodic sweep both locality schedulers share. */
export class LocalityGc<E extends { lastuse: number }> {
  #counter = 1;
  #lastCheck = -1;
  constructor(
    readonly entries: Map<number, E>,
    readonly expirationS: () => number,
  ) {}

  tick(now: number): void {
    if (this.#lastCheck < 0) this.#lastCheck = now;
    while (now - this.#lastCheck >= LBLC_CHECK_INTERVAL_MS) {
      this.#lastCheck += LBLC_CHECK_INTERVAL_MS;
      this.#run(now);
    }
  }

  #run(now: number): void {
    if (this.#counter % COUNT_FOR_FULL_EXPIRATION === 0) {
      const exp = this.expirationS() * 1000;
      for (const [k, e] of this.entries) if (now >= e.lastuse + exp) this.entries.delete(k);
      this.#counter = 1;
      return;
    }
    if (this.entries.size <= LBLC_MAX_SIZE) {
      this.#counter++;
      return;
    }
    let goal = Math.min(Math.floor(((this.entries.size - LBLC_MAX_SIZE) * 4) / 3), LBLC_MAX_SIZE / 2);
    for (const [k, e] of this.entries) {
      if (goal <= 0) break;
      if (now < e.lastuse + ENTRY_TIMEOUT_MS) continue;
      this.entries.delete(k);
      goal--;
    }
  }
}

interface LblcEntry {
  dest: RealServer;
  lastuse: number;
}

export function createLblc(_svc: VirtualService, env: SchedulerEnv): Scheduler {
  const cache = new Map<number, LblcEntry>();
  const gc = new LocalityGc(cache, () => env.lblcExpiration);
  return {
    name: 'lblc',
    pick(svc: VirtualService, ctx: SchedContext): RealServer | null {
      const en = cache.get(ctx.vaddr);
      if (en !== undefined) {
        if (!ctx.dryRun) en.lastuse = ctx.now;
        const d = en.dest;
        if (d.available && d.weight > 0 && !lbOverloaded(d, svc)) return d;
      }
      const d = weightedLeast(svc.dests, overhead);
      if (d === null || ctx.dryRun) return d;
      if (en !== undefined) en.dest = d;
      else cache.set(ctx.vaddr, { dest: d, lastuse: ctx.now });
      return d;
    },
    tick: (now) => gc.tick(now),
    done: () => cache.clear(),
  };
}
