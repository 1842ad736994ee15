/**
 * How ulvsd divides the kernel fast path between its data-path workers (kernel-setup.ts creates
 * it): each worker its own disjoint range of the slots it offers connections in (workers never
 * coordinate), and with kernel connection set-up (docs/kernel-setup.md) the kernel's slot range,
 * shared, its free queue and the worker's own ring of reports.
 */
import type { FastPathMaps } from '../datapath/tun/fastpath.js';
import type { KernelSetupOptions } from '../datapath/tun/kernel-setup-maps.js';
import { KSETUP_LIMITS } from '../datapath/tun/layouts.gen.js';
import type { WorkerInit } from '../datapath/tun/worker-protocol.js';

export { pauseKernelSetup } from '../datapath/tun/kernel-setup-maps.js'; // for the daemon's stop

/** Kernel set-up's sizes for `workers` workers: one ring each; more workers than rings: set-up
 *  off (every SYN through the engine), said through `warn`. `aliveMs`: --kernel-setup-alive-ms. */
export function kernelSetupOptions(workers: number, aliveMs: number, warn: (msg: string) => void): KernelSetupOptions {
  if (workers <= KSETUP_LIMITS.KWORKERS_MAX) return { workers, aliveMs };
  warn(`kernel connection set-up is off: it has rings for ${KSETUP_LIMITS.KWORKERS_MAX} workers, not ${workers}`);
  return { workers: 0, aliveMs };
}

/** Worker i's share of the maps `m` (of `workers` workers); `fresh`: made by this process. */
export function fastPathShare(m: FastPathMaps, i: number, workers: number, after: number, fresh: boolean): NonNullable<WorkerInit['fastPath']> {
  const per = Math.floor(m.slots / workers);
  const k = m.kernel;
  const ring = k.rings[i];
  return {
    flowsFd: m.flowsFd,
    slotsFd: m.slotsFd,
    slots: m.slots + k.slots, // the slot array holds the kernel's range after the workers'
    slotBase: i * per,
    slotCount: per,
    after,
    freshMaps: fresh,
    ...(ring && { kernel: { slotBase: k.firstSlot, slotCount: k.slots, freeFd: k.kslotFreeFd }, kernelRing: { fd: ring.fd, bytes: ring.bytes, aliveFd: k.kaliveFd, worker: i } }),
  };
}
