/**
 * The one message protocol between the control plane (daemon/worker-pool.ts) and a data-path worker
 * (worker.ts). Both sides import these types; neither casts.
 *
 *   control -> worker   WorkerInit (workerData, once), then ToWorker on the MessagePort
 *   worker -> control   FromWorker on the same port
 *
 * Every `call` is answered by exactly one `reply` with its id: `result` (typed by `Calls`), or
 * `error` (the code and message of what the worker threw; the worker applied nothing). After
 * `stop` the worker leaves its loop, gives back its fast-path connections and sends `stopped`
 * once. `ready` comes once, when the worker forwards; `io` when it changed its packet I/O later.
 * `error` is fatal: the worker's loop has ended.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ConnInfo, DirectorSnapshot, Explanation, FlowQuery, Sysctls, Timeouts } from '../../core/director.js';
import type { ImportResult } from '../../core/conn/handover.js';
import type { DefenseChange, DefenseStatus } from '../../core/defense.js';
import type { EngineCarry } from '../../core/carry-over.js';
import type { RuleOp } from '../../core/rule-ops.js';
import type { ServiceKey } from '../../core/service.js';
import type { OffloaderInit } from './offloader.js';

export type IoMode = 'uring' | 'syscalls';

export interface WorkerInit {
  fd: number;
  control: MessagePort;
  seed: number;
  maxConns: number;
  /** the initial configuration, as operations on an empty director */
  ops: RuleOp[];
  /** microseconds to keep polling after the last packet before sleeping (io_uring only) */
  busyPollUs: number;
  /** scheduler state shared by every worker's engine (rr/wrr cursors; core/sched-state.ts) */
  sharedState: Int32Array;
  /** 'auto' (io_uring where the kernel can, else syscalls), 'uring' or 'syscalls' */
  io: 'auto' | IoMode;
  /** this host's IPv4 addresses (uint32) at start: a stray TCP segment to one of them goes to
   *  the host stack (strayTcp 'local'); later changes come by the call setLocalAddresses */
  localAddrs: number[];
  /** the engine's sysctls at start (ulvsd --sysctl), over IPVS's defaults */
  sysctl?: Partial<Sysctls>;
  /** the TUN egress program's mark notes (tun-mark.ts), for fwmark services; absent: no marks */
  marksFd?: number;
  /** the kernel fast path's maps and this worker's slots (fastpath.ts, offloader.ts), if enabled;
   *  with kernel set-up (docs/kernel-setup.md) its slot range (`kernel`) and this worker's ring */
  fastPath?: OffloaderInit & { after: number; kernelRing?: { fd: number; bytes: number; aliveFd: number; worker: number } };
  /** connections handed over by the previous process (core/conn/handover.ts records), imported
   *  before the first packet is read */
  handover?: HandoverBatch;
  /** the previous process's counters and estimators (core/carry-over.ts), summed over its
   *  workers: given to one worker only, added to its engine before the first packet */
  carry?: EngineCarry;
  /** tests only: the first `calls` io_uring_enter calls fail with `errno` (uring-loop.ts) */
  uringFault?: { errno: number; calls: number };
}

/** Hand-over records (core/conn/handover.ts): `count` records in `buf`. */
export interface HandoverBatch {
  buf: Uint8Array;
  count: number;
}

/** A worker's counters: its engine's (Director.counters) and its data path's (reads, writes, fastpath_*...). */
export interface WorkerCounters {
  engine: Record<string, number>;
  datapath: Record<string, number>;
  /** the engine's connection-sync counters (SyncControl.counters: sync_rx_*, sync_apply_*, sync_tx_*) */
  sync: Record<string, number>;
}

/** The engine's sync master settings (core/sync/master.ts SyncMasterConfig). */
export interface WorkerSyncMaster {
  syncid: number;
  /** UDP payload bytes per datagram (wire/ipvs-sync/maxlen.ts) */
  maxlen: number;
}

/** The calls a worker answers: arguments and result of each. */
export interface Calls {
  /** apply operations validated by the control plane (all or nothing per worker) */
  apply: { args: [ops: RuleOp[]]; result: null };
  snapshot: { args: []; result: DirectorSnapshot };
  connections: { args: []; result: ConnInfo[] };
  /** which server this worker's engine gives the flow, and why (core/explain.ts): a dry run of
   *  the packet path's decision on the worker that owns the flow; changes nothing */
  explain: { args: [q: FlowQuery]; result: Explanation };
  timeouts: { args: []; result: Timeouts };
  setTimeouts: { args: [t: Partial<Timeouts>]; result: null };
  /** the engine's sysctls (core/sysctl.ts) */
  sysctls: { args: []; result: Sysctls };
  /** change some (validated by the control plane, checked again by the engine: all or nothing) */
  setSysctls: { args: [s: Partial<Sysctls>]; result: null };
  /** once a second: the host's MemAvailable (pages; negative unknown) for the flood defences
   *  (core/defense.ts); the changes since the last call (for the log) and the state now */
  defend: { args: [memPages: number]; result: { changes: DefenseChange[]; status: DefenseStatus } };
  zero: { args: [service?: ServiceKey]; result: null };
  counters: { args: []; result: WorkerCounters };
  /** this host's IPv4 addresses now (uint32; replaces the previous list; see WorkerInit.localAddrs) */
  setLocalAddresses: { args: [addrs: number[]]; result: null };
  /** start a trace (core/trace/packet-trace.ts): the filter's integers (trace-filter.ts
   *  compileFilter), at most `budget` records */
  traceStart: { args: [filter: number[], budget: number]; result: null };
  /** the trace's records since the last read (REC int32 words each), the records lost to a full
   *  ring since then, the budget left, whether the trace is still on, and the origin of the
   *  records' clock (this thread's performance.timeOrigin, ms since the epoch) */
  traceRead: { args: []; result: { records: Int32Array; lost: number; budgetLeft: number; on: boolean; origin: number } };
  traceStop: { args: []; result: null };
  /** start the engine's sync master: its datagrams come back as FromWorker `sync` messages */
  syncStartMaster: { args: [cfg: WorkerSyncMaster]; result: null };
  /** stop it (the datagram being filled is dropped, as the kernel does) */
  syncStopMaster: { args: []; result: null };
  /** backup: received datagrams holding only records whose connections this worker's queue
   *  gets (daemon/sync-router.ts); each applied as SyncControl.receive; result: records taken */
  syncReceive: { args: [datagrams: Uint8Array[], ownSyncId: number]; result: number };
  /** the daemon's backup role started (true) or stopped: with backup_only the engine then
   *  serves no virtual service, and takes its connections back from the kernel fast path */
  syncBackupRunning: { args: [running: boolean]; result: null };
}
export type CallName = keyof Calls;

/** A call of one of the names K; `call` and `args` agree (a union over the names, not a string and unknown[]). */
export type CallMessageOf<K extends CallName> = { [P in K]: { type: 'call'; id: number; call: P; args: Calls[P]['args'] } }[K];
export type CallMessage = CallMessageOf<CallName>;

/** What answers the calls, one function per name (the worker's side of `Calls`). */
export type CallHandlers = { [K in CallName]: (args: Calls[K]['args'], now: number) => Calls[K]['result'] };

/** `stop` with `handover`: leave the offloaded connections in the kernel and send the table as
 *  records with `stopped` (a restart); without: take everything back from the kernel first. */
export type ToWorker = { type: 'stop'; handover?: boolean } | CallMessage;

export type FromWorker =
  | { type: 'ready' | 'io'; io: IoMode; reason?: string; imported?: ImportResult }
  | { type: 'reply'; id: number; result: Calls[CallName]['result'] }
  | { type: 'reply'; id: number; error: { code: string; message: string } }
  | { type: 'error'; message: string }
  /** a finished sync datagram of this worker's master (a copy), for the daemon's socket */
  | { type: 'sync'; datagram: Uint8Array }
  /** with a hand-over: the table as records and the engine's carry-over (core/carry-over.ts) */
  | { type: 'stopped'; engine: Record<string, number>; datapath: Record<string, number>; handover?: HandoverBatch; carry?: EngineCarry };
