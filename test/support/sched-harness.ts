/**
 * A minimal stand-in for the director's control plane, to drive one scheduler directly:
 * servers are added at the head (kernel order), hooks are called as the director does.
 * Test-only.
 */
import type { Scheduler, SchedContext, SchedulerEnv } from '../../src/core/scheduler.js';
import { RealServer, VirtualService } from '../../src/core/service.js';
import { defaultRegistry } from '../../src/sched/index.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { Prng } from './prng.js';
import { StateSlot } from '../../src/core/sched-state.js';

export class SchedHarness {
  readonly svc: VirtualService;
  readonly sched: Scheduler;
  readonly env: SchedulerEnv;
  /** the state slots handed to the scheduler (their `unsynced` counters) */
  readonly slots: StateSlot[] = [];
  #id = 1;
  readonly ctx: SchedContext = { proto: 6, caddr: parseIPv4('198.51.100.2'), cport: 40000, vaddr: parseIPv4('203.0.113.10'), vport: 80, now: 0, dryRun: false };

  /** `shared`: use slot `slot` of `state` for the scheduler's cursor state, as engines of one director do */
  constructor(name: string, o: { flags?: number; random?: () => number; expiration?: number; shared?: { state: Int32Array; slot: number } } = {}) {
    this.svc = new VirtualService(6, parseIPv4('203.0.113.10'), 80, name);
    this.svc.flags = o.flags ?? 0;
    const prng = new Prng(99);
    this.env = {
      random: o.random ?? (() => prng.u32()),
      lblcExpiration: o.expiration ?? 86400,
      lblcrExpiration: o.expiration ?? 86400,
      stateSlot: () => {
        const slot = new StateSlot(o.shared?.state ?? null, o.shared?.slot ?? -1);
        this.slots.push(slot);
        return slot;
      },
    };
    const f = defaultRegistry().get(name);
    if (!f) throw new Error(`no scheduler ${name}`);
    this.sched = f(this.svc, this.env);
    this.svc.sched = this.sched;
  }

  add(addr: string, weight = 1, port = 80, thresholds: { u?: number; l?: number } = {}): RealServer {
    const d = new RealServer(this.#id++, this.svc, parseIPv4(addr), port);
    d.seq = ++this.svc.added;
    d.weight = weight;
    d.lastWeight = weight > 0 ? weight : 0;
    d.uThreshold = thresholds.u ?? 0;
    d.lThreshold = thresholds.l ?? 0;
    this.svc.dests = [d, ...this.svc.dests];
    this.sched.onDestAdded?.(this.svc, d);
    return d;
  }

  del(d: RealServer): void {
    const i = this.svc.dests.indexOf(d);
    if (i < 0) throw new Error('not a member');
    this.svc.dests = this.svc.dests.filter((x) => x !== d);
    d.available = false;
    this.sched.onDestRemoved?.(this.svc, d, i);
  }

  setWeight(d: RealServer, w: number): void {
    d.weight = w;
    if (w > 0) d.lastWeight = w;
    this.sched.onDestUpdated?.(this.svc, d);
  }

  pick(o: Partial<SchedContext> = {}): RealServer | null {
    Object.assign(this.ctx, { dryRun: false }, o);
    return this.sched.pick(this.svc, this.ctx);
  }

  /** pick `n` times, naming each result by its address' last octet ('.11' -> 'A' if names given) */
  sequence(n: number, names: Map<RealServer, string>, o: Partial<SchedContext> = {}): string {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      const d = this.pick(o);
      out.push(d ? (names.get(d) ?? '?') : '-');
    }
    return out.join(' ');
  }
}
