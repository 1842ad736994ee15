/**
 * The maps of kernel connection set-up (docs/kernel-setup.md; bpf/ulvs_ksetup.h), created with
 * the fast-path program (fastpath.ts loadFastPath): their sizes before the load, then after it
 * one ring buffer per data-path worker put into ulvs_kreports, the kernel range of slots pushed
 * into ulvs_kslot_free, and ulvs_kconf written (workers, ip_vs_mh's hash key). The tables
 * (ulvs_ksvcs, ulvs_ktab) stay empty: the engine's table publisher fills them, so until then
 * every SYN keeps the user-space path.
 *
 * Slots: the workers' `slots` come first (split between them as before), the kernel range
 * [slots, slots + kernelSlots) after them; the slot array holds both.
 */
import { BPF_CMD, bpfCall, BpfError, MapOps } from './bpf.js';
import { sys } from './sys.js';
import { FLOW_KEY, FLOW_VALUE, KCONF, KSETUP_LIMITS } from './layouts.gen.js';
import { KEY1 as MH_KEY1 } from '../../sched/mh.js';

/** BPF_MAP_TYPE_RINGBUF (include/uapi/linux/bpf.h enum bpf_map_type) */
const BPF_MAP_TYPE_RINGBUF = 27;
const PAGE = 4096;
const closeFd = (fd: number) => {
  if (fd >= 0) sys.close(fd);
};

export interface KernelSetupOptions {
  /** slots of the kernel range (default: half the workers' slots) */
  kernelSlots?: number;
  /** data-path workers, each with a ring (0..KWORKERS_MAX; default 0: set-up off, no rings) */
  workers?: number;
  /** bytes of each ring: a power of two, at least a page (default 1 MiB) */
  ringBytes?: number;
  /** kernel set-up services at most (ulvs_ksvcs; ulvs_ktab holds 2 regions each; default KSVC_MAX_DEFAULT) */
  services?: number;
  /** ms: a SYN is set up in the kernel only while its owner worker beat within this time
   *  (ulvs_kalive, kernel-report-reader.ts beats every BEAT_MS); 0: not checked (default 250) */
  aliveMs?: number;
}

/** ulvs_kconf.alive_ms by default: five missed beats (kernel-report-reader.ts BEAT_MS). Well
 *  within the 500 ms after which a dead ulvsd's VIP must answer no new connection (keepalived's
 *  track_process gives up MASTER in about 2 s; vrrp-pair.test.ts). */
export const DEFAULT_ALIVE_MS = 250;

/** The fds (the caller's to close: closeKernelSetup) and the ranges. */
export interface KernelSetupMaps {
  ksvcsFd: number;
  ktabFd: number;
  kcursorFd: number;
  kconfFd: number;
  kslotFreeFd: number;
  kreportsFd: number;
  kstatsFd: number;
  /** ulvs_kalive: worker i beats in element i */
  kaliveFd: number;
  /** ring i is worker i's (ulvs_kreports[i]) */
  rings: { fd: number; bytes: number }[];
  /** the kernel range of slots: [firstSlot, firstSlot + slots) */
  firstSlot: number;
  slots: number;
  /** ulvs_ksvcs capacity (services) */
  services: number;
}

/** The map names loadObject returns for kernel set-up, and their sizes before the load. */
export const KERNEL_SETUP_MAP_NAMES = ['ulvs_ksvcs', 'ulvs_ktab', 'ulvs_kcursor', 'ulvs_kconf', 'ulvs_kslot_free', 'ulvs_kreports', 'ulvs_kstats', 'ulvs_kalive'] as const;

/** Options checked and defaulted; throws a clear error on bad values (nothing created yet). */
export function kernelSetupSizes(workerSlots: number, o: KernelSetupOptions): Required<KernelSetupOptions> {
  const r = {
    kernelSlots: o.kernelSlots ?? Math.floor(workerSlots / 2),
    workers: o.workers ?? 0,
    ringBytes: o.ringBytes ?? 1 << 20,
    services: o.services ?? KSETUP_LIMITS.KSVC_MAX_DEFAULT,
    aliveMs: o.aliveMs ?? DEFAULT_ALIVE_MS,
  };
  if (!Number.isInteger(r.kernelSlots) || r.kernelSlots < 0) throw new Error(`kernel set-up: kernelSlots must be an integer >= 0, not ${r.kernelSlots}`);
  if (!Number.isInteger(r.workers) || r.workers < 0 || r.workers > KSETUP_LIMITS.KWORKERS_MAX) throw new Error(`kernel set-up: workers must be 0..${KSETUP_LIMITS.KWORKERS_MAX}, not ${r.workers}`);
  if (!Number.isInteger(r.ringBytes) || r.ringBytes < PAGE || (r.ringBytes & (r.ringBytes - 1)) !== 0) throw new Error(`kernel set-up: ringBytes must be a power of two >= ${PAGE}, not ${r.ringBytes}`);
  if (!Number.isInteger(r.services) || r.services < 1 || r.services * 2 * KSETUP_LIMITS.KTAB_REGION > 0xffffffff) throw new Error(`kernel set-up: services must be >= 1, not ${r.services}`);
  if (!Number.isInteger(r.aliveMs) || r.aliveMs < 0 || r.aliveMs > 3_600_000) throw new Error(`kernel set-up: aliveMs must be 0..3600000, not ${r.aliveMs}`);
  return r;
}

/** max_entries of the kernel set-up maps for loadObject (the queue needs at least 1). */
export function kernelSetupMaxEntries(s: Required<KernelSetupOptions>): Record<string, number> {
  return {
    ulvs_ksvcs: s.services,
    ulvs_ktab: s.services * 2 * KSETUP_LIMITS.KTAB_REGION,
    ulvs_kcursor: s.services,
    ulvs_kslot_free: Math.max(1, s.kernelSlots),
  };
}

/** A BPF ring buffer map of `bytes` (BPF_MAP_CREATE: map_type, key 0, value 0, max_entries = bytes). */
export function createRing(bytes: number, name = 'ulvs_kring'): number {
  const attr = Buffer.alloc(48);
  attr.writeUInt32LE(BPF_MAP_TYPE_RINGBUF, 0);
  attr.writeUInt32LE(bytes, 12); // max_entries
  attr.write(name.slice(0, 15), 28, 'latin1'); // map_name[16]
  return bpfCall(BPF_CMD.MAP_CREATE, attr, `BPF_MAP_CREATE ringbuf ${bytes} bytes`);
}

/**
 * After the load: rings in, free slots in (the kernel range minus `inUse`, slots that entries
 * of a previous process still name), kconf written. All or nothing: on a failure the rings
 * are closed and the error thrown (the caller closes the map fds).
 */
export function fillKernelSetup(fds: Record<string, number>, s: Required<KernelSetupOptions>, firstSlot: number, inUse: ReadonlySet<number> = new Set()): KernelSetupMaps {
  const rings: { fd: number; bytes: number }[] = [];
  try {
    const key = Buffer.alloc(4), val = Buffer.alloc(4);
    const reports = new MapOps(fds.ulvs_kreports!);
    for (let w = 0; w < s.workers; w++) {
      rings.push({ fd: createRing(s.ringBytes), bytes: s.ringBytes });
      key.writeUInt32LE(w);
      val.writeUInt32LE(rings[w]!.fd);
      reports.update(key, val);
    }
    const free = new MapOps(fds.ulvs_kslot_free!);
    for (let i = firstSlot; i < firstSlot + s.kernelSlots; i++) {
      if (inUse.has(i)) continue;
      val.writeUInt32LE(i);
      const e = free.push(val);
      if (e !== 0) throw new BpfError('BPF_MAP_UPDATE_ELEM (push a kernel slot)', e);
    }
    const conf = Buffer.alloc(KCONF.size);
    conf.writeUInt32LE(s.workers, KCONF.off.workers);
    conf.writeUInt32LE(s.aliveMs, KCONF.off.alive_ms);
    // hsiphash_key_t { k0, k1 } as the kernel holds it (two u64 in host memory, little-endian)
    conf.writeUInt32LE(MH_KEY1.k0l, KCONF.off.mh_key);
    conf.writeUInt32LE(MH_KEY1.k0h, KCONF.off.mh_key + 4);
    conf.writeUInt32LE(MH_KEY1.k1l, KCONF.off.mh_key + 8);
    conf.writeUInt32LE(MH_KEY1.k1h, KCONF.off.mh_key + 12);
    key.writeUInt32LE(0);
    new MapOps(fds.ulvs_kconf!).update(key, conf);
  } catch (e) {
    for (const r of rings) closeFd(r.fd);
    throw e;
  }
  return {
    ksvcsFd: fds.ulvs_ksvcs!,
    ktabFd: fds.ulvs_ktab!,
    kcursorFd: fds.ulvs_kcursor!,
    kconfFd: fds.ulvs_kconf!,
    kslotFreeFd: fds.ulvs_kslot_free!,
    kreportsFd: fds.ulvs_kreports!,
    kstatsFd: fds.ulvs_kstats!,
    kaliveFd: fds.ulvs_kalive!,
    rings,
    firstSlot,
    slots: s.kernelSlots,
    services: s.services,
  };
}

/** The slots of [first, first + n) that entries of the flow map name (a previous process's
 *  kernel-made connections, at a restart). Walks the map: start-up use only. */
export function kernelSlotsInUse(flowsFd: number, first: number, n: number): Set<number> {
  const used = new Set<number>();
  const flows = new MapOps(flowsFd);
  const a = Buffer.alloc(FLOW_KEY.size), b = Buffer.alloc(FLOW_KEY.size), v = Buffer.alloc(FLOW_VALUE.size);
  let key: Buffer | null = null, next = a;
  while (flows.nextKey(key, next)) {
    if (flows.lookup(next, v)) {
      const slot = v.readUInt32LE(FLOW_VALUE.off.slot);
      if (slot >= first && slot < first + n) used.add(slot);
    }
    key = next;
    next = next === a ? b : a;
  }
  return used;
}

/** Every fd of kernel set-up (maps and rings). */
export function kernelSetupFds(k: KernelSetupMaps): number[] {
  return [k.ksvcsFd, k.ktabFd, k.kcursorFd, k.kconfFd, k.kslotFreeFd, k.kreportsFd, k.kstatsFd, k.kaliveFd, ...k.rings.map((r) => r.fd)];
}

export function closeKernelSetup(k: KernelSetupMaps): void {
  for (const fd of kernelSetupFds(k)) closeFd(fd);
}

/**
 * Stop the fast path setting up new connections (kconf.workers := 0, the program's "set-up off"):
 * from then on every SYN goes to the TUN, and segments of the connections it made that need
 * reporting too (KS_SEGMENT_NO_OWNER). ulvsd calls it before its workers read their rings for
 * the last time at a stop, so no connection is made that no engine hears of (a hand-over: the
 * TUN keeps those packets for the next process, whose maps are new). False if the map refused.
 */
export function pauseKernelSetup(m: KernelSetupMaps): boolean {
  const key = Buffer.alloc(4);
  const conf = Buffer.alloc(KCONF.size);
  const map = new MapOps(m.kconfFd);
  try {
    if (!map.lookup(key, conf)) return false;
    conf.writeUInt32LE(0, KCONF.off.workers);
    map.update(key, conf);
    return true;
  } catch {
    return false;
  }
}
