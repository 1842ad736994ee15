/**
 * sh — source hashing (ip_vs_sh.c). 256 buckets; the fill walks the buckets giving each
 * server `weight` consecutive buckets (one if its weight is 0) in list order, wrapping round
 * the list; rebuilt on every add/edit/delete. Key: v = client address (+ client port with
 * sh-port); bucket = (offset + hash_32(v, 8)) & 255. A weight-0 or overloaded server fails the
 * pick unless sh-fallback is set, which probes (offset + H) for offset = H, H+1, ... (the kernel
 * adds the original hash twice) until a usable server or an empty bucket.
 */
import type { Scheduler, SchedContext } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { SvcFlag } from '../core/service.js';
import { hash32 } from './common.js';

const SH_BITS = 8;
const SH_SIZE = 1 << SH_BITS;
const SH_MASK = SH_SIZE - 1;
export const SH_FALLBACK = SvcFlag.SCHED1;
export const SH_PORT = SvcFlag.SCHED2;

const unavailable = (d: RealServer) => d.weight <= 0 || d.overloaded;

/** ip_vs_sh_reassign: the 256 buckets for a server list (kernel order); null when the list is
 *  empty. Pure; the kernel set-up table (kernel-table.ts) is built from the same function. */
export function buildShTable(ds: readonly RealServer[]): (RealServer | null)[] {
  const table: (RealServer | null)[] = new Array<RealServer | null>(SH_SIZE).fill(null);
  if (ds.length === 0) return table;
  let p = 0;
  let count = 0;
  for (let i = 0; i < SH_SIZE; i++) {
    const d = ds[p]!;
    table[i] = d;
    if (++count >= d.weight) {
      p = (p + 1) % ds.length;
      count = 0;
    }
  }
  return table;
}

/** The bucket of a client with no probing (offset 0): hash_32(caddr [+ cport], 8); addresses
 *  int32 or uint32 host values of the network-order address. */
export function shBucket(caddr: number, cport: number, withPort: boolean): number {
  return hash32((caddr + (withPort ? cport : 0)) >>> 0, SH_BITS) & SH_MASK;
}

export function createSh(svc: VirtualService): Scheduler {
  let table = buildShTable(svc.dests);
  const rebuild = () => {
    table = buildShTable(svc.dests);
  };
  const key = (ctx: SchedContext, offset: number) =>
    (offset + hash32((ctx.caddr + ((svc.flags & SH_PORT) !== 0 ? ctx.cport : 0)) >>> 0, SH_BITS)) & SH_MASK;
  return {
    name: 'sh',
    pick(s: VirtualService, ctx: SchedContext): RealServer | null {
      const ihash = key(ctx, 0);
      const d = table[ihash]!;
      if (d === null) return null;
      if (!unavailable(d)) return d;
      if ((s.flags & SH_FALLBACK) === 0) return null;
      for (let off = 0; off < SH_SIZE; off++) {
        const x = table[key(ctx, (off + ihash) & SH_MASK)]!;
        if (x === null) return null;
        if (!unavailable(x)) return x;
      }
      return null;
    },
    onDestAdded: rebuild,
    onDestRemoved: rebuild,
    onDestUpdated: rebuild,
  };
}
