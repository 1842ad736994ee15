/**
 * A data-path worker's answers to the sync daemon's calls (worker-protocol.ts Calls: syncStartMaster,
 * syncStopMaster, syncBackupRunning, syncReceive), over its engine's Director.sync.
 *
 * The worker's loop never returns to its event loop (it blocks in io_uring_enter or poll), so it
 * cannot own a Node socket: each finished datagram of the engine's master is copied and posted to
 * the main thread (FromWorker `sync`), whose socket sends it (daemon/sync-daemon.ts). A datagram
 * holds up to ~40 records, so this is one copy per ~40 announced connections, never one per packet.
 * `bypassing` runs a change that may put backup_only in force or end it (worker.ts).
 */
import type { Director } from '../../core/director.js';
import type { CallHandlers, FromWorker } from './worker-protocol.js';

type SyncCallNames = 'syncStartMaster' | 'syncStopMaster' | 'syncBackupRunning' | 'syncReceive';

/** `engine` gives the worker's Director (made after the handlers' object). */
export function syncCalls(engine: () => Director, send: (m: FromWorker) => void, bypassing: (change: () => void) => null): Pick<CallHandlers, SyncCallNames> {
  return {
    syncStartMaster: ([cfg]) => {
      engine().sync.startMaster(cfg, (bytes, length) => {
        send({ type: 'sync', datagram: bytes.slice(0, length) });
        return true;
      });
      return null;
    },
    syncStopMaster: () => {
      engine().sync.stopMaster();
      return null;
    },
    syncBackupRunning: ([running]) =>
      bypassing(() => {
        engine().sync.backupRunning = running;
      }),
    syncReceive: ([datagrams, ownSyncId], now) => {
      const d = engine();
      let taken = 0;
      for (const g of datagrams) {
        d.sync.receive(g, 0, g.length, ownSyncId, now);
        taken += d.sync.lastTaken;
      }
      return taken;
    },
  };
}
