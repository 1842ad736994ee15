/**
 * The flood defences' clock and memory (core/defense.ts; in the kernel, defense_work_handler
 * every second). Once a second ulvsd reads MemAvailable from /proc/meminfo and gives it, in
 * 4096-byte pages, to every worker's engine (Director.defend: update_defense_level, then
 * drop_entry's drops while on); it keeps their merged state for GET /v1/counters (`defense`)
 * and the metrics' gauges, and logs each defence switching on or off (kind `defense`):
 *
 *   flood defence drop_entry on (drop_entry=2, worker 0): memory low, 0 pages available <
 *     amemthresh 2 (connection table 0 pages free, host 1987654 pages)
 *
 * at most one line per defence per LOG_EVERY_MS; changes in between are held back and counted,
 * and once the interval has passed one line gives the state then and how many were held back.
 * A /proc/meminfo that cannot be read counts as "host memory unknown" (not low), warned once;
 * the table's side still works. Never throws.
 */
import { readFileSync } from 'node:fs';
import { DEFENSES, mergeDefense, PAGE_BYTES, type DefenseChange, type DefenseName, type DefenseStatus } from '../core/defense.js';
import type { DaemonLog } from './log.js';

export const DEFENSE_PERIOD_MS = 1000;
/** at most one log line per defence this often, ms */
export const LOG_EVERY_MS = 5000;

/** MemAvailable in 4096-byte pages from /proc/meminfo's text; -1 when it has none. */
export function memAvailablePages(meminfo: string): number {
  const m = /^MemAvailable:\s+(\d+) kB$/m.exec(meminfo);
  return m ? Math.floor((Number(m[1]) * 1024) / PAGE_BYTES) : -1;
}

export interface DefensePool {
  defend(memPages: number): Promise<{ changes: DefenseChange[]; status: DefenseStatus }[]>;
}

/** One change as a log line (the file header shows one). */
export function defenseLine(c: DefenseChange, worker: number): string {
  const why = c.on ? `memory low, ${c.availPages} pages available < amemthresh ${c.amemthresh}` : `${c.availPages} pages available, amemthresh ${c.amemthresh}`;
  const host = c.memPages >= 0 ? `host ${c.memPages} pages` : 'host memory unknown';
  const manual = c.mode === 0 || c.mode === 3 ? ` (set to ${c.mode})` : '';
  return `flood defence ${c.defense} ${c.on ? 'on' : 'off'}${manual} (${c.defense}=${c.mode}, worker ${worker}): ${why} (connection table ${c.tablePages} pages free, ${host})`;
}

export class DefenseFeed {
  readonly #pool: DefensePool;
  readonly #log: DaemonLog;
  readonly #readMem: () => number;
  readonly #now: () => number;
  #status: DefenseStatus | null = null;
  #timer: NodeJS.Timeout | null = null;
  #busy = false;
  #memWarned = false;
  /** per defence: when its last line was logged, and the changes held back since */
  readonly #lines = new Map<DefenseName, { at: number; held: number }>();

  constructor(pool: DefensePool, log: DaemonLog, readMem = () => memAvailablePages(readFileSync('/proc/meminfo', 'utf8')), now = () => Date.now()) {
    this.#pool = pool;
    this.#log = log;
    this.#readMem = readMem;
    this.#now = now;
  }

  start(): this {
    this.#timer = setInterval(() => void this.tick(), DEFENSE_PERIOD_MS);
    this.#timer.unref();
    return this;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** the engines' defences as of the last tick (mergeDefense), null before the first */
  get status(): DefenseStatus | null {
    return this.#status;
  }

  /** One second's work (the timer's; tests call it). A tick still waiting for the workers
   *  makes the next one a no-op. */
  async tick(): Promise<void> {
    if (this.#busy) return;
    this.#busy = true;
    try {
      const r = await this.#pool.defend(this.#memPages());
      this.#status = mergeDefense(r.map((x) => x.status));
      r.forEach((x, i) => x.changes.forEach((c) => this.#note(c, i)));
      this.#flushHeld();
    } catch (e) {
      this.#log.warn(`flood defences not updated: ${(e as Error).message}`, 'defense');
    } finally {
      this.#busy = false;
    }
  }

  #memPages(): number {
    try {
      const p = this.#readMem();
      if (p < 0) throw new Error('no MemAvailable line');
      return p;
    } catch (e) {
      if (!this.#memWarned) this.#log.warn(`/proc/meminfo: ${(e as Error).message}; the flood defences judge the connection table only`, 'defense');
      this.#memWarned = true;
      return -1;
    }
  }

  #note(c: DefenseChange, worker: number): void {
    const t = this.#now();
    const l = this.#lines.get(c.defense);
    if (l && t - l.at < LOG_EVERY_MS) {
      l.held++;
      return;
    }
    const held = l?.held ?? 0;
    this.#lines.set(c.defense, { at: t, held: 0 });
    this.#log.info(`${defenseLine(c, worker)}${held ? `; ${held} changes not logged in the last ${LOG_EVERY_MS / 1000} s` : ''}`, 'defense', { defense: c.defense, on: c.on, mode: c.mode, worker });
  }

  /** Changes held back whose interval has passed: one line with the state now. */
  #flushHeld(): void {
    const t = this.#now();
    const s = this.#status;
    for (const k of DEFENSES) {
      const l = this.#lines.get(k);
      if (!l || l.held === 0 || t - l.at < LOG_EVERY_MS || s === null) continue;
      this.#log.info(`flood defence ${k} now ${s.on[k] ? 'on' : 'off'} (${k}=${s.mode[k]}); ${l.held} changes not logged in the last ${LOG_EVERY_MS / 1000} s`, 'defense', { defense: k, on: s.on[k] === 1, mode: s.mode[k] });
      this.#lines.set(k, { at: t, held: 0 });
    }
  }
}
