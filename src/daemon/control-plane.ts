/**
 * The control plane: the one place where the running rule set changes, one change at a time.
 *
 * Every change is a mutation `fn(current) -> next` evaluated on the *current* rules inside the
 * serial section (as IPVS runs each command under `__ip_vs_mutex`), then carried out as
 *
 *   fn(current) -> validate(next) -> diff -> stage steering -> assign scheduler slots
 *     -> apply in every worker -> commit steering + slots   (or discard + roll back, rethrow)
 *     -> kernel set-up tables (published) -> policy routing and capture -> current = next,
 *     one `applied:` log line
 *
 * Contract: a mutation that throws (its own refusal, e.g. EEXIST), or whose result does not
 * validate, or whose staging fails, changes nothing and rejects with that error. A worker
 * refusing the operations rolls back the staged steering and slots and rejects; the rules stay
 * the old ones. Routing and capture failures after the workers applied are logged, not thrown
 * (the engines already forward with the new rules). Mutations, timeouts, zeroing and interface
 * following all queue on the same `serial` section; a rejected step does not stop the queue.
 *
 * Nothing here touches the kernel or a thread directly: `ControlTargets` does (kernel-setup.ts,
 * worker-pool.ts), so a unit test drives this class with fakes.
 */
import { Director } from '../core/director.js';
import type { RuleOp } from '../core/rule-ops.js';
import { defaultRegistry } from '../sched/index.js';
import { diffRules, loadRules } from '../control/diff.js';
import type { Rules } from '../control/rules.js';
import type { SchedStateSlots } from '../control/sched-slots.js';

/** A kernel change made ready before the workers change: attached by commit, released by discard. */
export interface Staged {
  commit(): void;
  discard(): void;
}

/** What a rule change reaches besides this class's own state. */
export interface ControlTargets {
  /** Check a complete rule set; throws (IpvsError, or Error for the operator) and changes nothing. */
  validate(next: Rules): void;
  /** Load the steering `next` needs without attaching it; throws and changes nothing; null: none needed. */
  stageSteering(next: Rules): Staged | null;
  /** Apply `ops` in every worker; rejects when a worker refused them. */
  applyOps(ops: RuleOp[]): Promise<void>;
  /** The workers applied `ops` (as given to applyOps) giving `next`: the kernel set-up tables
   *  follow (daemon/kernel-tables-follower.ts); never throws. Absent: no kernel set-up. */
  published?(ops: RuleOp[], next: Rules): void;
  /** Policy routing and capture for the set just applied; never throws (failures are logged). */
  route(next: Rules): { added: number; removed: number };
  /** One line of the daemon's log (kind `config`). */
  log(msg: string): void;
}

/** Check a complete rule set on a scratch engine: the checks every worker's engine would make. */
export function validateOnScratch(r: Rules): void {
  loadRules(new Director({ schedulers: defaultRegistry(), maxConns: 16 }), r);
}

export type Mutation = (current: Rules) => Rules;

export class ControlPlane {
  #rules: Rules;
  #queue: Promise<unknown> = Promise.resolve();
  readonly #t: ControlTargets;
  readonly #slots: Pick<SchedStateSlots, 'assign'>;

  /** `initial` is what the workers already run (their start-up operations came from it). */
  constructor(initial: Rules, targets: ControlTargets, slots: Pick<SchedStateSlots, 'assign'>) {
    this.#rules = initial;
    this.#t = targets;
    this.#slots = slots;
  }

  /** The rules in force now (a change in progress is not visible until it has been applied). */
  rules(): Rules {
    return this.#rules;
  }

  /** Run `f` alone: after every step queued before it, before any queued after it. */
  serial<T>(f: () => Promise<T> | T): Promise<T> {
    const run = this.#queue.then(() => f());
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Evaluate `fn` on the current rules inside the serial section and apply its result; resolves
   * with the operations applied (none when nothing changed). See the file header for the contract.
   */
  mutate(fn: Mutation): Promise<RuleOp[]> {
    return this.serial(() => this.#apply(fn(this.#rules)));
  }

  /** Replace the whole set (reload, PUT /v1/rules): a mutation that ignores the current rules. */
  replace(next: Rules): Promise<RuleOp[]> {
    return this.mutate(() => next);
  }

  async #apply(next: Rules): Promise<RuleOp[]> {
    const t = this.#t;
    t.validate(next); // throws: nothing changed
    const ops = diffRules(this.#rules, next);
    if (ops.length === 0) return ops;
    const steering = t.stageSteering(next); // throws: nothing changed
    let slotted: ReturnType<SchedStateSlots['assign']>;
    try {
      slotted = this.#slots.assign(ops); // throws: nothing changed
    } catch (e) {
      steering?.discard();
      throw e;
    }
    try {
      await t.applyOps(slotted.ops);
      steering?.commit();
      slotted.commit();
    } catch (e) {
      steering?.discard();
      slotted.rollback();
      throw e;
    }
    t.published?.(slotted.ops, next); // after every engine has the change: a report names a server they know
    const routes = t.route(next);
    this.#rules = next;
    const count = (k: RuleOp['op']) => ops.filter((o) => o.op === k).length;
    t.log(`applied: services +${count('addService')} -${count('deleteService')} ~${count('editService')}, real servers +${count('addDest')} -${count('deleteDest')} ~${count('editDest')}; routing rules +${routes.added} -${routes.removed}`);
    return ops;
  }
}
