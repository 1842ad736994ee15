/**
 * Reading a per-CPU BPF map's value from user space (BPF_MAP_TYPE_PERCPU_ARRAY, _PERCPU_HASH): a
 * lookup fills one element per possible CPU, each the map's value_size rounded up to 8 bytes,
 * CPU c's at c * stride. Read at control time (metrics, dumps), not on the packet path.
 */
import { readFileSync } from 'node:fs';

/** CPUs in /sys/devices/system/cpu/possible ("0-1", "0-3,6"): a per-CPU map's value holds one
 *  element per possible CPU. */
export function possibleCpus(text = readFileSync('/sys/devices/system/cpu/possible', 'utf8')): number {
  let n = 0;
  for (const part of text.trim().split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new Error(`cannot read the possible CPUs from ${JSON.stringify(text)}`);
    n = Math.max(n, Number(m[2] ?? m[1]) + 1);
  }
  return n;
}

/** Bytes from one CPU's element to the next for a map of `valueSize`-byte values (8-byte aligned). */
export const perCpuStride = (valueSize: number): number => (valueSize + 7) & ~7;

/** The u64 at byte `off` of each CPU's element of a per-CPU value (`cpus` elements, `stride`
 *  bytes apart), summed over the CPUs as a number (exact below 2^53). */
export function sumU64PerCpu(value: Buffer, cpus: number, stride: number, off: number): number {
  let n = 0;
  for (let c = 0; c < cpus; c++) n += Number(value.readBigUInt64LE(c * stride + off));
  return n;
}
