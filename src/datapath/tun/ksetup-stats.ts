/**
 * The kernel set-up counters of the fast path (ulvs_kstats, a per-CPU array of __u64 indexed by
 * enum ksetup_counter, bpf/ulvs_maps.h): summed over the CPUs, named `ksetup_<name>` in lower
 * case (ksetup_made, ksetup_user, ... ksetup_segments). Read at control time (metrics, dumps).
 */
import { MapOps } from './bpf.js';
import { KSETUP_COUNTER } from './layouts.gen.js';
import { perCpuStride, possibleCpus, sumU64PerCpu } from './per-cpu.js';

/** one __u64 per CPU */
const STRIDE = perCpuStride(8);
const NAMES = Object.entries(KSETUP_COUNTER).filter(([k]) => k !== 'KS_COUNTERS').map(([k, v]) => [`ksetup_${k.slice(3).toLowerCase()}`, v] as const);

export class KsetupStats {
  readonly #map: MapOps;
  readonly #cpus = possibleCpus();
  readonly #key = Buffer.alloc(4);
  readonly #value: Buffer;

  constructor(kstatsFd: number) {
    this.#map = new MapOps(kstatsFd);
    this.#value = Buffer.alloc(STRIDE * this.#cpus);
  }

  /** Every counter, summed over the CPUs (0 for one the kernel cannot give). */
  read(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, i] of NAMES) {
      this.#key.writeUInt32LE(i, 0);
      out[name] = this.#map.lookup(this.#key, this.#value) ? sumU64PerCpu(this.#value, this.#cpus, STRIDE, 0) : 0;
    }
    return out;
  }
}
