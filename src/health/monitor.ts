/**
 * Runs every checker of every real server on its own schedule and reports when a real server
 * changes between alive and dead (keepalived's semantics, ecosystem.md §1.4/§1.6):
 * - a server is alive only while all its checkers are up (no checker: always alive);
 * - a checker starts up, or down with `alpha`;
 * - an up checker that fails is retried after delay_before_retry until `retry` extra attempts
 *   failed, then it is down; a down checker is re-run every delay_loop and the first success
 *   brings it back;
 * - MISC_CHECK with misc_dynamic sets the server's weight from its exit code (2..255 -> exit-2),
 *   and exit 0 returns it to the configured weight.
 * - a check that did not run (CheckResult.notRun: the director lacked a file descriptor or a
 *   process) changes nothing: no verdict, no retry used; it is counted in `notRun` by errno name
 *   and tried again after delay_loop (keepalived's tcp_connect_thread: "Rescheduling.").
 * Time and the check function are injected, so the logic is tested with a fake clock.
 */
import type { CheckerSpec } from './checker-spec.js';
import type { CheckResult } from './checks.js';

export interface ServerHealth {
  alive: boolean;
  /** weight set by a dynamic MISC_CHECK, if any */
  dynamicWeight?: number;
  reason: string;
}

export interface Clock {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(t: unknown): void;
}

interface CheckerState {
  c: CheckerSpec;
  up: boolean;
  retriesLeft: number;
  timer: unknown;
}

export class HealthMonitor {
  readonly #servers = new Map<string, { checkers: CheckerState[]; health: ServerHealth }>();
  #stopped = false;

  constructor(
    readonly run: (c: CheckerSpec) => Promise<CheckResult>,
    readonly onChange: (key: string, h: ServerHealth) => void,
    readonly clock: Clock = { setTimeout: (f, ms) => setTimeout(f, ms).unref(), clearTimeout: (t) => clearTimeout(t as NodeJS.Timeout) },
    /** checks not run, by errno name (EMFILE, ENFILE, EAGAIN, ENOMEM); given, to outlive a reload's new monitor */
    readonly notRun: Record<string, number> = {},
  ) {}

  /** Start watching a server (key: any stable identity). `previous` keeps a known state on reload. */
  add(key: string, checkers: CheckerSpec[], alpha: boolean, previous?: ServerHealth): ServerHealth {
    const states: CheckerState[] = checkers.map((c) => ({ c, up: previous ? previous.alive : !(c.alpha || alpha), retriesLeft: c.retry, timer: null }));
    const health: ServerHealth = previous ?? { alive: states.every((s) => s.up), reason: states.length ? (states.every((s) => s.up) ? 'not checked yet' : 'alpha: down until a check passes') : 'no checker' };
    this.#servers.set(key, { checkers: states, health });
    for (const s of states) this.#schedule(key, s, s.c.warmup);
    return health;
  }

  health(key: string): ServerHealth | undefined {
    return this.#servers.get(key)?.health;
  }

  stop(): void {
    this.#stopped = true;
    for (const v of this.#servers.values()) for (const s of v.checkers) if (s.timer !== null) this.clock.clearTimeout(s.timer);
    this.#servers.clear();
  }

  #schedule(key: string, s: CheckerState, seconds: number): void {
    s.timer = this.clock.setTimeout(() => void this.#runOnce(key, s), Math.round(seconds * 1000));
  }

  async #runOnce(key: string, s: CheckerState): Promise<void> {
    s.timer = null;
    const r = await this.run(s.c);
    const srv = this.#servers.get(key);
    if (this.#stopped || !srv || !srv.checkers.includes(s)) return;
    let next = s.c.delayLoop;
    if (r.notRun !== undefined) {
      this.notRun[r.notRun] = (this.notRun[r.notRun] ?? 0) + 1;
      return this.#schedule(key, s, next); // the director's shortage says nothing of the server
    }
    let weight = srv.health.dynamicWeight;
    if (r.ok) {
      s.up = true;
      s.retriesLeft = s.c.retry;
      if (r.weight === null) weight = undefined; // dynamic MISC_CHECK exit 0: configured weight
      else if (r.weight !== undefined) weight = r.weight;
    } else if (s.up && s.retriesLeft > 0) {
      s.retriesLeft--;
      next = s.c.delayBeforeRetry;
    } else s.up = false;
    const alive = srv.checkers.every((x) => x.up);
    if (alive !== srv.health.alive || weight !== srv.health.dynamicWeight) {
      srv.health = { alive, reason: `${s.c.type}: ${r.reason}`, ...(weight !== undefined ? { dynamicWeight: weight } : {}) };
      this.onChange(key, srv.health);
    }
    this.#schedule(key, s, next);
  }
}
