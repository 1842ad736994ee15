/**
 * The VRRP states keepalived reports (notify FIFO lines, notify-line.ts), per instance and per
 * sync group, and the sync daemon's role derived from them, as keepalived's `lvs_sync_daemon`
 * derives the kernel daemon's (ha-scaleout.md §1.12; keepalived vrrp.c
 * vrrp_state_become_master -> ipvs_syncd_master, vrrp_state_leave_master -> ipvs_syncd_backup):
 *
 *   lvs_sync_daemon IF INSTANCE   role `master` while INSTANCE is MASTER, `backup` otherwise
 *                                 (BACKUP, FAULT, STOP, DELETED, and before keepalived said anything:
 *                                 keepalived starts its daemon as BACKUP)
 *   lvs_sync_daemon IF            role `both` for ulvsd's lifetime (keepalived runs both daemons)
 *   no lvs_sync_daemon            no role, the hook is never called
 *
 * A GROUP line sets the state of every member instance too (keepalived keeps a sync group's
 * members in one state and may skip an instance's own line). Every state change is logged
 * (kind `vrrp`); every role change calls `SyncRoleHook.setRole` — the interface the sync
 * daemon implements. Forwarding never depends on the role: keepalived moves the addresses,
 * and ulvsd forwards whatever reaches it. Lines that are malformed or name an unknown instance
 * or group are counted and logged (rate-limited), never thrown.
 */
import type { VrrpConfig } from '../control/keepalived/vrrp.js';
import { parseNotifyLine, type VrrpState } from '../control/keepalived/notify-line.js';
import type { DaemonLog } from './log.js';

export type SyncRole = 'master' | 'backup' | 'both';

/** What the connection sync daemon implements: switch to `role` (called on every change). */
export interface SyncRoleHook {
  setRole(role: SyncRole, reason: string): void;
}

/** The hook until the sync daemon exists: a log line and a count per role. */
export class LoggingSyncRoleHook implements SyncRoleHook {
  readonly changes: Record<SyncRole, number> = { master: 0, backup: 0, both: 0 };
  constructor(readonly log: DaemonLog) {}
  setRole(role: SyncRole, reason: string): void {
    this.changes[role]++;
    this.log.info(`sync daemon role ${role} (${reason}); no connection sync daemon is running yet`, 'vrrp', { syncRole: role });
  }
}

export interface VrrpEntityState {
  name: string;
  /** null until keepalived has reported it */
  state: VrrpState | null;
  priority: number | null;
  /** ms since the epoch of the last state change, null before the first */
  since: number | null;
}

export interface VrrpStatus {
  fifo: string | null;
  instances: (VrrpEntityState & { group: string | null })[];
  groups: VrrpEntityState[];
  syncDaemon: { interface: string; instance: string | null; syncId: number; role: SyncRole } | null;
  counters: { lines: number; transitions: number; events: number; ignored: number; malformed: number; unknownNames: number; roleChanges: number };
}

const fresh = (name: string): VrrpEntityState => ({ name, state: null, priority: null, since: null });

export class VrrpRoles {
  #cfg: VrrpConfig;
  #instances = new Map<string, VrrpEntityState>();
  #groups = new Map<string, VrrpEntityState>();
  #role: SyncRole | null = null;
  readonly counters: VrrpStatus['counters'] = { lines: 0, transitions: 0, events: 0, ignored: 0, malformed: 0, unknownNames: 0, roleChanges: 0 };

  constructor(
    cfg: VrrpConfig,
    readonly log: DaemonLog,
    readonly hook: SyncRoleHook,
    readonly now: () => number = Date.now,
  ) {
    this.#cfg = cfg;
    this.reconfigure(cfg);
  }

  /** A new configuration (reload): states of instances and groups that remain are kept. */
  reconfigure(cfg: VrrpConfig): void {
    this.#cfg = cfg;
    this.#instances = new Map(cfg.instances.map((v) => [v.name, this.#instances.get(v.name) ?? fresh(v.name)]));
    this.#groups = new Map(cfg.groups.map((g) => [g.name, this.#groups.get(g.name) ?? fresh(g.name)]));
    this.#updateRole('configuration');
  }

  get role(): SyncRole | null {
    return this.#role;
  }

  /** One line from the FIFO (without its newline). */
  feed(line: string): void {
    this.counters.lines++;
    const n = parseNotifyLine(line);
    if (n.kind === 'malformed') {
      this.counters.malformed++;
      this.log.warn(`vrrp notify FIFO: malformed line ignored (${n.why})`, 'vrrp');
      return;
    }
    if (n.kind === 'other') {
      this.counters.ignored++;
      return;
    }
    const table = n.type === 'INSTANCE' ? this.#instances : this.#groups;
    const e = table.get(n.name);
    if (!e) {
      this.counters.unknownNames++;
      this.log.warn(`vrrp notify FIFO: ${n.type.toLowerCase()} ${JSON.stringify(n.name)} is not in the configuration, line ignored`, 'vrrp');
      return;
    }
    if (n.kind === 'event') {
      this.counters.events++;
      if (n.type === 'INSTANCE') e.priority = n.priority;
      return;
    }
    if (n.type === 'INSTANCE') e.priority = n.priority;
    this.#set(n.type === 'INSTANCE' ? 'instance' : 'group', e, n.state);
    if (n.type === 'GROUP') for (const m of this.#cfg.groups.find((g) => g.name === n.name)!.members) this.#set('instance', this.#instances.get(m)!, n.state, n.name);
    this.#updateRole(`keepalived: ${n.type.toLowerCase()} ${n.name} ${n.state}`);
  }

  #set(what: 'instance' | 'group', e: VrrpEntityState, state: VrrpState, viaGroup?: string): void {
    if (e.state === state) return;
    const before = e.state ?? 'unknown';
    e.state = state;
    e.since = this.now();
    this.counters.transitions++;
    this.log.info(`vrrp: ${what} ${e.name} ${before} -> ${state}${viaGroup ? ` (sync group ${viaGroup})` : e.priority !== null && what === 'instance' ? ` (priority ${e.priority})` : ''}`, 'vrrp', { [what]: e.name, from: before, to: state });
  }

  #updateRole(reason: string): void {
    const d = this.#cfg.syncDaemon;
    let role: SyncRole | null = null;
    if (d) role = d.instance === undefined ? 'both' : this.#instances.get(d.instance)?.state === 'MASTER' ? 'master' : 'backup';
    if (role === this.#role) return;
    this.#role = role;
    if (role === null) return;
    this.counters.roleChanges++;
    const why = d!.instance === undefined ? 'lvs_sync_daemon names no VRRP instance' : `${reason}; lvs_sync_daemon follows instance ${d!.instance}`;
    this.hook.setRole(role, why);
  }

  status(): VrrpStatus {
    const groupOf = new Map(this.#cfg.groups.flatMap((g) => g.members.map((m) => [m, g.name] as const)));
    const d = this.#cfg.syncDaemon;
    return {
      fifo: this.#cfg.notifyFifo,
      instances: [...this.#instances.values()].map((e) => ({ ...e, group: groupOf.get(e.name) ?? null })),
      groups: [...this.#groups.values()].map((e) => ({ ...e })),
      syncDaemon: d && this.#role ? { interface: d.interface, instance: d.instance ?? null, syncId: d.syncId, role: this.#role } : null,
      counters: { ...this.counters },
    };
  }
}
