/**
 * Counters and IPVS's rate estimator (ip_vs_est.c), per service, per real server and global.
 *
 * Counters are Float64 (exact to 2^53). The estimator runs every 2 s (the caller's `tick`):
 *   sample = delta << 9 (conns, packets) or delta << 4 (bytes); est += (sample - est) >> 2
 * and rates read as cps/pps = (est + 0x1FF) >> 10, bps = (est + 0xF) >> 5, i.e. per second.
 */

export const Stat = { CONNS: 0, INPKTS: 1, OUTPKTS: 2, INBYTES: 3, OUTBYTES: 4 } as const;
export const STAT_COUNT = 5;
export const ESTIMATOR_PERIOD_MS = 2000;

/** One Stats as plain numbers (STAT_COUNT each): the counters, the counters at the estimator's
 *  last step, and its estimates; what a restart hands to the next process (carry-over.ts). */
export interface StatsCarry {
  c: number[];
  last: number[];
  est: number[];
}

export class Stats {
  /** live counters, index = Stat.* */
  readonly c = new Float64Array(STAT_COUNT);
  readonly #last = new Float64Array(STAT_COUNT);
  readonly #est = new Float64Array(STAT_COUNT);

  /** One estimator step; call every ESTIMATOR_PERIOD_MS. */
  estimate(): void {
    for (let k = 0; k < STAT_COUNT; k++) {
      const delta = this.c[k]! - this.#last[k]!;
      this.#last[k] = this.c[k]!;
      const sample = delta * (k >= Stat.INBYTES ? 16 : 512);
      this.#est[k] = this.#est[k]! + Math.floor((sample - this.#est[k]!) / 4);
    }
  }

  /** Rate per second for counter k (cps, inpps, outpps, inbps, outbps), as ipvsadm shows it. */
  rate(k: number): number {
    const e = this.#est[k]!;
    const r = k >= Stat.INBYTES ? Math.floor((e + 0xf) / 32) : Math.floor((e + 0x1ff) / 1024);
    return r < 0 ? 0 : r;
  }

  /** The counters and the estimator's state as plain numbers. */
  save(): StatsCarry {
    return { c: Array.from(this.c), last: Array.from(this.#last), est: Array.from(this.#est) };
  }

  /** Add `x` (a previous process's, or another worker's, from save()) to this one. Counters,
   *  last values and estimates are each sums over the workers (the estimator is linear in its
   *  input but for its rounding), so adding them keeps the sums that ipvsadm shows. */
  add(x: StatsCarry): void {
    for (let k = 0; k < STAT_COUNT; k++) {
      this.c[k] = this.c[k]! + x.c[k]!;
      this.#last[k] = this.#last[k]! + x.last[k]!;
      this.#est[k] = this.#est[k]! + x.est[k]!;
    }
  }

  /** ipvsadm -Z: counters and estimates back to zero. */
  zero(): void {
    this.c.fill(0);
    this.#last.fill(0);
    this.#est.fill(0);
  }
}
