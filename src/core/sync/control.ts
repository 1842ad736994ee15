/**
 * Connection synchronisation for one engine: the two entry points the daemon plugs its sockets
 * into (docs/sync.md).
 *   master: startMaster(cfg, sink) .. stopMaster(); finished datagrams reach `sink`; tick()
 *           hands over a datagram whose first record is 2 s old (Director.tick calls it).
 *   backup: receive(datagram, ...) decodes one received datagram and applies its records
 *           (ip_vs_process_message + ip_vs_proc_conn); it returns the SyncReason that ended it.
 * Master and backup may run at the same time (the kernel's "master & backup support at a time").
 * Starting a running master fails with EEXIST, stopping a stopped one with ESRCH (as the kernel).
 */
import type { ConnLifecycle } from '../conn/lifecycle.js';
import type { Decider } from '../decide.js';
import type { EngineState } from '../engine-state.js';
import { IpvsError } from '../errors.js';
import type { OffloadPolicy } from '../offload-policy.js';
import type { ProtoTable } from '../proto/ops.js';
import { SyncDecoder } from '../../wire/ipvs-sync/decode.js';
import { SYNC_REASON_NAMES, type SyncReasonCode } from '../../wire/ipvs-sync/reasons.js';
import { APPLY_COUNTER_NAMES, SyncApplier } from './apply.js';
import { MASTER_COUNTER_NAMES, SyncMaster, type SyncMasterConfig, type SyncSink } from './master.js';
import { SeqStore } from './seq-store.js';

export class SyncControl {
  readonly #s: EngineState;
  readonly #protos: ProtoTable;
  readonly #seq: SeqStore;
  readonly #decoder = new SyncDecoder();
  readonly #applier: SyncApplier;
  readonly #offload: OffloadPolicy;
  #master: SyncMaster | null = null;
  /** counters of masters that ran before the current one */
  readonly #pastMaster = new Float64Array(MASTER_COUNTER_NAMES.length);

  constructor(s: EngineState, protos: ProtoTable, life: ConnLifecycle, offload: OffloadPolicy, decider: Decider) {
    this.#s = s;
    this.#protos = protos;
    this.#seq = new SeqStore(s.conns);
    this.#applier = new SyncApplier(s, protos, life, offload, decider, this.#seq);
    this.#offload = offload;
  }

  /** Start announcing connections. cfg.maxlen: UDP payload bytes per datagram (>= 1). */
  startMaster(cfg: SyncMasterConfig, sink: SyncSink): void {
    if (this.#master !== null) throw new IpvsError('EEXIST', 'sync master is already running');
    if (!Number.isInteger(cfg.syncid) || cfg.syncid < 0 || cfg.syncid > 255) throw new IpvsError('EINVAL', `syncid ${cfg.syncid} not in 0..255`);
    if (!Number.isInteger(cfg.maxlen) || cfg.maxlen < 1 || cfg.maxlen > 65535) throw new IpvsError('EINVAL', `sync maxlen ${cfg.maxlen} not in 1..65535`);
    this.#master = new SyncMaster(this.#s, this.#protos, this.#seq, cfg, sink, this.#offload.seqDeltas);
    this.#s.sync = this.#master;
  }

  /** Stop announcing. The datagram being filled is dropped, as the kernel's thread drops its
   *  buffers on stop, unless `flush` hands it to the sink first. */
  stopMaster(flush = false): void {
    const m = this.#master;
    if (m === null) throw new IpvsError('ESRCH', 'sync master is not running');
    if (flush) m.flush();
    m.counters.forEach((v, i) => (this.#pastMaster[i]! += v));
    this.#master = null;
    this.#s.sync = null;
  }

  get masterRunning(): boolean {
    return this.#master !== null;
  }

  /** The daemon's backup role runs (the kernel's sync_state & IP_VS_STATE_BACKUP): with the
   *  backup_only sysctl, the engine then serves no virtual service (Director.process). */
  get backupRunning(): boolean {
    return this.#s.backupRunning;
  }
  set backupRunning(v: boolean) {
    this.#s.backupRunning = v;
  }

  /** backup_only in force: the backup runs and the sysctl is 1. Director.process then passes
   *  requests (and client-side ICMP errors) to the host stack unchanged, as ip_vs_in_hook and
   *  ip_vs_forward_icmp return NF_ACCEPT; replies of known connections are still translated
   *  (the kernel's out-hook does not look at backup_only), and nothing is offloaded. */
  get backupOnly(): boolean {
    return this.#s.backupOnly;
  }

  /** backup_only came into force (true) or ended: the engine's connections come back from the
   *  kernel fast path and DR/TUN tuples stop being routed, or are routed again
   *  (OffloadPolicy.setRoutesSuspended). The worker calls it when backupOnly changes. */
  suspendRoutes(off: boolean): void {
    this.#offload.setRoutesSuspended(off);
  }

  /** records waiting in the master's current datagram (0 when stopped) */
  get pending(): number {
    return this.#master?.pending ?? 0;
  }

  /** Backup: one received datagram buf[off, off+len), at time `now` (ms); `ownSyncId` is the
   *  backup's syncid (0 accepts every master). Records are applied as they are read. */
  receive(buf: Uint8Array, off: number, len: number, ownSyncId: number, now: number): SyncReasonCode {
    this.#s.setNow(now);
    return this.#decoder.decode(buf, off, len, ownSyncId, this.#applier.visit);
  }

  /** records the last receive() applied, and left out */
  get lastTaken(): number {
    return this.#decoder.taken;
  }
  get lastSkipped(): number {
    return this.#decoder.skipped;
  }

  /** Master: hand over a datagram whose first record is 2 s old. */
  tick(now: number): void {
    this.#master?.tick(now);
  }

  /** Hand over the master's current datagram now. */
  flush(): void {
    this.#master?.flush();
  }

  /** Every counter by name: sync_rx_<reason> (datagrams by verdict, records by skip reason),
   *  sync_apply_<what>, sync_tx_<what>. */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    SYNC_REASON_NAMES.forEach((n, i) => (out[`sync_rx_${n}`] = this.#decoder.counters[i]!));
    out['sync_rx_RecordsTaken'] = this.#decoder.recordsTaken;
    APPLY_COUNTER_NAMES.forEach((n, i) => (out[`sync_apply_${n}`] = this.#applier.counters[i]!));
    MASTER_COUNTER_NAMES.forEach((n, i) => (out[`sync_tx_${n}`] = this.#pastMaster[i]! + (this.#master?.counters[i] ?? 0)));
    return out;
  }
}
