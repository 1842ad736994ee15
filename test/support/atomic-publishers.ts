/**
 * The publishers of test/integration/kernel-setup-atomic.test.ts: the REAL KernelTables, always,
 * on wrapped maps (KernelTableMaps). Test-only.
 *
 * Every variant pauses PAUSE_MS after its first kernel write of a publish, before the second, so
 * that a concurrent reader lands in the window between the two steps many times (the same window
 * for all variants: a slow kernel, not a different publisher):
 *   real         region write (into the half not in use), pause, ksvcs value update
 *   in-place     CONTROL 1: the region write is moved onto the half IN USE and the value keeps
 *                pointing there: table written in place, pause, value (size, sched) updated
 *   value-first  CONTROL 2: the ksvcs value update first (pointing at the new half), pause, then
 *                the region write
 * The controls break the protocol on purpose; the test asserts the reader catches them.
 */
import type { MapOps } from '../../src/datapath/tun/bpf.js';
import { KernelTables, type KernelTableMaps } from '../../src/datapath/tun/kernel-tables.js';
import { KSVC_VALUE } from '../../src/datapath/tun/layouts.gen.js';
import { KTAB_REGION } from '../../src/sched/kernel-table.js';

export const PAUSE_MS = 2;
export type Variant = 'real' | 'in-place' | 'value-first';

/** Busy-wait `ms` (the main thread's CPU is its own; the reader runs on another). */
export function pause(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

type Ksvcs = Pick<MapOps, 'update' | 'delete' | 'nextKey'>;
type Ktab = Pick<MapOps, 'updateBatch'>;

/** `maps` wrapped as `variant` says (one service per publisher: the in-place bookkeeping keeps one base). */
export function variantMaps(maps: KernelTableMaps, variant: Variant): KernelTableMaps {
  const ks: Ksvcs = maps.ksvcs, kt: Ktab = maps.ktab;
  if (variant === 'real') {
    return {
      ksvcs: { update: (k, v, f) => ks.update(k, v, f), delete: (k) => ks.delete(k), nextKey: (k, n) => ks.nextKey(k, n) },
      ktab: {
        updateBatch: (k, v, n, ...rest) => {
          const r = kt.updateBatch(k, v, n, ...rest);
          pause(PAUSE_MS);
          return r;
        },
      },
    };
  }
  if (variant === 'value-first') {
    let pending: { keys: Buffer; values: Buffer; n: number } | null = null;
    return {
      ksvcs: {
        update: (k, v, f) => {
          ks.update(k, v, f);
          pause(PAUSE_MS);
          if (pending !== null) {
            const r = kt.updateBatch(pending.keys, pending.values, pending.n);
            pending = null;
            if (r.errno !== 0) throw new Error(`value-first: batch errno ${r.errno}`);
          }
        },
        delete: (k) => ks.delete(k),
        nextKey: (k, n) => ks.nextKey(k, n),
      },
      ktab: {
        updateBatch: (keys, values, n) => {
          pending = { keys: Buffer.from(keys), values: Buffer.from(values), n };
          return { done: n, errno: 0 };
        },
      },
    };
  }
  let inUse: number | null = null; // the base the live value points at
  return {
    ksvcs: {
      update: (k, v, f) => {
        const w = Buffer.from(v);
        if (inUse !== null) w.writeUInt32LE(inUse, KSVC_VALUE.off.base);
        ks.update(k, w, f);
        inUse = w.readUInt32LE(KSVC_VALUE.off.base);
      },
      delete: (k) => {
        inUse = null;
        return ks.delete(k);
      },
      nextKey: (k, n) => ks.nextKey(k, n),
    },
    ktab: {
      updateBatch: (keys, values, n) => {
        const moved = Buffer.from(keys);
        if (inUse !== null) {
          const base = keys.readUInt32LE(0) - (keys.readUInt32LE(0) % KTAB_REGION);
          for (let i = 0; i < n; i++) moved.writeUInt32LE(keys.readUInt32LE(i * 4) - base + inUse, i * 4);
        }
        const r = kt.updateBatch(moved, values, n);
        pause(PAUSE_MS);
        return r;
      },
    },
  };
}

export function publisher(maps: KernelTableMaps, ksvcMax: number, variant: Variant): KernelTables {
  return new KernelTables(variantMaps(maps, variant), ksvcMax, () => performance.now());
}
