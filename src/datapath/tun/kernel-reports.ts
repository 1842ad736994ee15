/**
 * A worker's application of the kernel set-up reports (docs/kernel-setup.md, bpf/ulvs_maps.h
 * struct kreport): one decoded record at a time, in ring order, handed to the engine
 * (core/kernel-made.ts). The ring's reading and decoding is the caller's (the worker reads its
 * ring before each batch of TUN packets and on its timer).
 *
 *   KREPORT_NEW      Director.kernel.open. Refused (the service or server is gone, the tuple
 *                    belongs to a connection IPVS keeps, ...): an orphan. Its flow entries (the
 *                    request tuple and, for NAT, the reply tuple) are deleted now, then its slot
 *                    is pushed back into the kernel's free queue, unless the slot is not one this
 *                    worker may give back (outside the kernel's range, or held by one of its
 *                    connections: kernel_bad_slots): the client's next segment finds no entry and
 *                    comes to the engine, as after ipvsadm -d with expire_nodest_conn.
 *   KREPORT_SEGMENT  Director.kernel.segment; a segment of no connection (it expired, or its
 *                    NEW was refused, while the segment was in the ring) is counted only, as
 *                    is a SYN that ended a finished connection (kernel_reuse_ended).
 *
 * Time: the record's ns (CLOCK_MONOTONIC, when the program forwarded the packet) on the engine's
 * clock (performance.now(), as slot-counts.ts converts), never later than the caller's `now`.
 * gso_segs is not used: the engine counts one packet per record as it does per packet it reads
 * (core/kernel-made.ts). Nothing is allocated per record.
 */
import { KernelOpen, KernelSegment } from '../../core/kernel-made.js';
import { Fwd } from '../../core/service.js';
import { FLOW_KEY_SIZE } from './fastpath.js';
import { writeKey } from './flow-entry.js';
import { FLOW_DIR } from './layouts.gen.js';
import type { SlotQueue } from './kernel-slots.js';
import { monotonicOffsetMs } from './sys.js';

/** enum kreport_kind (bpf/ulvs_maps.h; not in layouts.gen.ts until a program uses it) */
export const KReportKind = { NEW: 1, SEGMENT: 2 } as const;

/** One record, decoded: addresses and ports in host order, as struct kreport names them. */
export interface KReport {
  kind: number;
  caddr: number;
  vaddr: number;
  raddr: number;
  cport: number;
  vport: number;
  rport: number;
  proto: number;
  tcp_flags: number;
  /** 0 request (client -> VIP), 1 reply (real server -> client) */
  reply: number;
  /** the request entry's enum flow_dir: FLOW_REQUEST (NAT), FLOW_DR, FLOW_TUN */
  dir: number;
  slot: number;
  ip_len: number;
  gso_segs: number;
  /** bpf_ktime_get_ns at forwarding; 0 unknown */
  ns: number;
}

/** What the reports are applied to: the engine's kernel-made side (Director.kernel). */
export interface KernelMadeTarget {
  open(proto: number, caddr: number, cport: number, vaddr: number, vport: number, raddr: number, rport: number, fwd: number, slot: number, ipLen: number, now: number): number;
  segment(proto: number, caddr: number, cport: number, vaddr: number, vport: number, raddr: number, rport: number, reply: number, tflags: number, ipLen: number, now: number): number;
}

/** The flow map's deletion (MapOps.delete: false when absent; throws on other errors). */
export interface FlowDelete {
  delete(key: Buffer): boolean;
}

export interface KernelReportsInit {
  engine: KernelMadeTarget;
  flows: FlowDelete;
  /** the kernel's free queue (ulvs_kslot_free) */
  freeQueue: SlotQueue;
  /** the kernel set-up slot range [slotBase, slotBase + slotCount) */
  slotBase: number;
  slotCount: number;
  /** whether this worker holds `slot` for none of its connections (Offloader.kernelSlotFree) */
  slotFree(slot: number): boolean;
  /** CLOCK_MONOTONIC ms minus the engine's clock (default: measured now, sys.ts) */
  clockOffsetMs?: number;
}

/** KREPORT's flow_dir -> the engine's forwarding method (-1: not a request entry's). */
function fwdOf(dir: number): number {
  if (dir === FLOW_DIR.FLOW_REQUEST) return Fwd.MASQ;
  if (dir === FLOW_DIR.FLOW_DR) return Fwd.DROUTE;
  if (dir === FLOW_DIR.FLOW_TUN) return Fwd.TUNNEL;
  return -1;
}

export class KernelReports {
  /** for the metrics (the worker's counters) */
  readonly counters = {
    kernel_opened: 0,
    kernel_segments: 0,
    kernel_orphans: 0,
    kernel_unknown_segments: 0,
    /** of the orphans: the engine held the tuple (KernelOpen.Conflict) */
    kernel_conflicts: 0,
    /** of the orphans: the slot was not pushed back (not one this worker may give back) */
    kernel_bad_slots: 0,
    /** records of an unknown kind or flow_dir (a NEW's entries are deleted as an orphan's) */
    kernel_bad_records: 0,
    /** an orphan's entries could not be deleted (its slot is kept out of the queue) */
    kernel_delete_errors: 0,
    /** a SYN on a finished connection whose server may not take it: the connection and its
     *  entries ended (KernelSegment.Ended) */
    kernel_reuse_ended: 0,
  };
  readonly #o: KernelReportsInit;
  readonly #offsetMs: number;
  readonly #key = Buffer.alloc(FLOW_KEY_SIZE);
  readonly #slotValue = Buffer.alloc(4);

  constructor(o: KernelReportsInit) {
    this.#o = o;
    this.#offsetMs = o.clockOffsetMs ?? monotonicOffsetMs();
  }

  /** Apply record r; `now`: the engine's clock (ms) as the worker passes it to process(). */
  apply(r: KReport, now: number): void {
    const t = r.ns > 0 ? Math.min(now, r.ns / 1e6 - this.#offsetMs) : now;
    if (r.kind === KReportKind.SEGMENT) {
      const code = this.#o.engine.segment(r.proto, r.caddr, r.cport, r.vaddr, r.vport, r.raddr, r.rport, r.reply, r.tcp_flags, r.ip_len, t);
      if (code === KernelSegment.Applied) this.counters.kernel_segments++;
      else if (code === KernelSegment.Ended) this.counters.kernel_reuse_ended++;
      else this.counters.kernel_unknown_segments++;
      return;
    }
    if (r.kind !== KReportKind.NEW) {
      this.counters.kernel_bad_records++;
      return;
    }
    const fwd = fwdOf(r.dir);
    if (fwd < 0) this.counters.kernel_bad_records++;
    const c = fwd < 0 ? KernelOpen.NotEligible : this.#o.engine.open(r.proto, r.caddr, r.cport, r.vaddr, r.vport, r.raddr, r.rport, fwd, r.slot, r.ip_len, t);
    if (c >= 0) {
      this.counters.kernel_opened++;
      return;
    }
    this.counters.kernel_orphans++;
    if (c === KernelOpen.Conflict) this.counters.kernel_conflicts++;
    this.#orphan(r, c !== KernelOpen.BadSlot);
  }

  /** Delete r's entries, then give its slot back when `mayPush` and it is one to give back. */
  #orphan(r: KReport, mayPush: boolean): void {
    const o = this.#o;
    let deleted = true;
    try {
      writeKey(this.#key, 0, r.caddr, r.vaddr, r.cport, r.vport, r.proto); // the request tuple
      o.flows.delete(this.#key);
      writeKey(this.#key, 0, r.raddr, r.caddr, r.rport, r.cport, r.proto); // NAT's reply tuple (absent for DR/TUN)
      o.flows.delete(this.#key);
    } catch {
      deleted = false; // an entry may still point at the slot: never push it
      this.counters.kernel_delete_errors++;
    }
    const k = r.slot - o.slotBase;
    if (!mayPush || k < 0 || k >= o.slotCount || !o.slotFree(r.slot)) {
      this.counters.kernel_bad_slots++;
      return;
    }
    if (!deleted) return;
    this.#slotValue.writeUInt32LE(r.slot >>> 0, 0);
    if (o.freeQueue.push(this.#slotValue) !== 0) this.counters.kernel_bad_slots++;
  }
}
