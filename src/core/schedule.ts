/**
 * Choosing a real server for a new flow (ip_vs_schedule, ip_vs_sched_persist): a persistent
 * service first looks for its client network's template; otherwise the service's scheduler
 * picks. `choose` is the whole decision and serves both the packet path and `explain`; with
 * ctx.dryRun it commits nothing (schedulers keep their cursors, no template is invalidated).
 * `open` then creates what the choice implies: the template (if new) and the connection.
 */
import { TABLE_FULL, type ConnLifecycle } from './conn/lifecycle.js';
import type { Persistence } from './conn/persist.js';
import type { EngineState } from './engine-state.js';
import type { ProtoOps } from './proto/ops.js';
import type { SchedContext } from './scheduler.js';
import type { RealServer, VirtualService } from './service.js';

/** How a server was chosen. */
export const Chosen = {
  /** the client network's persistence template names it */
  Template: 0,
  /** the scheduler picked it */
  Scheduler: 1,
  /** no usable server (all quiesced, overloaded, or none) */
  None: 2,
} as const;
export type ChosenCode = (typeof Chosen)[keyof typeof Chosen];

/** The result of `choose`; one instance, overwritten by every call. */
export class Choice {
  by: ChosenCode = Chosen.None;
  dest: RealServer | null = null;
  /** Template: the template used; -1 otherwise */
  template = -1;
  /** persistent service: the client network's masked address (caddr & netmask) */
  snet = 0;
}

/** Result of `open`: a connection index, or one of these. */
export const Opened = { NoDest: -2, TableFull: TABLE_FULL } as const;

export class Scheduling {
  readonly #s: EngineState;
  readonly #life: ConnLifecycle;
  readonly #persist: Persistence;
  readonly #choice = new Choice();

  constructor(s: EngineState, life: ConnLifecycle, persist: Persistence) {
    this.#s = s;
    this.#life = life;
    this.#persist = persist;
  }

  choose(svc: VirtualService, ctx: SchedContext): Choice {
    const ch = this.#choice;
    ch.template = -1;
    if (svc.persistent) {
      const snet = ctx.caddr & svc.netmask; // int32
      ch.snet = snet;
      const t = this.#persist.lookup(svc, ctx.proto, snet, ctx.vaddr, ctx.vport);
      if (t >= 0 && this.#persist.usable(t)) {
        ch.by = Chosen.Template;
        ch.template = t;
        ch.dest = this.#s.dests.byId(this.#s.conns.dest(t));
        return ch;
      }
      if (!ctx.dryRun) this.#persist.invalidate(t);
    }
    const d = svc.sched!.pick(svc, ctx);
    ch.by = d === null ? Chosen.None : Chosen.Scheduler;
    ch.dest = d;
    return ch;
  }

  /** Choose (committing) and create the connection for the flow in ctx: its index, or Opened.*. */
  open(svc: VirtualService, ctx: SchedContext, ops: ProtoOps): number {
    const ch = this.choose(svc, ctx);
    const d = ch.dest;
    if (d === null) return Opened.NoDest;
    const flags = ops.newConnFlags(svc);
    if (!svc.persistent) return this.#life.create(d, ctx, d.port !== 0 ? d.port : ctx.vport, flags, -1);
    let t = ch.template;
    if (t < 0) {
      t = this.#persist.create(svc, ctx.proto, ch.snet, ctx.vaddr, ctx.vport, d);
      if (t < 0) return Opened.TableFull;
    }
    const dport = ctx.vport === svc.port && d.port !== 0 ? d.port : ctx.vport;
    const c = this.#life.create(d, ctx, dport, flags, t);
    this.#persist.touch(t);
    return c;
  }
}
