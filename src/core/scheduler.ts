/**
 * The scheduler interface (the IPVS `struct ip_vs_scheduler` hooks), implemented in src/sched.
 *
 * A factory is called once per service (init_service) and returns an instance holding that
 * service's private state. The director calls the dest hooks after it changed `svc.dests`
 * (control time), and `pick` for each new connection (or template) on the packet path.
 * `pick` must not allocate in steady state and must honour `ctx.dryRun` (used by `explain`):
 * a dry run computes the same answer without committing any state (cursors, caches).
 */
import type { RealServer, VirtualService } from './service.js';
import type { StateSlot } from './sched-state.js';

/** The flow being scheduled. One instance is reused by the director for every pick.
 *  Addresses are int32 (uint32 `| 0`, see wire/ipv4.ts readI32); hash with Math.imul / `>>> 0`. */
export interface SchedContext {
  proto: number;
  /** client address / port (packet source) */
  caddr: number;
  cport: number;
  /** virtual address / port (packet destination) */
  vaddr: number;
  vport: number;
  /** caller's clock in ms (monotonic) */
  now: number;
  dryRun: boolean;
}

export interface Scheduler {
  readonly name: string;
  pick(svc: VirtualService, ctx: SchedContext): RealServer | null;
  /** a dest was inserted at svc.dests[0] (kernel order: newest first) */
  onDestAdded?(svc: VirtualService, dest: RealServer): void;
  /** a dest was removed; it used to be at index `oldIndex` */
  onDestRemoved?(svc: VirtualService, dest: RealServer, oldIndex: number): void;
  /** weight / thresholds of a dest changed */
  onDestUpdated?(svc: VirtualService, dest: RealServer): void;
  /** periodic housekeeping (lblc/lblcr garbage collection) */
  tick?(now: number): void;
  /** release per-service state */
  done?(): void;
}

export interface SchedulerEnv {
  /** uniform random uint32 (injected; the core never calls Math.random) */
  random(): number;
  /** lblc/lblcr entry expiration, seconds (sysctl lblc_expiration, lblcr_expiration) */
  lblcExpiration: number;
  lblcrExpiration: number;
  /** the service's cursor state, shared by every engine of a director (sched-state.ts) */
  stateSlot(svc: VirtualService): StateSlot;
}

export type SchedulerFactory = (svc: VirtualService, env: SchedulerEnv) => Scheduler;

export interface SchedulerRegistry {
  get(name: string): SchedulerFactory | undefined;
  names(): string[];
}

/** Which scheduler-specific flag names a scheduler understands (ipvsadm -b), by SCHED bit. */
export const SCHED_FLAG_NAMES: Readonly<Record<string, readonly [string, string, string]>> = {
  sh: ['sh-fallback', 'sh-port', 'flag-3'],
  mh: ['mh-fallback', 'mh-port', 'flag-3'],
};
