/**
 * A worker's reader of its kernel set-up ring (docs/kernel-setup.md "The engine's side"): the
 * ring (kernel-ring.ts) decoded record by record into one reused KReport and applied to the
 * engine in ring order (kernel-reports.ts). The worker calls `drain(now)` after it has read
 * packets from the TUN and before it processes them (every report the program committed before
 * one of those packets was queued is then applied first, so a connection the kernel set up is
 * known to the engine when one of its packets comes up), and on its timer.
 *
 * `ready()` is the cheap test for the per-read call: the low 32 bits of the producer position
 * against the consumer's, no system call and no BigInt. Nothing is allocated per record.
 *
 * `beat(now)`, called by the worker between batches, writes its CLOCK_MONOTONIC time to
 * ulvs_kalive[worker] at most every BEAT_MS (one map update, 20 a second): the program sets up
 * a SYN only while its owner beats (ulvs_kconf.alive_ms), so a killed or stuck ulvsd stops the
 * kernel making connections within that time. `close()` writes 0 (stale at once).
 */
import { MapOps } from './bpf.js';
import { KernelRing, newKReport, readKReport } from './kernel-ring.js';
import { KernelReports, type KernelMadeTarget } from './kernel-reports.js';
import type { KReport } from './kernel-reports.js';

export interface KernelReportReaderInit {
  /** this worker's ring (ulvs_kreports[worker]) and its size, bytes */
  ringFd: number;
  ringBytes: number;
  flowsFd: number;
  /** ulvs_kslot_free */
  freeFd: number;
  /** the kernel set-up slot range */
  slotBase: number;
  slotCount: number;
  /** ulvs_kalive and this worker's element in it */
  aliveFd: number;
  worker: number;
}

/** ms between two beats (kernel-setup-maps.ts DEFAULT_ALIVE_MS allows five) */
export const BEAT_MS = 50;

export class KernelReportReader {
  readonly #ring: KernelRing;
  readonly #reports: KernelReports;
  readonly #rec: KReport = newKReport();
  #now = 0;
  readonly #alive: MapOps;
  readonly #aliveKey = Buffer.alloc(4);
  readonly #aliveValue = Buffer.alloc(8);
  #lastBeat = -Infinity;
  /** beats the kernel refused (a map update error) */
  #beatErrors = 0;
  /** records too short for a struct kreport (a program of another layout) */
  #short = 0;
  readonly #apply = (b: Buffer, o: number, len: number): void => {
    if (readKReport(b, o, len, this.#rec)) this.#reports.apply(this.#rec, this.#now);
    else this.#short++;
  };

  constructor(o: KernelReportReaderInit, engine: KernelMadeTarget, slotFree: (slot: number) => boolean) {
    this.#ring = new KernelRing(o.ringFd, o.ringBytes);
    this.#reports = new KernelReports({ engine, flows: new MapOps(o.flowsFd), freeQueue: new MapOps(o.freeFd), slotBase: o.slotBase, slotCount: o.slotCount, slotFree });
    this.#alive = new MapOps(o.aliveFd);
    this.#aliveKey.writeUInt32LE(o.worker, 0);
  }

  /** Tell the kernel this worker reads its ring: ulvs_kalive[worker] := CLOCK_MONOTONIC ns, at
   *  most every BEAT_MS of `now` (the engine's clock, ms). */
  beat(now: number): void {
    if (now - this.#lastBeat < BEAT_MS) return;
    this.#lastBeat = now;
    this.#write(process.hrtime.bigint()); // CLOCK_MONOTONIC, as bpf_ktime_get_ns (one BigInt per beat)
  }

  #write(ns: bigint): void {
    this.#aliveValue.writeBigUInt64LE(ns, 0);
    try {
      this.#alive.update(this.#aliveKey, this.#aliveValue);
    } catch {
      this.#beatErrors++;
    }
  }

  /** Whether records may be waiting (committed or being written). */
  ready(): boolean {
    return this.#ring.pendingLow() !== 0;
  }

  /** Apply every committed record; `now` is the engine's clock (ms). Returns the records read. */
  drain(now: number): number {
    this.#now = now;
    return this.#ring.drain(this.#apply);
  }

  /** For the metrics: the reports' counters and the short records. */
  counters(): Record<string, number> {
    return { ...this.#reports.counters, kernel_short_records: this.#short, kernel_beat_errors: this.#beatErrors };
  }

  /** The last beat withdrawn (the kernel makes no more connections for this worker), the ring closed. */
  close(): void {
    this.#write(0n);
    this.#ring.close();
  }
}
