/**
 * The scheduler registry: name -> factory, as IPVS's ip_vs_sched.c. Registering a nameless
 * or duplicate scheduler throws.
 */
import type { SchedulerFactory, SchedulerRegistry } from '../core/scheduler.js';
import { createDh } from './dh.js';
import { createFo } from './fo.js';
import { createLblc } from './lblc.js';
import { createLblcr } from './lblcr.js';
import { createLc } from './lc.js';
import { createMh } from './mh.js';
import { createNq } from './nq.js';
import { createOvf } from './ovf.js';
import { createRr } from './rr.js';
import { createSed } from './sed.js';
import { createSh } from './sh.js';
import { createTwos } from './twos.js';
import { createWlc } from './wlc.js';
import { createWrr } from './wrr.js';

export class Registry implements SchedulerRegistry {
  readonly #map = new Map<string, SchedulerFactory>();

  register(name: string, factory: SchedulerFactory): this {
    if (!/^[a-z0-9_-]{1,15}$/.test(name)) throw new Error(`invalid scheduler name ${JSON.stringify(name)}`);
    if (this.#map.has(name)) throw new Error(`scheduler ${name} is already registered`);
    this.#map.set(name, factory);
    return this;
  }
  get(name: string): SchedulerFactory | undefined {
    return this.#map.get(name);
  }
  names(): string[] {
    return [...this.#map.keys()];
  }
}

/** All 14 IPVS schedulers, in ipvsadm's SCHEDULERS order (twos last). */
export function defaultRegistry(): Registry {
  return new Registry()
    .register('rr', createRr)
    .register('wrr', createWrr)
    .register('lc', () => createLc())
    .register('wlc', () => createWlc())
    .register('lblc', createLblc)
    .register('lblcr', createLblcr)
    .register('dh', (svc) => createDh(svc))
    .register('sh', (svc) => createSh(svc))
    .register('sed', () => createSed())
    .register('nq', () => createNq())
    .register('fo', () => createFo())
    .register('ovf', () => createOvf())
    .register('mh', (svc) => createMh(svc))
    .register('twos', createTwos);
}
