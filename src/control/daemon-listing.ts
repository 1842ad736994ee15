/**
 * The connection-sync daemons as the admin API reports them (GET /v1/daemon) and as
 * `ipvsadm -L --daemon` prints them (ipvsadm 1.31 print_daemon: one line per running daemon,
 * master first; maxlen, group, port and ttl follow syncid; ulvs always knows them).
 */
import { z } from 'zod';
import { tryParseIPv4 } from '../wire/addr.js';

export type SyncState = 'master' | 'backup';

/** One running daemon: its configuration with the effective sync_maxlen (UDP payload bytes) and
 *  the interface address (the master's source, the address whose messages the backup ignores). */
export interface SyncDaemonStatus extends SyncDaemonStart {
  addr: string;
}

export function formatDaemons(ds: readonly Pick<SyncDaemonStatus, 'state' | 'iface' | 'syncid' | 'maxlen' | 'group' | 'port' | 'ttl'>[]): string {
  const order = [...ds].sort((a, b) => (a.state === b.state ? 0 : a.state === 'master' ? -1 : 1));
  return order.map((d) => `${d.state} sync daemon (mcast=${d.iface}, syncid=${d.syncid}, maxlen=${d.maxlen}, group=${d.group}, port=${d.port}, ttl=${d.ttl})\n`).join('');
}

/** What the admin API offers for the daemons (daemon/sync-daemon.ts implements it). */
export interface AdminDaemons {
  status(): SyncDaemonStatus[];
  /** throws IpvsError: EEXIST, ENODEV, EADDRNOTAVAIL, EINVAL */
  start(cfg: SyncDaemonStart): Promise<void>;
  /** throws IpvsError ESRCH */
  stop(state: SyncState): Promise<void>;
}

/** POST /v1/daemon (ipvsadm --start-daemon): absent fields take the kernel's defaults. */
export interface SyncDaemonStart {
  state: SyncState;
  iface: string;
  syncid: number;
  /** 0: from the interface's MTU */
  maxlen: number;
  group: string;
  port: number;
  ttl: number;
}

export const DaemonBody = z
  .object({
    state: z.enum(['master', 'backup']),
    iface: z.string().min(1).max(15),
    syncid: z.number().int().min(0).max(255).default(0),
    maxlen: z.number().int().min(0).max(65535 - 28).default(0),
    group: z.string().refine((s) => tryParseIPv4(s) >= 0, { message: 'must be a dotted IPv4 address' }).default('224.0.0.81'),
    port: z.number().int().min(1).max(65535).default(8848),
    ttl: z.number().int().min(1).max(255).default(1),
  })
  .strict();
