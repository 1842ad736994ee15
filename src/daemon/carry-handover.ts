/**
 * What carries over from one ulvsd process to the next besides the connections (handover.ts):
 * the counters, rate estimators and rr/wrr cursors of core/carry-over.ts and, in keepalived
 * mode, each real server's health, in the carry file (carry-file.ts):
 *
 *   saveCarry(...)     a hand-over stop: the workers' carries summed (mergeCarries) and the
 *                      health at the stop; never throws (a failure is logged: the next start
 *                      begins from zero, its servers as keepalived starts them)
 *   takeCarry(...)     a start, before the rules are made (the health decides which servers are
 *                      in them): the file read; a refused one is removed, logged and counted in
 *                      handover_files_refused
 *   restoreCarried(...) then, once the kernel side is in place and before any worker starts:
 *                      the cursors set in the shared scheduler slots by a scratch engine given
 *                      the workers' own start-up operations (so its services have the workers'
 *                      slots and server order), and the file removed (a start refused before
 *                      this point leaves it to the next); returns the carry for one worker to
 *                      add to its engine
 */
import { mergeCarries, restoreCursors, type EngineCarry } from '../core/carry-over.js';
import { Director } from '../core/director.js';
import { applyOps, type RuleOp } from '../core/rule-ops.js';
import type { ServerHealth } from '../health/monitor.js';
import { defaultRegistry } from '../sched/index.js';
import { takeCarryFile, writeCarryFile } from './carry-file.js';
import type { HandoverCounters } from './handover.js';
import type { DaemonLog } from './log.js';
import { removeStateFile } from './state-file.js';

/** Write the workers' carries (summed) and the servers' health for the next start; never throws. */
export function saveCarry(path: string, carries: readonly EngineCarry[], health: Record<string, ServerHealth>, log: DaemonLog): void {
  const carry = mergeCarries(carries);
  if (carry === null) return;
  try {
    writeCarryFile(path, { carry, health });
    log.info(`counters, rate estimators and scheduler cursors of ${carry.services.length} services from ${carries.length} workers${Object.keys(health).length ? `, health of ${Object.keys(health).length} real servers` : ''} written to ${path}`);
  } catch (e) {
    log.warn(`the counters could not be written for the next start (it starts them from zero): ${(e as Error).message}`);
  }
}

/** What the previous process left (takeCarry). */
export interface Carried {
  path: string;
  carry: EngineCarry;
  /** each real server's health by its key (control/keepalived/desired.ts rsKey) */
  health: ReadonlyMap<string, ServerHealth>;
  writer: string;
  writtenAtMs: number;
}

/** The carry file's content, or null (none, or refused: logged and counted). Never throws. */
export function takeCarry(path: string, counters: HandoverCounters, log: DaemonLog): Carried | null {
  const t = takeCarryFile(path);
  if (t.kind === 'none') return null;
  if (t.kind === 'refused') {
    counters.handover_files_refused++;
    log.warn(`hand-over: ${path} refused, counters and scheduler cursors start from zero: ${t.reason}`);
    return null;
  }
  return { path, carry: t.carry, health: new Map(Object.entries(t.health)), writer: t.writer, writtenAtMs: t.writtenAtMs };
}

export interface CursorTarget {
  /** the operations every worker starts with (their stateSlot fields name the shared slots) */
  ops: readonly RuleOp[];
  /** the scheduler slots the workers share (core/sched-state.ts) */
  sharedState: Int32Array;
  log: DaemonLog;
}

/** Set the carried cursors in the shared slots (see the header); the carry for one worker. Never throws. */
export function restoreCarried(c: Carried, x: CursorTarget): EngineCarry {
  removeStateFile(c.path); // used from here on
  let cursors = 0;
  try {
    const scratch = new Director({ schedulers: defaultRegistry(), maxConns: 16, sharedState: x.sharedState });
    applyOps(scratch, x.ops);
    cursors = restoreCursors(scratch, c.carry);
  } catch (e) {
    x.log.warn(`hand-over: scheduler cursors not restored (they start at the head): ${(e as Error).message}`);
  }
  x.log.info(`hand-over: counters and rate estimators of ${c.carry.services.length} services and ${cursors} scheduler cursors from ${c.path}, written by ${c.writer} ${Math.max(0, Date.now() - c.writtenAtMs)} ms ago`);
  return c.carry;
}
