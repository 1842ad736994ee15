/**
 * ulvsd following keepalived's VRRP (keepalived mode): the states of the configuration's
 * instances and sync groups read from keepalived's notify FIFO (notify-fifo.ts) into VrrpRoles,
 * whose sync-daemon role goes to a SyncRoleHook (a log line and a count until the connection
 * sync daemon implements it).
 *
 *   VrrpFollower.start(cfg, log)  null when the configuration has no notify FIFO (nothing to
 *                                 follow: a warning was given by the reader if it has instances);
 *                                 throws FifoError when the FIFO cannot be created or opened
 *   reload(cfg)                   a new configuration: a new FIFO path is opened before the old
 *                                 is closed (a failure throws and changes nothing); states of
 *                                 instances and groups that remain are kept
 *   status() / stop()
 */
import type { VrrpConfig } from '../control/keepalived/vrrp.js';
import type { DaemonLog } from './log.js';
import { NotifyFifoReader } from './notify-fifo.js';
import { LoggingSyncRoleHook, VrrpRoles, type SyncRoleHook, type VrrpStatus } from './vrrp-roles.js';

export class VrrpFollower {
  #reader: NotifyFifoReader;

  private constructor(
    readonly roles: VrrpRoles,
    reader: NotifyFifoReader,
    readonly hook: SyncRoleHook,
  ) {
    this.#reader = reader;
  }

  static start(cfg: VrrpConfig, log: DaemonLog, hook: SyncRoleHook = new LoggingSyncRoleHook(log)): VrrpFollower | null {
    if (cfg.notifyFifo === null) return null;
    const roles = new VrrpRoles(cfg, log, hook);
    const reader = new NotifyFifoReader(cfg.notifyFifo, (l) => roles.feed(l), log);
    reader.start();
    log.info(`following keepalived's VRRP states through ${cfg.notifyFifo}: ${cfg.instances.length} instance(s), ${cfg.groups.length} sync group(s)${cfg.syncDaemon ? `; sync daemon on ${cfg.syncDaemon.interface}, sync id ${cfg.syncDaemon.syncId}, ${cfg.syncDaemon.instance ? `role follows instance ${cfg.syncDaemon.instance}` : 'both roles'}` : ''}`, 'daemon');
    return new VrrpFollower(roles, reader, hook);
  }

  reload(cfg: VrrpConfig, log: DaemonLog): void {
    if (cfg.notifyFifo !== null && cfg.notifyFifo !== this.#reader.path) {
      const next = new NotifyFifoReader(cfg.notifyFifo, (l) => this.roles.feed(l), log);
      next.start(); // throws: nothing changed
      this.#reader.stop();
      this.#reader = next;
      log.info(`notify FIFO is now ${cfg.notifyFifo}`, 'daemon');
    }
    this.roles.reconfigure(cfg);
  }

  status(): VrrpStatus & { roleChangesByRole?: Record<string, number> } {
    const s = this.roles.status();
    const changes = (this.hook as { changes?: Record<string, number> }).changes; // LoggingSyncRoleHook, SyncRoleDriver
    return changes ? { ...s, roleChangesByRole: { ...changes } } : s;
  }

  stop(): void {
    this.#reader.stop();
  }
}
