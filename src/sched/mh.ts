/**
 * mh — Maglev hashing (ip_vs_mh.c; Eisenbud et al., NSDI'16 §3.4). A lookup table of M = 4093
 * slots is filled from per-server permutations (offset = H1(server) mod M,
 * skip = H2(server) mod (M-1) + 1); each server claims `turns` slots per round, where turns
 * derive from last_weight / gcd, shifted so the largest fits in 6 bits. Rebuilt on every
 * add/edit/delete; since it uses last_weight, quiescing a server (weight 0) keeps the table.
 * Lookup: slot = H1(client address [+ client port with mh-port]) mod M. An unusable server
 * fails, or with mh-fallback the slots H1(addr, port, offset k + slot) are probed in turn.
 * H1/H2 are the kernel's hsiphash with its fixed keys.
 */
import type { Scheduler, SchedContext } from '../core/scheduler.js';
import type { RealServer, VirtualService } from '../core/service.js';
import { SvcFlag } from '../core/service.js';
import { gcd } from './common.js';
import { hsiphashU32, type HsipKey } from './hsiphash.js';

export const MH_TAB_SIZE = 4093;
const MH_TAB_BITS = 6; // CONFIG_IP_VS_MH_TAB_INDEX (12) / 2
export const MH_FALLBACK = SvcFlag.SCHED1;
export const MH_PORT = SvcFlag.SCHED2;

/** ip_vs_mh's first hash key (the lookup's; the kernel program gets it in ulvs_kconf.mh_key) */
export const KEY1: HsipKey = { k0h: 0, k0l: 2654435761, k1h: 0, k1l: 2654435761 };
const KEY2: HsipKey = { k0h: 0, k0l: 2654446892, k1h: 0, k1l: 2654446892 };

/** ip_vs_mh_hashkey: hsiphash of the u32 (offset + port + address). */
export function mhHashKey(addr: number, port: number, key: HsipKey, offset: number): number {
  return hsiphashU32((offset + port + addr) >>> 0, key);
}

/** The slot of a client with no probing: ip_vs_mh_get's hsiphash(caddr [+ cport], KEY1) % 4093. */
export function mhSlot(caddr: number, cport: number, withPort: boolean): number {
  return mhHashKey(caddr, withPort ? cport : 0, KEY1, 0) % MH_TAB_SIZE;
}

function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/** Build the lookup table for a server list (kernel order); a pure function, exported for tests. */
export function buildMaglevTable(dests: readonly RealServer[], size = MH_TAB_SIZE): (RealServer | null)[] {
  const table: (RealServer | null)[] = new Array<RealServer | null>(size).fill(null);
  let g = 0;
  let maxw = 0;
  for (const d of dests) {
    if (d.lastWeight > 0) g = g > 0 ? gcd(d.lastWeight, g) : d.lastWeight;
    if (d.lastWeight > maxw) maxw = d.lastWeight;
  }
  if (g < 1) return table;
  const shift = Math.max(0, fls(Math.floor(maxw / g)) - MH_TAB_BITS);
  const n = dests.length;
  const perm = new Uint32Array(n);
  const skip = new Uint32Array(n);
  const turns = new Int32Array(n);
  dests.forEach((d, i) => {
    perm[i] = mhHashKey(d.addr, d.port, KEY1, 0) % size;
    skip[i] = (mhHashKey(d.addr, d.port, KEY2, 0) % (size - 1)) + 1;
    const t = Math.floor(d.lastWeight / g) >> shift;
    turns[i] = t !== 0 ? t : d.lastWeight !== 0 ? 1 : 0;
  });
  const taken = new Uint8Array(size);
  let filled = 0;
  let dtCount = 0;
  let i = 0; // position in the server list (p / ds in the kernel)
  while (filled < size) {
    if (i >= n) i = 0;
    while (i < n) {
      if (turns[i]! < 1) {
        i++;
        continue;
      }
      let c = perm[i]!;
      while (taken[c]) {
        c += skip[i]!;
        if (c >= size) c -= size;
        perm[i] = c;
      }
      taken[c] = 1;
      table[c] = dests[i]!;
      if (++filled === size) return table;
      if (++dtCount >= turns[i]!) {
        dtCount = 0;
        i++;
      }
    }
  }
  return table;
}

const unavailable = (d: RealServer) => d.weight <= 0 || d.overloaded;

export function createMh(svc: VirtualService): Scheduler {
  let table = buildMaglevTable(svc.dests);
  const rebuild = () => {
    table = buildMaglevTable(svc.dests);
  };
  return {
    name: 'mh',
    pick(s: VirtualService, ctx: SchedContext): RealServer | null {
      const port = (s.flags & MH_PORT) !== 0 ? ctx.cport : 0;
      const ihash = mhHashKey(ctx.caddr, port, KEY1, 0) % MH_TAB_SIZE;
      const d = table[ihash]!;
      if (d === null) return null;
      if (!unavailable(d)) return d;
      if ((s.flags & MH_FALLBACK) === 0) return null;
      for (let off = 0; off < MH_TAB_SIZE; off++) {
        const roff = (off + ihash) % MH_TAB_SIZE;
        const x = table[mhHashKey(ctx.caddr, port, KEY1, roff) % MH_TAB_SIZE]!;
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
