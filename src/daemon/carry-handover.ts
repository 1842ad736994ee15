/**
 * The counters, rate estimators and rr/wrr cursors (core/carry-over.ts) from one ulvsd process
 * to the next, beside the connections (handover.ts):
 *
 *   saveCarry(...)  a hand-over stop: the workers' carries summed (mergeCarries) into the carry
 *                   file (carry-file.ts); never throws (a failure is logged: the next start
 *                   begins from zero)
 *   loadCarry(...)  a start: the file taken (removed once read; a refused one is logged and
 *                   counted in handover_files_refused); the cursors are set in the shared
 *                   scheduler slots before any worker starts, by a scratch engine given the
 *                   workers' own start-up operations (so its services have the workers' slots
 *                   and server order); the carry is returned for one worker to add to its engine
 */
import { mergeCarries, restoreCursors, type EngineCarry } from '../core/carry-over.js';
import { Director } from '../core/director.js';
import { applyOps, type RuleOp } from '../core/rule-ops.js';
import { defaultRegistry } from '../sched/index.js';
import { takeCarryFile, writeCarryFile } from './carry-file.js';
import type { HandoverCounters } from './handover.js';
import type { DaemonLog } from './log.js';

/** Write the workers' carries (summed) for the next start; never throws. */
export function saveCarry(path: string, carries: readonly EngineCarry[], log: DaemonLog): void {
  const c = mergeCarries(carries);
  if (c === null) return;
  try {
    writeCarryFile(path, c);
    log.info(`counters, rate estimators and scheduler cursors of ${c.services.length} services from ${carries.length} workers written to ${path}`);
  } catch (e) {
    log.warn(`the counters could not be written for the next start (it starts them from zero): ${(e as Error).message}`);
  }
}

export interface CarryInput {
  path: string;
  /** the operations every worker starts with (their stateSlot fields name the shared slots) */
  ops: readonly RuleOp[];
  /** the scheduler slots the workers share (core/sched-state.ts) */
  sharedState: Int32Array;
  counters: HandoverCounters;
  log: DaemonLog;
}

/** The carry for one worker, or null; the cursors are already set. Never throws. */
export function loadCarry(x: CarryInput): EngineCarry | null {
  const t = takeCarryFile(x.path);
  if (t.kind === 'none') return null;
  if (t.kind === 'refused') {
    x.counters.handover_files_refused++;
    x.log.warn(`hand-over: ${x.path} refused, counters and scheduler cursors start from zero: ${t.reason}`);
    return null;
  }
  let cursors = 0;
  try {
    const scratch = new Director({ schedulers: defaultRegistry(), maxConns: 16, sharedState: x.sharedState });
    applyOps(scratch, x.ops);
    cursors = restoreCursors(scratch, t.carry);
  } catch (e) {
    x.log.warn(`hand-over: scheduler cursors not restored (they start at the head): ${(e as Error).message}`);
  }
  x.log.info(`hand-over: counters and rate estimators of ${t.carry.services.length} services and ${cursors} scheduler cursors from ${x.path}, written by ${t.writer} ${Math.max(0, Date.now() - t.writtenAtMs)} ms ago`);
  return t.carry;
}
