/**
 * Which scheduler-state slot (core/sched-state.ts) each service uses, for a director whose
 * engines run in several workers: the control plane owns the SharedArrayBuffer, gives every new
 * scheduler (a service added, or its scheduler changed) a fresh zeroed slot, and takes slots
 * back once the change that released them has been applied by every worker.
 *
 *   const t = slots.assign(ops);   // ops with stateSlot set on addService / editService
 *   await applyEverywhere(t.ops); t.commit();   // or t.rollback() when applying failed
 */
import { SLOT_INTS } from '../core/sched-state.js';
import { errors } from '../core/errors.js';
import type { RuleOp } from '../core/rule-ops.js';
import type { ServiceKey } from '../core/service.js';

const keyOf = (k: ServiceKey) => `${k.proto}/${k.addr >>> 0}/${k.port}`;

export class SchedStateSlots {
  readonly state: Int32Array;
  readonly #free: number[] = [];
  readonly #bySvc = new Map<string, { slot: number; scheduler: string }>();

  constructor(slots: number) {
    this.state = new Int32Array(new SharedArrayBuffer(slots * SLOT_INTS * 4));
    for (let i = slots - 1; i >= 0; i--) this.#free.push(i);
  }

  /** Slots in use (for tests and metrics). */
  get used(): number {
    return this.#bySvc.size;
  }

  assign(ops: readonly RuleOp[]): { ops: RuleOp[]; commit(): void; rollback(): void } {
    const taken: number[] = [];
    const released: number[] = [];
    const next = new Map<string, { slot: number; scheduler: string } | null>();
    const current = (k: string) => (next.has(k) ? next.get(k)! : (this.#bySvc.get(k) ?? null));
    const take = (): number => {
      const s = this.#free.pop();
      // ENOSPC, as the kernel's allocations that run out of room; the caller changes nothing
      if (s === undefined) throw errors.tooMany(`No space left on device (no scheduler state slot left (${this.state.length / SLOT_INTS} in all, one per service and scheduler))`);
      this.state.fill(0, s * SLOT_INTS, (s + 1) * SLOT_INTS);
      taken.push(s);
      return s;
    };
    let out: RuleOp[];
    try {
      out = ops.map((o): RuleOp => {
        if (o.op === 'addService' || o.op === 'editService') {
          const k = keyOf(o.spec);
          const scheduler = o.spec.scheduler ?? 'wlc';
          const cur = current(k);
          if (cur !== null && cur.scheduler === scheduler) return { ...o, spec: { ...o.spec, stateSlot: cur.slot } };
          if (cur !== null) released.push(cur.slot);
          const slot = take();
          next.set(k, { slot, scheduler });
          return { ...o, spec: { ...o.spec, stateSlot: slot } };
        }
        if (o.op === 'deleteService') {
          const k = keyOf(o.service);
          const cur = current(k);
          if (cur !== null) released.push(cur.slot);
          next.set(k, null);
        }
        return o;
      });
    } catch (e) {
      this.#free.push(...taken);
      throw e;
    }
    return {
      ops: out,
      commit: () => {
        for (const [k, v] of next) {
          if (v === null) this.#bySvc.delete(k);
          else this.#bySvc.set(k, v);
        }
        this.#free.push(...released);
      },
      rollback: () => {
        this.#free.push(...taken);
      },
    };
  }
}
