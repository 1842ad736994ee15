/**
 * keepalived mode: the VRRP role (vrrp-roles.ts) drives the sync daemon as keepalived's
 * `lvs_sync_daemon` drives the kernel's (ha-scaleout.md §1.12; keepalived
 * vrrp_state_become_master -> ipvs_syncd_master: stop the backup, start the master;
 * vrrp_state_leave_master -> ipvs_syncd_backup: stop the master, start the backup; without an
 * instance both run for the daemon's lifetime):
 *
 *   role master   master running, backup stopped
 *   role backup   backup running, master stopped   (BACKUP, FAULT, STOP, before any state)
 *   role both     both running
 *
 * The settings are the `@ulvs lvs_sync_daemon` line's (interface, id, maxlen, port, ttl, group).
 * A role may arrive before the data path runs (the FIFO is opened first): it is kept and carried
 * out once `attach` gives the daemon. Role changes run one after another; a refusal (say the
 * interface has no address yet) is logged and counted, and tried again every RETRY_MS until it
 * succeeds or another role arrives.
 */
import type { LvsSyncDaemonConfig } from '../control/keepalived/vrrp.js';
import type { SyncDaemonStart, SyncState } from '../control/daemon-listing.js';
import type { DaemonLog } from './log.js';
import type { SyncRole, SyncRoleHook } from './vrrp-roles.js';

/** The part of SyncDaemon the driver uses. */
export interface RoleTarget {
  status(): { state: SyncState }[];
  start(cfg: SyncDaemonStart): Promise<void>;
  stop(state: SyncState): Promise<void>;
}

/** how often a refused role change is tried again, ms */
const RETRY_MS = 2000;

export class SyncRoleDriver implements SyncRoleHook {
  #target: RoleTarget | null = null;
  #role: SyncRole | null = null;
  #queue: Promise<void> = Promise.resolve();
  readonly changes: Record<SyncRole, number> = { master: 0, backup: 0, both: 0 };
  failures = 0;
  #closed = false;

  constructor(
    readonly log: DaemonLog,
    /** the lvs_sync_daemon line in force (it may change on reload) */
    readonly config: () => LvsSyncDaemonConfig | null,
  ) {}

  setRole(role: SyncRole, reason: string): void {
    this.changes[role]++;
    this.#role = role;
    this.log.info(`sync daemon role ${role} (${reason})`, 'vrrp', { syncRole: role });
    this.#carryOut();
  }

  /** The daemon exists now: carry out the last role given. */
  attach(target: RoleTarget): void {
    this.#target = target;
    this.#carryOut();
  }

  /** No more role changes (ulvsd stopping). */
  close(): void {
    this.#closed = true;
  }

  /** Resolves when every role change given so far has been carried out (or refused). */
  settled(): Promise<void> {
    return this.#queue;
  }

  #carryOut(): void {
    const role = this.#role;
    const t = this.#target;
    if (role === null || t === null) return;
    this.#queue = this.#queue.then(() => this.#apply(t, role));
  }

  async #apply(t: RoleTarget, role: SyncRole): Promise<void> {
    if (role !== this.#role || this.#closed) return; // a later change superseded it
    const d = this.config();
    if (!d) return;
    const want = new Set<SyncState>(role === 'both' ? ['master', 'backup'] : [role]);
    const running = new Set(t.status().map((s) => s.state));
    try {
      // stop first (keepalived: ipvs_syncd_master stops the backup before starting the master)
      for (const s of running) if (!want.has(s)) await t.stop(s);
      for (const s of want) if (!running.has(s)) await t.start({ state: s, iface: d.interface, syncid: d.syncId, maxlen: d.maxlen ?? 0, group: d.group, port: d.port, ttl: d.ttl });
    } catch (e) {
      this.failures++;
      if (this.failures <= 3 || this.failures % 30 === 0) this.log.warn(`sync daemon role ${role} not carried out (${this.failures} refusals so far; tried again every ${RETRY_MS / 1000} s): ${(e as Error).message}`, 'vrrp');
      setTimeout(() => {
        if (this.#role === role && !this.#closed) this.#queue = this.#queue.then(() => this.#apply(t, role));
      }, RETRY_MS).unref();
    }
  }
}
