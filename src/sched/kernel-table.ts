/**
 * The kernel set-up table of a service (docs/kernel-setup.md, bpf/ulvs_maps.h struct ksvc_value
 * and struct kdest): what the fast path's program needs to schedule a pure SYN itself exactly as
 * this service's user-space scheduler would, or why the service keeps the user-space path.
 *
 *   kernelTable(svc)  -> { sched, flags, size, elements }  (elements.length === size)
 *                     |  { ineligible: reason }
 *   kernelIndex(sched, flags, size, caddr, cport, vaddr, cursor) -> element index (the model of
 *                        the program's index function, for tests and tools)
 *
 * Tables: sh, dh and mh are the very tables the user-space schedulers use (buildShTable,
 * buildDhTable, buildMaglevTable); a bucket whose server is weight 0 or overloaded, or empty, is
 * KDEST_USER, so that SYN goes to ulvsd, whose scheduler applies sh-fallback / mh-fallback or
 * fails exactly. rr and wrr (KSCHED_SEQ): one cycle of the weighted sequence, walked by per-CPU
 * cursors in the kernel. Pure: no I/O; the values mirror bpf/ulvs_maps.h (kernel-table.test.ts
 * checks them against the header).
 */
import { Fwd, SvcFlag, ULVS_EXACT, type RealServer, type VirtualService } from '../core/service.js';
import { StateSlot } from '../core/sched-state.js';
import { gcd } from './common.js';
import { buildDhTable, dhBucket } from './dh.js';
import { buildMaglevTable, MH_PORT, mhSlot } from './mh.js';
import { buildShTable, SH_PORT, shBucket } from './sh.js';
import { createWrr } from './wrr.js';

/** enum ksched */
export const KSched = { SH: 1, DH: 2, MH: 3, SEQ: 4 } as const;
/** enum ksvc_flags: the client port is added to the hashed address (sh-port, mh-port) */
export const KSVC_PORT = 1;
/** enum ksetup_limits */
export const KDEST_USER = 0xff;
export const KTAB_REGION = 4096;
/** enum flow_dir values a kdest may carry (the request entry's direction) */
export const KDestDir = { NAT: 0, DR: 3, TUN: 5, USER: KDEST_USER } as const;

/** One struct kdest. Addresses uint32 host values of the network-order address; ports host numbers. */
export interface KDest {
  addr: number;
  /** NAT: rport; DR: 0; TUN: GUE's destination port (0 for ipip and gre) */
  port: number;
  dir: number;
  /** TUN: the tunnel type (TunType); 0 otherwise */
  tunType: number;
  /** the real server's port as the engine knows it */
  rport: number;
}

export interface KernelTable {
  sched: number;
  flags: number;
  size: number;
  elements: KDest[];
}

export type IneligibleReason = 'exact' | 'proto' | 'fwmark' | 'persistent' | 'ops' | 'sched' | 'threshold' | 'forwarding' | 'cycle';
export const INELIGIBLE_REASONS: readonly IneligibleReason[] = ['exact', 'proto', 'fwmark', 'persistent', 'ops', 'sched', 'threshold', 'forwarding', 'cycle'];

const USER: KDest = Object.freeze({ addr: 0, port: 0, dir: KDEST_USER, tunType: 0, rport: 0 });
const IPPROTO_TCP = 6;

/** Why the service keeps the user-space path (docs/kernel-setup.md "Which services"), or null. */
export function ineligibility(svc: VirtualService): IneligibleReason | null {
  if ((svc.flags & ULVS_EXACT) !== 0) return 'exact';
  if (svc.fwmark !== 0) return 'fwmark';
  if (svc.proto !== IPPROTO_TCP) return 'proto';
  if ((svc.flags & SvcFlag.PERSISTENT) !== 0) return 'persistent';
  if ((svc.flags & SvcFlag.ONEPACKET) !== 0) return 'ops';
  if (!['sh', 'dh', 'mh', 'rr', 'wrr'].includes(svc.schedName)) return 'sched';
  for (const d of svc.dests) {
    if (d.uThreshold !== 0 || d.lThreshold !== 0) return 'threshold';
    // NAT only for now: the program sets up DR and TUN connections too (kernel-setup-program.test),
    // but a burst of 500 concurrent SYNs to a DR service saw a third fail the program's route
    // step (KS_NO_ROUTE: to the engine, whose rr cursor is not the kernel's) for a reason not
    // yet found; sequential SYNs do not (docs/kernel-setup.md "Still open")
    if (d.fwd !== Fwd.MASQ) return 'forwarding';
  }
  return null;
}

/** The struct kdest choosing server d (KDEST_USER when it takes no new connection now). */
export function kdestOf(d: RealServer | null): KDest {
  if (d === null || d.weight <= 0 || d.overloaded) return USER;
  const addr = d.addr >>> 0;
  if (d.fwd === Fwd.DROUTE) return { addr, port: 0, dir: KDestDir.DR, tunType: 0, rport: d.port };
  if (d.fwd === Fwd.TUNNEL) return { addr, port: d.tunPort, dir: KDestDir.TUN, tunType: d.tunType, rport: d.port };
  return { addr, port: d.port, dir: KDestDir.NAT, tunType: 0, rport: d.port };
}

/** The length of one cycle of ip_vs_wrr's sequence: the sum of weight/gcd over weights > 0. */
export function wrrCycleLength(dests: readonly RealServer[]): number {
  let g = 0;
  for (const d of dests) if (d.weight > 0) g = g > 0 ? gcd(d.weight, g) : d.weight;
  let total = 0;
  for (const d of dests) if (d.weight > 0) total += d.weight / g;
  return total;
}

/**
 * One cycle of ip_vs_wrr's sequence from a fresh cursor (the head, cw = mw), made by the wrr
 * scheduler itself on a private state slot over a view of the list that hides overload (kdestOf
 * marks an overloaded server's elements): each server with weight > 0 weight/gcd times.
 */
export function wrrCycle(dests: readonly RealServer[]): RealServer[] {
  const total = wrrCycleLength(dests);
  const view = { dests: dests.map((d) => ({ weight: d.weight, overloaded: false, real: d })) };
  const svc = view as unknown as VirtualService; // wrr reads only dests[].weight and .overloaded
  const slot = new StateSlot(null, -1);
  const wrr = createWrr(svc, { random: () => 0, lblcExpiration: 0, lblcrExpiration: 0, stateSlot: () => slot });
  const ctx = { proto: IPPROTO_TCP, caddr: 0, cport: 0, vaddr: 0, vport: 0, now: 0, dryRun: false };
  const out: RealServer[] = [];
  for (let i = 0; i < total; i++) out.push((wrr.pick(svc, ctx) as unknown as (typeof view.dests)[number]).real);
  return out;
}

/** The service's table, or why it keeps the user-space path. */
export function kernelTable(svc: VirtualService): KernelTable | { ineligible: IneligibleReason } {
  const why = ineligibility(svc);
  if (why !== null) return { ineligible: why };
  const ds = svc.dests;
  const withPort = (svc.flags & (svc.schedName === 'sh' ? SH_PORT : MH_PORT)) !== 0;
  const flags = (svc.schedName === 'sh' || svc.schedName === 'mh') && withPort ? KSVC_PORT : 0;
  const full = (sched: number, t: readonly (RealServer | null)[]): KernelTable => {
    const empty = t.every((d) => d === null); // no server: size 0 sends every SYN to ulvsd
    return { sched, flags, size: empty ? 0 : t.length, elements: empty ? [] : t.map(kdestOf) };
  };
  switch (svc.schedName) {
    case 'sh':
      return full(KSched.SH, buildShTable(ds));
    case 'dh':
      return full(KSched.DH, buildDhTable(ds));
    case 'mh':
      return full(KSched.MH, buildMaglevTable(ds));
    case 'rr': {
      const seq = ds.filter((d) => d.weight > 0);
      if (seq.length > KTAB_REGION) return { ineligible: 'cycle' };
      return { sched: KSched.SEQ, flags: 0, size: seq.length, elements: seq.map(kdestOf) };
    }
    default: {
      if (wrrCycleLength(ds) > KTAB_REGION) return { ineligible: 'cycle' };
      const seq = wrrCycle(ds);
      return { sched: KSched.SEQ, flags: 0, size: seq.length, elements: seq.map(kdestOf) };
    }
  }
}

/**
 * The program's index into a table of `size` elements (docs/kernel-setup.md step 2): sh
 * hash_32(caddr [+ cport], 8), dh hash_32(vaddr, 8), mh hsiphash(caddr [+ cport]) % 4093,
 * seq: this CPU's cursor mod size. Addresses as the engine holds them (host values of the
 * network-order address, the program's ntohl); -1 for size 0.
 */
export function kernelIndex(sched: number, flags: number, size: number, caddr: number, cport: number, vaddr: number, cursor: number): number {
  if (size === 0) return -1;
  const withPort = (flags & KSVC_PORT) !== 0;
  if (sched === KSched.SH) return shBucket(caddr, cport, withPort);
  if (sched === KSched.DH) return dhBucket(vaddr);
  if (sched === KSched.MH) return mhSlot(caddr, cport, withPort);
  return (cursor >>> 0) % size;
}

/** Everything kernelTable reads of a service, as one string: equal strings give equal results
 *  (the publisher builds a table again only when this changed). Keep in step with kernelTable. */
export function tableInputs(svc: VirtualService): string {
  let s = `${svc.proto}/${svc.addr >>> 0}/${svc.port}/${svc.schedName}/${svc.flags}`;
  for (const d of svc.dests) s += `|${d.addr >>> 0}:${d.port}:${d.weight}:${d.lastWeight}:${d.overloaded ? 1 : 0}:${d.fwd}:${d.tunType}:${d.tunPort}:${d.uThreshold}:${d.lThreshold}`;
  return s;
}

/** Two tables equal element by element (the publisher rewrites only changed ones). */
export function sameTable(a: KernelTable, b: KernelTable): boolean {
  if (a === b) return true;
  if (a.sched !== b.sched || a.flags !== b.flags || a.size !== b.size) return false;
  for (let i = 0; i < a.size; i++) {
    const x = a.elements[i]!, y = b.elements[i]!;
    if (x.addr !== y.addr || x.port !== y.port || x.dir !== y.dir || x.tunType !== y.tunType || x.rport !== y.rport) return false;
  }
  return true;
}
