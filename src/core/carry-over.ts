/**
 * What a restart carries over besides the connections (conn/handover.ts): the counters and rate
 * estimators of every service, real server and of the whole director, the outcome and event
 * counters, and the round-robin schedulers' cursors. IPVS keeps all of these in the kernel
 * across a keepalived or ipvsadm restart, so `ipvsadm -L -n --stats` and `--rate`, and the
 * metrics built from them, go on where they were; ulvs's engines live in the process, so the
 * stopping one writes them out (daemon/carry-file.ts) and the next one adds them back.
 *
 * Services and servers are named by identity (protocol, VIP, port; address, port), never by a
 * table index or an id of this process, and counters by name: the next process may run another
 * build (an upgrade), other rules, or another worker count.
 *
 * Workers: each engine counts its own share of the traffic and ipvsadm shows the sum
 * (snapshot-merge.ts). A stop writes the sum of the workers' carries (mergeCarries); a start
 * gives it whole to one engine (importCarry), the others start from zero, so every sum shown is
 * the same whatever the worker counts before and after. The estimator's state is summed alike.
 * Its first step in the new process covers the time since the old process's last step, the
 * restart's gap included: one sample over a longer period than 2 s, as IPVS's estimator never
 * has, smoothed by the estimator's 1/4 weight.
 *
 * The cursors live in the shared scheduler slots (sched-state.ts), one per service for all
 * workers: restoreCursors sets them once, before any engine picks (daemon/carry-handover.ts
 * runs it on a scratch engine over the same slots). A service or server the new rules lack is
 * skipped; a scheduler that changed (rr -> wrr) starts at the head, as a new one does.
 */
import type { Director } from './director.js';
import type { SchedCursor } from './service.js';
import type { StatsCarry } from './stats.js';
import { EVENT_NAMES, OUTCOME_NAMES } from './verdict.js';

export type { StatsCarry } from './stats.js';

export interface DestCarry {
  addr: number;
  port: number;
  stats: StatsCarry;
}

export interface ServiceCarry {
  proto: number;
  /** uint32 */
  addr: number;
  port: number;
  stats: StatsCarry;
  dests: DestCarry[];
  /** the scheduler's name and its cursor (Scheduler.cursor), null for schedulers without one */
  cursor: ({ scheduler: string } & SchedCursor) | null;
}

export interface EngineCarry {
  /** the director's totals (ipvsadm --stats without a service) */
  totals: StatsCarry;
  services: ServiceCarry[];
  /** outcome and event counters by name (Director.counters) */
  counters: Record<string, number>;
}

/** What `d` has to carry over (the engine is not changed). */
export function exportCarry(d: Director): EngineCarry {
  return {
    totals: d.stats.save(),
    services: d.services.map((v) => {
      const c = v.sched?.cursor?.(v);
      return {
        proto: v.proto,
        addr: v.addr >>> 0,
        port: v.port,
        stats: v.stats.save(),
        dests: v.dests.map((x) => ({ addr: x.addr >>> 0, port: x.port, stats: x.stats.save() })),
        cursor: c ? { scheduler: v.schedName, server: c.server && { addr: c.server.addr >>> 0, port: c.server.port }, weight: c.weight } : null,
      };
    }),
    counters: d.counters(),
  };
}

const addStats = (a: StatsCarry, b: StatsCarry): StatsCarry => ({ c: a.c.map((x, k) => x + b.c[k]!), last: a.last.map((x, k) => x + b.last[k]!), est: a.est.map((x, k) => x + b.est[k]!) });

/** The workers' carries as one: stats and counters summed by identity and name; the cursors
 *  (shared by all workers) from the first. Null for none. */
export function mergeCarries(xs: readonly EngineCarry[]): EngineCarry | null {
  const [first, ...rest] = xs;
  if (!first) return null;
  const out: EngineCarry = structuredClone(first);
  const svcKey = (s: { proto: number; addr: number; port: number }) => `${s.proto}/${s.addr}/${s.port}`;
  const byKey = new Map(out.services.map((s) => [svcKey(s), s]));
  for (const x of rest) {
    out.totals = addStats(out.totals, x.totals);
    for (const [k, v] of Object.entries(x.counters)) out.counters[k] = (out.counters[k] ?? 0) + v;
    for (const s of x.services) {
      const m = byKey.get(svcKey(s));
      if (!m) continue; // every worker applies the same rules: not expected
      m.stats = addStats(m.stats, s.stats);
      for (const d of s.dests) {
        const md = m.dests.find((y) => y.addr === d.addr && y.port === d.port);
        if (md) md.stats = addStats(md.stats, d.stats);
      }
    }
  }
  return out;
}

/** What importCarry found a place for. */
export interface CarryResult {
  services: number;
  dests: number;
  /** services and servers of the carry that the current rules do not have (their counts are dropped) */
  unmatched: number;
}

/** Add a carry's stats and counters to engine `d` (one engine of the director: see the header). */
export function importCarry(d: Director, c: EngineCarry): CarryResult {
  const r: CarryResult = { services: 0, dests: 0, unmatched: 0 };
  d.stats.add(c.totals);
  for (const s of c.services) {
    const v = d.getService({ proto: s.proto, addr: s.addr | 0, port: s.port });
    if (v === null) {
      r.unmatched += 1 + s.dests.length;
      continue;
    }
    v.stats.add(s.stats);
    r.services++;
    for (const x of s.dests) {
      const rs = v.dests.find((y) => y.addr >>> 0 === x.addr && y.port === x.port);
      if (rs === undefined) r.unmatched++;
      else {
        rs.stats.add(x.stats);
        r.dests++;
      }
    }
  }
  OUTCOME_NAMES.forEach((n, i) => (d.outcomes[i] = d.outcomes[i]! + (c.counters[n] ?? 0)));
  EVENT_NAMES.forEach((n, i) => (d.events[i] = d.events[i]! + (c.counters[n] ?? 0)));
  return r;
}

/** Set the schedulers' cursors of `d`'s services from a carry; returns how many were set. */
export function restoreCursors(d: Director, c: EngineCarry): number {
  let n = 0;
  for (const s of c.services) {
    const v = d.getService({ proto: s.proto, addr: s.addr | 0, port: s.port });
    if (v === null || s.cursor === null || v.schedName !== s.cursor.scheduler || !v.sched?.setCursor) continue;
    v.sched.setCursor(v, s.cursor);
    n++;
  }
  return n;
}
