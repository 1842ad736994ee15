/**
 * dh — destination hashing (ip_vs_dh.c): 256 buckets filled by cycling through the server
 * list one bucket per server (weights ignored), rebuilt on add/delete (not on edit). The key
 * is the packet's destination address (the VIP in NAT mode): bucket = hash_32(daddr, 8).
 * No fallback: an empty bucket, or a deleted, weight-0 or overloaded server, fails.
 */
import type { Scheduler, SchedContext } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { hash32 } from './common.js';

const DH_BITS = 8;
const DH_SIZE = 1 << DH_BITS;

/** ip_vs_dh_reassign: the 256 buckets for a server list (kernel order), one bucket per server
 *  in turn; null when the list is empty. Pure; kernel-table.ts builds from it too. */
export function buildDhTable(ds: readonly RealServer[]): (RealServer | null)[] {
  return Array.from({ length: DH_SIZE }, (_, i) => (ds.length === 0 ? null : ds[i % ds.length]!));
}

/** The bucket of a packet to `vaddr` (int32 or uint32 host value): hash_32(vaddr, 8). */
export const dhBucket = (vaddr: number): number => hash32(vaddr, DH_BITS);

export function createDh(svc: VirtualService): Scheduler {
  let table = buildDhTable(svc.dests);
  const rebuild = () => {
    table = buildDhTable(svc.dests);
  };
  return {
    name: 'dh',
    pick(_s: VirtualService, ctx: SchedContext): RealServer | null {
      const d = table[dhBucket(ctx.vaddr)]!;
      if (d === null || !d.available || d.weight <= 0 || d.overloaded) return null;
      return d;
    },
    onDestAdded: rebuild,
    onDestRemoved: rebuild,
  };
}
