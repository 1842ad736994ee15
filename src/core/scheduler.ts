/**
 * How schedulers are made (the IPVS `struct ip_vs_scheduler` registration), implemented in
 * src/sched. The interface an instance offers, Scheduler, lives with the service that holds it
 * (service.ts), so the two files do not import each other.
 *
 * A factory is called once per service (init_service) and returns an instance holding that
 * service's private state. The director calls the dest hooks after it changed `svc.dests`
 * (control time), and `pick` for each new connection (or template) on the packet path.
 * `pick` must not allocate in steady state and must honour `ctx.dryRun` (used by `explain`):
 * a dry run computes the same answer without committing any state (cursors, caches).
 */
import type { SchedContext, Scheduler, VirtualService } from './service.js';
import type { StateSlot } from './sched-state.js';

export type { SchedContext, Scheduler } from './service.js';

export interface SchedulerEnv {
  /** uniform random uint32 (injected; the core never calls Math.random) */
  random(): number;
  /** lblc/lblcr entry expiration, seconds (sysctl lblc_expiration, lblcr_expiration) */
  lblcExpiration: number;
  lblcrExpiration: number;
  /** the service's cursor state, shared by every engine of a director (sched-state.ts) */
  stateSlot(svc: VirtualService): StateSlot;
}

/** Fill the reused context `ctx` for a new flow that commits (dryRun false), field by field:
 *  no allocation, and one object shape at every call (Director.process, KernelMade). */
export function fillSchedContext(ctx: SchedContext, proto: number, caddr: number, cport: number, vaddr: number, vport: number, now: number): SchedContext {
  ctx.proto = proto;
  ctx.caddr = caddr;
  ctx.cport = cport;
  ctx.vaddr = vaddr;
  ctx.vport = vport;
  ctx.now = now;
  ctx.dryRun = false;
  return ctx;
}

export type SchedulerFactory = (svc: VirtualService, env: SchedulerEnv) => Scheduler;

export interface SchedulerRegistry {
  get(name: string): SchedulerFactory | undefined;
  names(): string[];
}
