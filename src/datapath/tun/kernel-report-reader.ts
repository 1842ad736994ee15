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
}

export class KernelReportReader {
  readonly #ring: KernelRing;
  readonly #reports: KernelReports;
  readonly #rec: KReport = newKReport();
  #now = 0;
  /** records too short for a struct kreport (a program of another layout) */
  #short = 0;
  readonly #apply = (b: Buffer, o: number, len: number): void => {
    if (readKReport(b, o, len, this.#rec)) this.#reports.apply(this.#rec, this.#now);
    else this.#short++;
  };

  constructor(o: KernelReportReaderInit, engine: KernelMadeTarget, slotFree: (slot: number) => boolean) {
    this.#ring = new KernelRing(o.ringFd, o.ringBytes);
    this.#reports = new KernelReports({ engine, flows: new MapOps(o.flowsFd), freeQueue: new MapOps(o.freeFd), slotBase: o.slotBase, slotCount: o.slotCount, slotFree });
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
    return { ...this.#reports.counters, kernel_short_records: this.#short };
  }

  close(): void {
    this.#ring.close();
  }
}
