/**
 * What every part of one engine shares (IPVS keeps the same in `struct netns_ipvs`): the
 * connection table, the servers by id, the sysctls and timeouts, the counters, and the time of
 * the packet or tick being handled. Parts read and write it directly; none holds a copy.
 */
import { ConnTable, TICK_MS } from './conn-table.js';
import { DestRegistry } from './dest-registry.js';
import { Stats } from './stats.js';
import type { SyncHook } from './sync/hook.js';
import { defaultSysctls, type Sysctls } from './sysctl.js';
import { TimeoutTable } from './timeouts.js';
import { EVENT_NAMES, Outcome, OUTCOME_NAMES, type OutcomeCode } from './verdict.js';

export class EngineState {
  readonly conns: ConnTable;
  readonly dests = new DestRegistry();
  readonly sysctl: Sysctls;
  readonly timeouts = new TimeoutTable();
  /** outcome counters, index = Outcome code (one per packet) */
  readonly outcomes = new Float64Array(OUTCOME_NAMES.length);
  /** event counters, index = Event code */
  readonly events = new Float64Array(EVENT_NAMES.length);
  /** totals over all services (ipvsadm's global stats) */
  readonly stats = new Stats();
  /** the caller's monotonic clock at the current packet or tick, ms; and in table ticks */
  nowMs = 0;
  nowTick = 0;
  /** outcome of the last packet */
  lastOutcome: OutcomeCode = Outcome.PassNoService;
  /** connection used by the last forwarded packet, or -1 */
  lastConn = -1;
  /** the running sync master (core/sync/master.ts), or null */
  sync: SyncHook | null = null;
  /** secure_tcp in force: TCP moves by tcp_states_dos (defense.ts sets it, proto/tcp.ts reads it) */
  tcpStatesDos = false;
  /** the sync daemon's backup role runs (sync_state & IP_VS_STATE_BACKUP; SyncControl sets it) */
  backupRunning = false;

  /** backup_only in force (sysctl_backup_only): requests are not served */
  get backupOnly(): boolean {
    return this.backupRunning && this.sysctl.backupOnly;
  }

  constructor(capacity: number, seed: number, sysctl?: Partial<Sysctls>) {
    this.conns = new ConnTable({ capacity, seed });
    this.sysctl = defaultSysctls(sysctl);
  }

  setNow(now: number): void {
    this.nowMs = now;
    this.nowTick = Math.floor(now / TICK_MS);
  }
}
