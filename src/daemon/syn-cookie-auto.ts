/**
 * syn_cookies=2: SYN cookies switched on and off by ulvsd itself, once a second, from what the
 * kernel counts (docs/syn-cookies.md "Automatic mode"):
 *
 *   on   when the TUN dropped packets in the last period (its queue was full: the workers
 *        cannot read what arrives, so real clients' SYNs are lost with the flood's; measured,
 *        BENCHMARKS.md "SYN flood": an unpaced flood fills the queue long before the table)
 *   stays on while the kernel's SYN-ACKs go unanswered at UNANSWERED_PER_S or more (cookies sent
 *        minus cookies checked: a flood from spoofed sources, whose SYNs no longer reach the
 *        TUN once the kernel answers them) or the TUN still drops
 *   off  after QUIET_S periods in a row with neither
 *
 * While on, the TCP services whose real servers are all NAT get cookies (a DR or tunnelled
 * server's replies bypass the director, syn-cookies.ts); their new connections lose window
 * scaling, SACK and timestamps (the fast path translates their sequence numbers once they are
 * offloaded), which is why cookies are not simply left on. Connections opened before or
 * after are not touched. A client that got a cookie within the last QUIET_S seconds before the
 * switch off and answers later than that finds no connection (its ACK is not checked any more):
 * its retransmissions end in a reset from the server, as after any director restart.
 *
 * `SynCookieAuto.feed(sample)` is the decision, pure; `SynCookieWatch` is the daemon's timer that
 * samples (`cookieSample`: the TUN's sysfs counter and the fast path's counters) and carries it
 * out through the guard.
 */
import { readTunDropped } from './pressure.js';

/** Cumulative counters, as read once a period. */
export interface CookieSample {
  /** the TUN device's tx_dropped (/sys/class/net/DEV/statistics): packets the kernel could not queue to ulvsd */
  tunDropped: number;
  /** the fast path's syncookie_sent and syncookie_valid */
  cookiesSent: number;
  cookiesValid: number;
}

/** Unanswered cookie SYN-ACKs per second that keep the mode on (a real client answers within a round trip). */
export const UNANSWERED_PER_S = 200;
/** Periods (seconds) without a flood's sign before cookies go off again. */
export const QUIET_S = 10;

export class SynCookieAuto {
  #last: CookieSample | null = null;
  #on = false;
  #quiet = 0;

  get on(): boolean {
    return this.#on;
  }

  /** One period's sample (`seconds` long); returns whether cookies should be on now. The first
   *  sample only sets the baseline. Counters that went down (a restarted program) reset it. */
  feed(s: CookieSample, seconds = 1): boolean {
    const p = this.#last;
    this.#last = { ...s };
    if (p === null || s.tunDropped < p.tunDropped || s.cookiesSent < p.cookiesSent || s.cookiesValid < p.cookiesValid) return this.#on;
    const dropped = s.tunDropped - p.tunDropped;
    const unanswered = s.cookiesSent - p.cookiesSent - (s.cookiesValid - p.cookiesValid);
    const flood = dropped > 0 || (this.#on && unanswered >= UNANSWERED_PER_S * seconds);
    if (flood) {
      this.#on = true;
      this.#quiet = 0;
    } else if (this.#on && ++this.#quiet >= QUIET_S) {
      this.#on = false;
      this.#quiet = 0;
    }
    return this.#on;
  }

  /** Forget everything (the mode left 2). */
  reset(): void {
    this.#last = null;
    this.#on = false;
    this.#quiet = 0;
  }
}

/** What the watch drives: the guard (syn-cookies.ts). */
export interface AutoTarget {
  readonly mode: number;
  setActive(on: boolean): void;
}

/** The daemon's once-a-second timer for mode 2. `sample` returns null when it cannot read
 *  (no fast path): nothing changes then. */
export class SynCookieWatch {
  readonly auto = new SynCookieAuto();
  #timer: NodeJS.Timeout | null = null;

  constructor(
    readonly target: AutoTarget,
    readonly sample: () => CookieSample | null,
  ) {}

  start(periodMs = 1000): this {
    this.#timer = setInterval(() => this.tick(), periodMs);
    this.#timer.unref();
    return this;
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
  }

  /** One period (the timer's; tests call it). A sample that throws (maps closed at a stop) is skipped. */
  tick(): void {
    if (this.target.mode !== 2) {
      this.auto.reset();
      return;
    }
    let s: CookieSample | null;
    try {
      s = this.sample();
    } catch {
      return;
    }
    if (s === null) return;
    const was = this.auto.on;
    const on = this.auto.feed(s);
    if (on !== was) this.target.setActive(on);
  }
}

/** The sample for device `dev` and the fast path's counters (KernelSetup.synCookieCounters);
 *  null when either cannot be read. */
export function cookieSample(dev: string, counters: () => Record<string, number>): CookieSample | null {
  const tunDropped = readTunDropped(dev);
  const c = counters();
  if (tunDropped === null || c['syncookie_sent'] === undefined) return null;
  return { tunDropped, cookiesSent: c['syncookie_sent'], cookiesValid: c['syncookie_valid'] ?? 0 };
}
