/**
 * Keeps the kernel set-up tables (datapath/tun/kernel-tables.ts) in step with the rules the
 * workers run (docs/kernel-setup.md "Tables and atomic changes").
 *
 * The tables are built from a mirror engine in this thread: a Director given exactly the
 * operations the workers were given, in the same order (the start-up operations, then each
 * change's), so its server lists are in the workers' kernel order and its scheduler tables are
 * theirs. The control plane calls `applied(ops, rules)` once every worker has applied a change
 * (ControlTargets.published), so a connection the kernel reports names a server the engines have.
 *
 *   start()            publish the start-up tables (the workers are forwarding)
 *   applied(ops, r)    a rule change (API, reload, health weights, quiescing): mirror, publish
 *   setEnabled(on)     sysctl kernel_setup: 0 takes every service out of the kernel, 1 puts them back
 *   setBackupRunning(on)  a sync backup runs: every service out of the kernel while it does (the
 *                      engines may be in backup_only, serving nothing; a backup with backup_only 0
 *                      keeps serving, exactly, through the engines)
 *   setTracing(on)     a live trace (GET /v1/trace) runs: every service out of the kernel while it
 *                      does, so the trace sees every packet of new connections as the engine
 *                      handles them (a SYN the kernel set up would show only as its report)
 *   counters()         the publisher's (ksetup_*); {} without the maps
 *   close()            stop the retry timer, close the map fds
 *
 * Without the maps (no fast path, or a fast path without kernel set-up) every method does nothing.
 * A change waiting for a region's grace period is published by a timer (retryInMs). Never throws.
 */
import { Director } from '../core/director.js';
import { applyOps, type RuleOp } from '../core/rule-ops.js';
import { defaultRegistry } from '../sched/index.js';
import type { Rules } from '../control/rules.js';
import { KernelTables, openKernelTableMaps, type KernelTableFds } from '../datapath/tun/kernel-tables.js';
import { steeringSpec, type SteeringSpec } from '../datapath/tun/steering.js';
import type { DaemonLog } from './log.js';

export class KernelTableFollower {
  readonly #tables: KernelTables | null;
  readonly #close: () => void;
  readonly #mirror = new Director({ schedulers: defaultRegistry(), maxConns: 16 });
  readonly #workers: number;
  readonly #log: Pick<DaemonLog, 'info' | 'warn'>;
  #steer: SteeringSpec | null = null;
  #enabled: boolean;
  #backup = false;
  #tracing = false;
  /** the mirror refused operations the workers took: nothing is published again */
  #broken = false;
  #started = false;
  #timer: ReturnType<typeof setTimeout> | null = null;
  #lastError = '';

  /**
   * `fds`: the maps (openKernelTableMaps; null: do nothing); `initialOps`: what the workers
   * started with; `rules`: the rules those ops give; `enabled`: kernel_setup at start.
   */
  constructor(fds: KernelTableFds | null, initialOps: readonly RuleOp[], rules: Rules, workers: number, enabled: boolean, log: Pick<DaemonLog, 'info' | 'warn'>, now: () => number = () => performance.now()) {
    this.#workers = workers;
    this.#enabled = enabled;
    this.#log = log;
    this.#close = fds?.close ?? (() => {});
    this.#tables = fds ? new KernelTables(fds.maps, fds.ksvcMax, now) : null;
    if (this.#tables === null) return;
    const cleared = this.#tables.clear(); // a previous process's entries (maps taken over)
    if (cleared > 0) log.info(`kernel set-up: ${cleared} service entr${cleared === 1 ? 'y' : 'ies'} of the previous process removed; republished once the workers forward`, 'config');
    this.#mirrorOps(initialOps, rules);
  }

  /** The follower for the fast path program `progFd` (-1: none): its maps found by name. */
  static open(progFd: number, initialOps: readonly RuleOp[], rules: Rules, workers: number, enabled: boolean, log: Pick<DaemonLog, 'info' | 'warn'>): KernelTableFollower {
    const found = progFd < 0 ? null : openKernelTableMaps(progFd);
    if (found !== null && 'missing' in found) log.info(`kernel set-up off: ${found.missing}; every SYN goes through the engine`, 'config');
    return new KernelTableFollower(found === null || 'missing' in found ? null : found, initialOps, rules, workers, enabled, log);
  }

  start(): void {
    this.#started = true;
    this.#publish();
  }

  applied(ops: readonly RuleOp[], next: Rules): void {
    if (this.#tables === null) return;
    this.#mirrorOps(ops, next);
    this.#publish();
  }

  setEnabled(on: boolean): void {
    if (this.#enabled === on) return;
    this.#enabled = on;
    this.#publish();
  }

  setBackupRunning(on: boolean): void {
    if (this.#backup === on) return;
    this.#backup = on;
    this.#publish();
  }

  setTracing(on: boolean): void {
    if (this.#tracing === on) return;
    this.#tracing = on;
    this.#publish();
  }

  counters(): Record<string, number> {
    return this.#tables?.counters() ?? {};
  }

  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
    this.#started = false;
    this.#close();
  }

  #mirrorOps(ops: readonly RuleOp[], next: Rules): void {
    try {
      applyOps(this.#mirror, ops);
      this.#steer = this.#workers > 1 ? steeringSpec(next.services, next.dests) : null;
    } catch (e) {
      // the workers took these operations; the mirror refusing them means it no longer holds
      // what they hold: take every service out of the kernel rather than publish other tables
      this.#broken = true;
      this.#log.warn(`kernel set-up off: the table mirror refused a change the workers applied (${(e as Error).message}); every SYN goes through the engine until ulvsd restarts`, 'config');
    }
  }

  #publish(): void {
    const t = this.#tables;
    if (t === null || !this.#started) return;
    try {
      const r = t.sync(this.#mirror.services, this.#steer, this.#enabled && !this.#backup && !this.#tracing && !this.#broken);
      if (t.lastError !== '' && t.lastError !== this.#lastError) this.#log.warn(`kernel set-up: ${t.lastError} (that service's SYNs go through the engine)`, 'config');
      this.#lastError = t.lastError;
      if (r.retryInMs !== null && this.#timer === null) {
        this.#timer = setTimeout(() => {
          this.#timer = null;
          this.#publish();
        }, Math.ceil(r.retryInMs) + 1);
        this.#timer.unref();
      }
    } catch (e) {
      this.#log.warn(`kernel set-up: ${(e as Error).message}`, 'config');
    }
  }
}
