/**
 * The NIC fast path's verdict counters (bpf/ulvs_maps.h enum fast_verdict, map
 * ulvs_verdicts): for each interface the program is attached on, how many frames it sent
 * on (TCX_NEXT), forwarded itself (redirect), left to the IP stack skipping tc (OK) or dropped.
 * Every frame the program sees counts in exactly one, so the sum over the verdicts of an
 * interface is the frames that reached its tcx ingress. Read from user space (not the hot
 * path): a per-CPU array, summed here over the possible CPUs (per-cpu.ts).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { fdById, mapInfo, MapOps, progInfo, tcxIngressProgIds } from './bpf.js';
import { sys } from './sys.js';
import { FAST_VERDICT, FAST_VERDICTS } from './layouts.gen.js';
import { perCpuStride, possibleCpus, sumU64PerCpu } from './per-cpu.js';

export type FastVerdictName = 'next' | 'redirect' | 'ok' | 'shot' | 'other';
/** the verdicts in enum order (index = enum fast_verdict) */
export const FAST_VERDICT_NAMES: readonly FastVerdictName[] = ['next', 'redirect', 'ok', 'shot', 'other'];
export type FastVerdictCounts = Record<FastVerdictName, number>;

/** Sum one per-CPU value (cpus elements of FAST_VERDICTS.size bytes, 8-byte aligned). */
export function sumPerCpu(value: Buffer, cpus: number): FastVerdictCounts {
  const stride = perCpuStride(FAST_VERDICTS.size);
  const out = { next: 0, redirect: 0, ok: 0, shot: 0, other: 0 };
  FAST_VERDICT_NAMES.forEach((name, k) => {
    out[name] = sumU64PerCpu(value, cpus, stride, FAST_VERDICTS.off.packets + k * 8);
  });
  return out;
}

/** The counts of every interface index with any frame counted (the last index,
 *  FAST_VERDICT_IFINDEXES - 1, stands for that index and every larger one). */
export function readFastVerdicts(mapFd: number): Map<number, FastVerdictCounts> {
  const cpus = possibleCpus();
  const ops = new MapOps(mapFd);
  const key = Buffer.alloc(4);
  const value = Buffer.alloc(perCpuStride(FAST_VERDICTS.size) * cpus);
  const out = new Map<number, FastVerdictCounts>();
  for (let i = 0; i < FAST_VERDICT.FAST_VERDICT_IFINDEXES; i++) {
    key.writeUInt32LE(i);
    if (!ops.lookup(key, value)) continue;
    const c = sumPerCpu(value, cpus);
    if (FAST_VERDICT_NAMES.some((n) => c[n] !== 0)) out.set(i, c);
  }
  return out;
}

/** The fd of the fast path's ulvs_verdicts map, found through the programs at the tcx
 *  ingress of this namespace's interfaces; null when no fast path is attached. */
export function findFastVerdictsMap(): number | null {
  for (const dev of readdirSync('/sys/class/net')) {
    let ifindex: number;
    try {
      ifindex = Number(readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8'));
    } catch {
      continue; // gone meanwhile
    }
    for (const id of tcxIngressProgIds(ifindex)) {
      const pfd = fdById('prog', id);
      if (pfd === null) continue;
      try {
        for (const m of progInfo(pfd).mapIds) {
          const mfd = fdById('map', m);
          if (mfd === null) continue;
          if (mapInfo(mfd).name === 'ulvs_verdicts') return mfd;
          sys.close(mfd);
        }
      } finally {
        sys.close(pfd);
      }
    }
  }
  return null;
}

/** Every interface's verdict counts by name, for the metrics (interfaces gone since are listed by
 *  index, the last index as ">=255"); none when no fast path is attached. Never throws. */
export function fastVerdictsByInterface(): { interface: string; verdict: string; frames: number }[] {
  try {
    const fd = findFastVerdictsMap();
    if (fd === null) return [];
    try {
      const names = new Map<number, string>();
      for (const dev of readdirSync('/sys/class/net')) {
        try {
          names.set(Number(readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8')), dev);
        } catch {
          /* gone meanwhile */
        }
      }
      const last = FAST_VERDICT.FAST_VERDICT_IFINDEXES - 1;
      const out: { interface: string; verdict: string; frames: number }[] = [];
      for (const [i, c] of readFastVerdicts(fd)) {
        const name = i === last ? `>=${last}` : (names.get(i) ?? `ifindex ${i}`);
        for (const v of FAST_VERDICT_NAMES) out.push({ interface: name, verdict: v, frames: c[v] });
      }
      return out;
    } finally {
      sys.close(fd);
    }
  } catch {
    return [];
  }
}
