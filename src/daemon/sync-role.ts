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
 *
 * reconfigure() (ulvsd's reload, SIGHUP or POST /v1/reload): a changed line takes effect at once,
 * not at the next VRRP role change: each role this driver started with other settings is
 * stopped and started again with the line's, in the role it has now (keepalived restarts its
 * daemon on reload the same way); a removed line stops the roles it started. Roles started by
 * hand (`ulvsadm --start-daemon`) are left alone.
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
  /** restarts for a changed lvs_sync_daemon line (reconfigure) */
  restarts = 0;
  #closed = false;
  /** the settings each role was started with by this driver */
  readonly #started = new Map<SyncState, SyncDaemonStart>();

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

  /** The configuration was read again: carry out the current role with the settings in force. */
  reconfigure(): void {
    const t = this.#target;
    if (t === null || this.#closed) return;
    const role = this.#role;
    this.#queue = this.#queue.then(async () => {
      if (this.config() === null) {
        // the line is gone: stop what it started
        for (const s of [...this.#started.keys()]) {
          this.#started.delete(s);
          if (t.status().some((x) => x.state === s)) await t.stop(s).catch((e: Error) => this.log.warn(`sync daemon ${s} not stopped: ${e.message}`, 'vrrp'));
        }
        return;
      }
      if (role !== null) await this.#apply(t, role);
    });
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
    const settings = (state: SyncState): SyncDaemonStart => ({ state, iface: d.interface, syncid: d.syncId, maxlen: d.maxlen ?? 0, group: d.group, port: d.port, ttl: d.ttl });
    const same = (a: SyncDaemonStart, b: SyncDaemonStart) => JSON.stringify(a) === JSON.stringify(b);
    try {
      // stop first (keepalived: ipvs_syncd_master stops the backup before starting the master)
      for (const s of running) if (!want.has(s)) await this.#stop(t, s);
      // a role this driver started with other settings (the line changed): again, with these
      for (const s of want) {
        const was = this.#started.get(s);
        if (running.has(s) && was && !same(was, settings(s))) {
          await this.#stop(t, s);
          running.delete(s);
          this.restarts++;
          this.log.info(`sync daemon ${s}: lvs_sync_daemon changed, restarted with the new settings`, 'vrrp');
        }
      }
      for (const s of want)
        if (!running.has(s)) {
          await t.start(settings(s));
          this.#started.set(s, settings(s));
        }
    } catch (e) {
      this.failures++;
      if (this.failures <= 3 || this.failures % 30 === 0) this.log.warn(`sync daemon role ${role} not carried out (${this.failures} refusals so far; tried again every ${RETRY_MS / 1000} s): ${(e as Error).message}`, 'vrrp');
      setTimeout(() => {
        if (this.#role === role && !this.#closed) this.#queue = this.#queue.then(() => this.#apply(t, role));
      }, RETRY_MS).unref();
    }
  }

  async #stop(t: RoleTarget, s: SyncState): Promise<void> {
    await t.stop(s);
    this.#started.delete(s);
  }
}
