/**
 * Resource exhaustion, logged once per cause: the daemon hands every counter it has (the
 * workers' data-path counters, the TUN device's drops, the checkers' checks not run) to
 * observe() about once a second, and for each cause named in CAUSES:
 *   - the first growth is one warning line: what ran out, how many, and what ulvsd does about it;
 *   - while it keeps growing, at most one more line per `repeatMs`, with the count since the
 *     last line (the repeats in between are suppressed, their count is in that line);
 *   - once it has not grown for `recoverMs`, one info line: the pressure went.
 * The counters themselves are exported (/metrics, GET /v1/counters); this only decides what is
 * written to the log. Times are ms on the caller's clock.
 */

export interface PressureCause {
  /** the counter's name among those observed */
  key: string;
  /** what it means, and what ulvsd does, for the log line */
  what: string;
}

/** The counters that mean "a resource ran out", and what ulvsd does when they grow. */
export const CAUSES: readonly PressureCause[] = [
  { key: 'tun_queue_dropped', what: 'TUN queue full: the kernel dropped packets bound for the workers (they do not keep up; the clients retransmit)' },
  { key: 'uring_enter_retries', what: 'io_uring_enter failed for want of kernel memory or queue room (EAGAIN/ENOMEM/EBUSY): the worker retries' },
  { key: 'uring_fallbacks', what: 'io_uring failed for good in a worker: it goes on with read(2)/write(2)' },
  { key: 'uring_sq_full', what: 'io_uring submission queue full: the write was dropped' },
  { key: 'fastpath_map_full', what: 'kernel flow map full: connections stay in user space (forwarded by the workers) until entries free' },
  { key: 'fastpath_route_errors', what: 'kernel flow map full for a direct-routing or tunnelled connection\'s way-out entry: its packets are routed by the VIP, not sent to its real server (raise --fast-path-flows)' },
  { key: 'health_not_run_EMFILE', what: 'checker not run: this process is out of file descriptors (EMFILE); the servers keep their state' },
  { key: 'health_not_run_ENFILE', what: 'checker not run: the system is out of file descriptors (ENFILE); the servers keep their state' },
  { key: 'health_not_run_EAGAIN', what: 'MISC_CHECK not run: no process could be made (EAGAIN); the servers keep their state' },
  { key: 'health_not_run_ENOMEM', what: 'checker not run: out of memory (ENOMEM); the servers keep their state' },
  { key: 'health_not_run_ENOENT', what: 'PING_CHECK not run: no ping program on this director (install iputils-ping); the servers keep their state' },
];

interface CauseState {
  last: number;
  active: boolean;
  /** when the last line was written, and the growth since it */
  loggedAt: number;
  held: number;
  grewAt: number;
}

export class PressureWatch {
  readonly #state = new Map<string, CauseState>();

  constructor(
    readonly log: { warn(msg: string, fields: Record<string, unknown>): void; info(msg: string, fields: Record<string, unknown>): void },
    readonly causes: readonly PressureCause[] = CAUSES,
    readonly repeatMs = 60_000,
    readonly recoverMs = 10_000,
  ) {}

  /** Look at the counters now; a cause whose counter is absent is left as it is (the caller
   *  may pass only some). The first value seen sets the baseline. */
  observe(counters: Readonly<Record<string, number>>, now: number): void {
    for (const c of this.causes) {
      const v = counters[c.key];
      if (v === undefined) continue;
      const s = this.#state.get(c.key);
      if (s === undefined) {
        this.#state.set(c.key, { last: v, active: false, loggedAt: 0, held: 0, grewAt: 0 });
        continue;
      }
      const grew = v - s.last;
      s.last = v;
      if (grew > 0) {
        s.grewAt = now;
        if (!s.active) {
          s.active = true;
          s.loggedAt = now;
          s.held = 0;
          this.log.warn(`${c.what}: ${grew} (total ${v})`, { cause: c.key, count: grew, total: v });
        } else if (now - s.loggedAt >= this.repeatMs) {
          const n = s.held + grew;
          s.loggedAt = now;
          s.held = 0;
          this.log.warn(`${c.what}: still, ${n} more (total ${v})`, { cause: c.key, count: n, total: v, suppressed: n });
        } else s.held += grew;
      } else if (s.active && now - s.grewAt >= this.recoverMs) {
        s.active = false;
        this.log.info(`recovered: ${c.key} has not grown for ${Math.round(this.recoverMs / 1000)} s (total ${v}${s.held ? `, ${s.held} since the last line` : ''})`, { cause: c.key, total: v, suppressed: s.held });
        s.held = 0;
      }
    }
  }
}
