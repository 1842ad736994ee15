/**
 * The lease that lets the fast path skip the policy rules (bpf/ulvs_fib_mode.h,
 * datapath/tun/fib-mode.ts, docs/fib-direct.md; `--fast-path-fib auto`, the default).
 *
 *   check      `ip -j rule show` and `ip -j -4 addr show` in ulvsd's namespace: the local set
 *              written, then, when nothing blocks (fib-mode.ts directBlockers), the lease
 *              granted; else revoked. At start, every CHECK_MS, after a rule change of ulvsd's
 *              own (recheck) and after each change `ip -4 monitor rule address` reports.
 *   renew      every RENEW_MS while the last check passed: the lease := now + LEASE_MS. A ulvsd
 *              that is killed or stuck stops renewing: within LEASE_MS the program walks the
 *              rules again, as a program without ulvsd must (a rule added then is obeyed).
 *   an event   from the monitor: the lease is revoked at once (one map write), the check runs
 *              SETTLE_MS later (a burst of changes, e.g. an address and its routes, is one check).
 *              Between the change and the monitor's line, a few ms, the fast path still looks
 *              up the main table alone.
 * Never throws; what it did is counted (counters()) and said once per change of verdict.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { directBlockers, FibModeMaps, localAddrs, type FibPlan, type IpAddrLink, type IpRule } from '../datapath/tun/fib-mode.js';

/** What the lease writes (FibModeMaps; a fake in the unit test). */
export interface LeaseMaps {
  lease(untilNs: bigint): void;
  setLocals(addrs: readonly number[]): void;
  close(): void;
}

/** How the lease reads the namespace and watches it (real `ip` by default; fakes in the unit test). */
export interface LeaseIo {
  ipJson<T>(args: string[]): Promise<T>;
  /** the change monitor: a child whose stdout lines are changes */
  monitor(): ChildProcess;
}

export const LEASE_MS = 1000;
export const RENEW_MS = 250;
export const CHECK_MS = 10_000;
export const SETTLE_MS = 100;

export interface FibLeaseLog {
  info(msg: string): void;
  warn(msg: string): void;
}

const ipJsonReal = <T>(args: string[]): Promise<T> =>
  new Promise((resolve, reject) =>
    execFile('ip', ['-j', ...args], { timeout: 5000, maxBuffer: 16 << 20 }, (err, stdout) => {
      if (err) return reject(err);
      try {
        resolve(JSON.parse(stdout || '[]') as T);
      } catch (e) {
        reject(e);
      }
    }),
  );

const REAL_IO: LeaseIo = {
  ipJson: ipJsonReal,
  // setpriv --pdeathsig (util-linux): the monitor dies with ulvsd, also after kill -9 (an
  // orphaned `ip monitor` would otherwise live on, and hold a deleted namespace alive)
  monitor: () => spawn('setpriv', ['--pdeathsig', 'KILL', '--', 'ip', '-4', 'monitor', 'rule', 'address'], { stdio: ['ignore', 'pipe', 'ignore'] }),
};

export class FibLease {
  readonly #counters = { fib_direct: 0, fib_checks: 0, fib_check_errors: 0, fib_revokes: 0, fib_renew_errors: 0 };
  #ok = false;
  #lastVerdict = '';
  #monitor: ChildProcess | null = null;
  #renew: NodeJS.Timeout | null = null;
  #periodic: NodeJS.Timeout | null = null;
  #settle: NodeJS.Timeout | null = null;
  #checking: Promise<void> | null = null;
  #again = false;
  #stopped = false;
  /** changes seen (changed()): a check that a change overtook grants nothing */
  #changes = 0;

  constructor(
    readonly maps: LeaseMaps,
    readonly plan: () => FibPlan,
    readonly log: FibLeaseLog,
    readonly io: LeaseIo = REAL_IO,
  ) {}

  start(): void {
    this.#watch();
    this.#renew = setInterval(() => this.#renewNow(), RENEW_MS).unref();
    this.#periodic = setInterval(() => void this.recheck(), CHECK_MS).unref();
    void this.recheck();
  }

  /** Revoke the lease at once, check again after SETTLE_MS (a change of ulvsd's own rules, a monitor line). */
  changed(): void {
    if (this.#stopped) return;
    this.#changes++;
    this.#revoke();
    if (this.#settle) clearTimeout(this.#settle);
    this.#settle = setTimeout(() => void this.recheck(), SETTLE_MS).unref();
  }

  /** Check now (one at a time: a request during a check runs another after it). Resolves when done. */
  recheck(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#checking) {
      this.#again = true;
      return this.#checking;
    }
    this.#checking = (async () => {
      do {
        this.#again = false;
        await this.#check();
      } while (this.#again && !this.#stopped);
    })().finally(() => (this.#checking = null));
    return this.#checking;
  }

  async #check(): Promise<void> {
    this.#counters.fib_checks++;
    const changes = this.#changes;
    let blockers: string[];
    try {
      const [rules, links] = await Promise.all([this.io.ipJson<IpRule[]>(['rule', 'show']), this.io.ipJson<IpAddrLink[]>(['-4', 'addr', 'show'])]);
      if (this.#stopped) return;
      const locals = localAddrs(links);
      blockers = directBlockers(rules, this.plan(), locals.length);
      if (this.#monitor === null) blockers.push('the policy rules are not watched (ip monitor is not running)');

      if (blockers.length === 0) this.maps.setLocals(locals);
    } catch (e) {
      this.#counters.fib_check_errors++;
      blockers = [`the check failed: ${(e as Error).message.split('\n')[0]}`];
    }
    if (this.#stopped) return;
    // a change reported while `ip` ran may be missing from what it printed: the lease stays
    // revoked (changed() did that) and the check it scheduled decides
    if (changes !== this.#changes) return;
    this.#ok = blockers.length === 0;
    if (this.#ok) this.#renewNow();
    else this.#revoke();
    const verdict = this.#ok ? 'main table' : blockers.join('; ');
    if (verdict !== this.#lastVerdict) {
      this.#lastVerdict = verdict;
      this.log.info(this.#ok ? 'fast path: route lookups go to the main table directly (no policy rule but ulvsd\'s own and the kernel\'s could change them)' : `fast path: route lookups walk the policy rules (${verdict})`);
    }
  }

  #renewNow(): void {
    if (!this.#ok || this.#stopped) return;
    try {
      this.maps.lease(process.hrtime.bigint() + BigInt(LEASE_MS) * 1_000_000n); // CLOCK_MONOTONIC, as bpf_ktime_get_ns
      this.#counters.fib_direct = 1;
    } catch {
      this.#counters.fib_renew_errors++;
      this.#revoke();
    }
  }

  #revoke(): void {
    const was = this.#ok;
    this.#ok = false;
    this.#counters.fib_direct = 0;
    try {
      this.maps.lease(0n);
    } catch {
      this.#counters.fib_renew_errors++; // the lease then runs out by itself within LEASE_MS
    }
    if (was) this.#counters.fib_revokes++;
  }

  /** `ip -4 monitor rule address` (IPv6's rules and addresses do not touch these IPv4 lookups):
   *  any line is a change. Restarted after a second if it ends (or cannot start: no lease then). */
  #watch(): void {
    if (this.#stopped) return;
    let p: ChildProcess;
    try {
      p = this.io.monitor();
    } catch (e) {
      this.log.warn(`fast path: cannot watch the policy rules (${(e as Error).message}): route lookups walk them`);
      return this.#unwatched();
    }
    this.#monitor = p;
    p.stdout!.on('data', () => this.changed());
    // it could not start ('error' alone: no setpriv or ip) or it ended: either way once
    const gone = () => {
      if (this.#monitor !== p) return;
      this.#monitor = null;
      if (!this.#stopped) this.#unwatched();
    };
    p.on('error', gone);
    p.on('exit', gone);
  }

  /** Without a watcher no lease: revoked until the monitor runs again. */
  #unwatched(): void {
    this.#revoke();
    this.#lastVerdict = '';
    setTimeout(() => {
      this.#watch();
      void this.recheck();
    }, 1000).unref();
  }

  counters(): Record<string, number> {
    return { ...this.#counters };
  }

  /** Stop renewing and revoke (a final stop detaches the program anyway; a hand-over's new program has its own lease). */
  stop(): void {
    if (this.#stopped) return;
    this.#revoke();
    this.#stopped = true;
    for (const t of [this.#renew, this.#periodic, this.#settle]) if (t) clearInterval(t);
    this.#monitor?.kill();
    this.#monitor = null;
    this.maps.close();
  }
}

/** The lease for the fast path program `progFd`, started; null (said through `log.warn`) when
 *  its maps cannot be opened: the program then walks the rules. */
export function startFibLease(progFd: number, plan: () => FibPlan, log: FibLeaseLog): FibLease | null {
  try {
    const lease = new FibLease(new FibModeMaps(progFd), plan, log);
    lease.start();
    return lease;
  } catch (e) {
    log.warn(`fast path: route lookups walk the policy rules (${(e as Error).message.split('\n')[0]})`);
    return null;
  }
}
