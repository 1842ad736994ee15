/**
 * The master side of connection synchronisation (the kernel's ip_vs_sync_conn and its sync
 * buffer): told of every inbound packet (hook.ts), it decides per entry (sender-policy.ts) and
 * appends due entries to the current datagram; a finished datagram goes to the sink. No I/O here:
 * the daemon's sink sends it (UDP to the group, TTL 1, loop off) or queues it.
 *
 * Batching (ip_vs_sync_buff): records go into one datagram of at most `maxlen` bytes (the first
 * record always fits) and 255 records; when the next record does not fit, the datagram is handed
 * to the sink and a new one begun. A datagram is also handed over once its first record is
 * FLUSH_MS old (IPVS_SYNC_FLUSH_TIME, 2 s), checked by tick() (the kernel checks every second,
 * so 2-3 s). A change of sync_version hands the current datagram over first. The kernel's
 * thread-per-port split (sync_ports) and its queue cap (sync_qlen_max) belong to the daemon: the
 * sink returns false when its queue is full, and the datagram is counted as dropped.
 *
 * Control: after an entry, the entry controlling it (its template) is considered too, with its
 * own packet count incremented (v1: always; v0: only when the entry was announced), as the kernel.
 * ONE_PACKET entries are never announced themselves (v1 still considers their template).
 */
import { ConnFlag } from '../conn-flags.js';
import type { EngineState } from '../engine-state.js';
import type { ProtoTable } from '../proto/ops.js';
import { Append, SyncMessageWriter } from '../../wire/ipvs-sync/message-writer.js';
import { SyncRecord } from '../../wire/ipvs-sync/record.js';
import { SyncConnState } from './conn-state.js';
import { fillRecord, recordState, timeoutTicksOf } from './conn-record.js';
import type { SyncHook } from './hook.js';
import type { SeqDeltaSource } from '../offload.js';
import type { SeqStore } from './seq-store.js';
import { syncNeeded, type TimeoutSource } from './sender-policy.js';

/** A partly filled datagram is handed over once its first record is this old, ms. */
export const FLUSH_MS = 2000;

/** Receives a finished datagram: bytes [0, length) of `bytes`, valid only during the call.
 *  Returns false when it could not take it (queue full: counted as dropped). */
export type SyncSink = (bytes: Uint8Array, length: number) => boolean;

export interface SyncMasterConfig {
  /** 0..255, written into every datagram */
  syncid: number;
  /** sync_maxlen: UDP payload bytes per datagram (default 1472 = 1500 - 28) */
  maxlen: number;
}

/** Counters of a master, index = MasterCounter. */
export const MasterCounter = { Records: 0, Datagrams: 1, DatagramsDropped: 2, Unencodable: 3 } as const;
export const MASTER_COUNTER_NAMES = Object.keys(MasterCounter);

export class SyncMaster implements SyncHook, TimeoutSource {
  readonly #s: EngineState;
  readonly #protos: ProtoTable;
  readonly #seq: SeqStore;
  readonly #st: SyncConnState;
  readonly #writer: SyncMessageWriter;
  readonly #rec = new SyncRecord();
  readonly #sink: SyncSink;
  readonly #syncid: number;
  readonly #maxlen: number;
  /** when the current datagram got its first record, ms */
  #firstMs = 0;
  readonly counters = new Float64Array(MASTER_COUNTER_NAMES.length);

  /** the SYN-cookie connections' deltas, announced as IPVS_OPT_SEQ_DATA (synproxy-seq.ts) */
  readonly #deltas: SeqDeltaSource | null;

  constructor(s: EngineState, protos: ProtoTable, seq: SeqStore, cfg: SyncMasterConfig, sink: SyncSink, deltas: SeqDeltaSource | null = null) {
    this.#s = s;
    this.#protos = protos;
    this.#seq = seq;
    this.#deltas = deltas;
    if (s.conns.sync === null) s.conns.sync = new SyncConnState(s.conns.capacity, s.nowTick);
    this.#st = s.conns.sync;
    this.#syncid = cfg.syncid & 0xff;
    this.#maxlen = cfg.maxlen;
    this.#writer = new SyncMessageWriter(cfg.maxlen);
    this.#writer.reset(s.sysctl.syncVersion, this.#syncid, cfg.maxlen);
    this.#sink = sink;
  }

  /** records in the datagram being filled */
  get pending(): number {
    return this.#writer.count;
  }

  inbound(c: number): void {
    const st = this.#st;
    let pkts: number;
    if ((this.#s.conns.flags(c) & ConnFlag.ONE_PACKET) !== 0) pkts = this.#s.sysctl.syncThreshold;
    else {
      pkts = (st.pkts[c]! + 1) >>> 0;
      st.pkts[c] = pkts;
    }
    this.#syncConn(c, pkts);
  }

  /** n packets at once (kernel fast path): the count moves by n, and the entry is considered once,
   *  with the last count in the batch that the period rule would announce, if any. */
  inboundBulk(c: number, n: number): void {
    const st = this.#st;
    const sys = this.#s.sysctl;
    const from = st.pkts[c]!;
    const to = (from + n) >>> 0;
    st.pkts[c] = to;
    let pkts = to;
    const P = sys.syncPeriod;
    if (P > 0) {
      const back = (((to - sys.syncThreshold) % P) + P) % P; // packets since the last due count
      if (back < n) pkts = (to - back) >>> 0;
    } else if (from < sys.syncThreshold && to >= sys.syncThreshold) pkts = sys.syncThreshold;
    this.#syncConn(c, pkts);
  }

  /** the policy's TimeoutSource: entry c's current timeout, ticks */
  timeoutTicks(c: number): number {
    return timeoutTicksOf(this.#s, this.#protos, c);
  }

  keptAlive(c: number): void {
    this.#syncConn(c, this.#s.sysctl.syncThreshold);
  }

  /** ip_vs_sync_conn: entry c with packet count pkts, then its controlling template. */
  #syncConn(c: number, pkts: number): void {
    const s = this.#s;
    const conns = s.conns;
    const v0 = s.sysctl.syncVersion === 0;
    for (;;) {
      const f = conns.flags(c);
      if ((f & ConnFlag.ONE_PACKET) !== 0) {
        if (v0) return; // v0 considers nothing more
      } else if (syncNeeded(conns, this.#st, c, pkts, recordState(s, c), s.nowTick, s.sysctl, this)) this.#append(c);
      else if (v0) return;
      const t = (f & ConnFlag.TEMPLATE) !== 0 ? -1 : conns.ctl[c]!;
      if (t < 0) return;
      pkts = (this.#st.pkts[t]! + 1) >>> 0;
      this.#st.pkts[t] = pkts;
      c = t;
    }
  }

  #append(c: number): void {
    const r = this.#rec;
    const w = this.#writer;
    fillRecord(r, this.#s, this.#protos, this.#seq, c, this.#deltas);
    const version = this.#s.sysctl.syncVersion === 0 ? 0 : 1;
    if (w.version !== version) {
      if (w.count > 0) this.#emit();
      w.reset(version, this.#syncid, this.#maxlen);
    }
    let code = w.append(r);
    if (code === Append.Full) {
      this.#emit();
      code = w.append(r);
    }
    if (code !== Append.Ok) {
      this.counters[MasterCounter.Unencodable]!++;
      return;
    }
    if (w.count === 1) this.#firstMs = this.#s.nowMs;
    this.counters[MasterCounter.Records]!++;
  }

  /** Hand over a partly filled datagram once its first record is FLUSH_MS old. */
  tick(nowMs: number): void {
    if (this.#writer.count > 0 && nowMs - this.#firstMs >= FLUSH_MS) this.#emit();
  }

  /** Hand over the current datagram now (if it has records). */
  flush(): void {
    if (this.#writer.count > 0) this.#emit();
  }

  #emit(): void {
    const w = this.#writer;
    const ok = this.#sink(w.bytes, w.length);
    this.counters[ok ? MasterCounter.Datagrams : MasterCounter.DatagramsDropped]!++;
    w.reset(w.version, this.#syncid, this.#maxlen);
  }
}
