/**
 * The connection-sync daemon of ulvsd (the kernel's sync threads, ip_vs_sync.c start_sync_thread):
 * the sockets and the roles; the protocol and the table work are in the engines
 * (core/sync/, one per data-path worker).
 *
 *   master   every worker's engine announces its connections; the worker posts each finished
 *            datagram to the main thread (PoolEvents.syncDatagram; why: worker.ts), which sends it
 *            from a UDP socket (sync-socket.ts: PMTU discovery off, SO_SNDBUF sync_sock_size):
 *            bound to the interface's first IPv4 address (so that is the source), multicast out
 *            of that address's interface, TTL --mcast-ttl (1), multicast loop off, to group:port
 *            (224.0.0.81:8848). At most sync_qlen_max datagrams wait per socket; more are dropped
 *            and counted (tx_dropped_queue; the kernel's sb_queue_tail).
 *   backup   a socket bound to group:port (address reuse on, SO_BINDTODEVICE the interface,
 *            SO_RCVBUF sync_sock_size) and joined to the group on the interface's address; each
 *            datagram (cut to the backup's sync_maxlen, as the kernel's read buffer cuts it) is
 *            split by worker (sync-router.ts, the TUN's steering) and each part applied by its
 *            worker's engine. Datagrams from one of this host's own addresses on the interface
 *            are ignored (counted `own`).
 *   sync_ports N (a power of 2, clamped to 1..64, read when the first role starts while none
 *            runs, kept while one does: start_sync_thread's threads_mask): each role has N
 *            sockets, on port, port+1, ... port+N-1, as the kernel's N threads. The backup reads
 *            all N; the master sends worker w's datagrams from socket w mod N, so that one
 *            connection's records always leave from one socket in order (the kernel maps a
 *            connection to a thread by its address for the same reason).
 *
 *   start(cfg)      EEXIST when that role runs; ENODEV for an unknown interface ("Unknown mcast
 *                   interface"); EADDRNOTAVAIL when it has no IPv4 address; EINVAL for a group
 *                   that is not IPv4 multicast, or ports past 65535. A refused start leaves
 *                   nothing running.
 *   stop(state)     ESRCH when that role does not run. The master's partial datagrams are dropped.
 *   status()        what `ulvsadm -L --daemon` prints (master first), with the counters
 *   counters()      sync_daemon_* counters: datagrams/bytes sent and received, dropped by reason
 *
 * Both roles may run at once (the kernel's "master & backup support at a time").
 */
import { readFileSync } from 'node:fs';
import { IpvsError } from '../core/errors.js';
import { formatIPv4, tryParseIPv4 } from '../wire/addr.js';
import { syncMaxlen } from '../wire/ipvs-sync/maxlen.js';
import { SYNC_REASON_NAMES, SyncReason } from '../wire/ipvs-sync/reasons.js';
import type { SyncDaemonStart, SyncDaemonStatus, SyncState } from '../control/daemon-listing.js';
import { SyncRouter, type WorkerOf } from './sync-router.js';
import type { Rules } from '../control/rules.js';
import { hostAddresses } from '../datapath/tun/routing.js';
import { queueOf, steeringSpec, type SteeringSpec } from '../datapath/tun/steering.js';
import type { WorkerPool } from './worker-pool.js';
import { openSyncSocket, type SyncSocket } from './sync-socket.js';
import type { Sysctls } from '../core/sysctl.js';

export type { SyncDaemonStatus, SyncState };

/** A daemon's configuration: what --start-daemon gives (maxlen 0: from the interface's MTU, maxlen.ts). */
export type SyncDaemonConfig = SyncDaemonStart;

/** What the daemon needs from the rest of ulvsd. */
export interface SyncDaemonDeps {
  workers: number;
  /** the worker of a connection now (steering.ts queueOf over the rules in force) */
  workerOf: WorkerOf;
  startMasters(cfg: { syncid: number; maxlen: number }): Promise<void>;
  stopMasters(): Promise<void>;
  /** apply datagrams in worker i; resolves with the records it took */
  receive(i: number, datagrams: Uint8Array[], syncid: number): Promise<number>;
  /** the IPv4 addresses of this namespace with their interfaces (routing.ts hostAddresses) */
  addresses(): { dev: string; addr: number }[];
  /** the sysctls in force (read at each start, and sync_qlen_max at each datagram) */
  sysctl(): Pick<Sysctls, 'syncQlenMax' | 'syncSockSize' | 'syncPorts'>;
  /** the backup role started or stopped (the engines' backup_only follows it) */
  backupRunning?(running: boolean): Promise<void>;
  warn(msg: string): void;
}

/** the most sockets per role (IPVS_SYNC_PORTS_MAX, 1 << 6) */
export const SYNC_PORTS_MAX = 64;

interface Master {
  status: SyncDaemonStatus;
  socks: SyncSocket[];
  /** datagrams handed to each socket and not yet sent */
  inFlight: number[];
}

interface Backup {
  status: SyncDaemonStatus;
  socks: SyncSocket[];
  router: SyncRouter;
  /** the interface's addresses (uint32) */
  own: Set<number>;
}

const ifMtu = (iface: string): number => {
  try {
    return Number(readFileSync(`/sys/class/net/${iface}/mtu`, 'utf8').trim()) || 1500;
  } catch {
    return 1500;
  }
};

export class SyncDaemon {
  readonly #d: SyncDaemonDeps;
  #master: Master | null = null;
  #backup: Backup | null = null;
  /** routers of backups that ran before (their counters stay counted) */
  readonly #pastRouters: Record<string, number>[] = [];
  /** a role change in progress: starts and stops run one at a time */
  #queue: Promise<unknown> = Promise.resolve();
  readonly #c = { tx_datagrams: 0, tx_bytes: 0, tx_dropped_queue: 0, tx_errors: 0, rx_datagrams: 0, rx_bytes: 0, rx_own: 0, rx_truncated: 0, rx_apply_errors: 0, rx_records_applied: 0, starts: 0, stops: 0 };
  #lastWarn = 0;
  /** sockets per role while any role runs (sync_ports when the first started) */
  #ports = 0;

  constructor(deps: SyncDaemonDeps) {
    this.#d = deps;
  }

  #serial<T>(f: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(f);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Start a role (EEXIST if it runs; see the file header). */
  start(cfg: SyncDaemonConfig): Promise<void> {
    return this.#serial(() => (cfg.state === 'master' ? this.#startMaster(cfg) : this.#startBackup(cfg)));
  }

  stop(state: SyncState): Promise<void> {
    return this.#serial(async () => {
      if (state === 'master') {
        const m = this.#master;
        if (!m) throw new IpvsError('ESRCH', 'sync master daemon is not running');
        this.#master = null;
        await this.#d.stopMasters();
        closeAll(m.socks);
      } else {
        const b = this.#backup;
        if (!b) throw new IpvsError('ESRCH', 'sync backup daemon is not running');
        this.#backup = null;
        this.#pastRouters.push(b.router.counters());
        closeAll(b.socks);
        await this.#d.backupRunning?.(false);
      }
      this.#c.stops++;
    });
  }

  /** Stop whatever runs (ulvsd stopping); never throws. */
  close(): void {
    closeAll(this.#master?.socks ?? []);
    closeAll(this.#backup?.socks ?? []);
    this.#master = this.#backup = null;
  }

  /** Sockets per role for a start: sync_ports, clamped to 1..64, when no role runs; else the
   *  running role's count (start_sync_thread). EINVAL when port + count - 1 passes 65535. */
  #portCount(cfg: SyncDaemonConfig): number {
    const n = this.#master || this.#backup ? this.#ports : Math.min(Math.max(this.#d.sysctl().syncPorts, 1), SYNC_PORTS_MAX);
    if (cfg.port + n - 1 > 65535) throw new IpvsError('EINVAL', `mcast port ${cfg.port} with sync_ports ${n}: ports ${cfg.port}..${cfg.port + n - 1} pass 65535`);
    return n;
  }

  /** The interface's addresses; throws ENODEV / EADDRNOTAVAIL / EINVAL as the kernel. */
  #check(cfg: SyncDaemonConfig): { addr: number; own: Set<number> } {
    const g = tryParseIPv4(cfg.group);
    if (g < 0 || (g >>> 28) !== 0xe) throw new IpvsError('EINVAL', `mcast group ${cfg.group} is not an IPv4 multicast address`);
    if (!Number.isInteger(cfg.syncid) || cfg.syncid < 0 || cfg.syncid > 255) throw new IpvsError('EINVAL', `syncid ${cfg.syncid} not in 0..255`);
    if (!Number.isInteger(cfg.port) || cfg.port < 1 || cfg.port > 65535) throw new IpvsError('EINVAL', `mcast port ${cfg.port} not in 1..65535`);
    if (!Number.isInteger(cfg.ttl) || cfg.ttl < 1 || cfg.ttl > 255) throw new IpvsError('EINVAL', `mcast ttl ${cfg.ttl} not in 1..255`);
    if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(cfg.iface)) throw new IpvsError('ENODEV', `Unknown mcast interface: ${cfg.iface}`);
    let known = false;
    try {
      readFileSync(`/sys/class/net/${cfg.iface}/ifindex`);
      known = true;
    } catch {
      /* no such interface */
    }
    if (!known) throw new IpvsError('ENODEV', `Unknown mcast interface: ${cfg.iface}`);
    const mine = this.#d.addresses().filter((a) => a.dev === cfg.iface);
    if (mine.length === 0) throw new IpvsError('EADDRNOTAVAIL', `${cfg.iface} has no IPv4 address: you probably need to specify IP address on multicast interface`);
    return { addr: mine[0]!.addr, own: new Set(mine.map((a) => a.addr >>> 0)) };
  }

  #status(cfg: SyncDaemonConfig, addr: number, maxlen: number): SyncDaemonStatus {
    return { state: cfg.state, iface: cfg.iface, syncid: cfg.syncid, maxlen, group: cfg.group, port: cfg.port, ttl: cfg.ttl, addr: formatIPv4(addr) };
  }

  async #startMaster(cfg: SyncDaemonConfig): Promise<void> {
    if (this.#master) throw new IpvsError('EEXIST', 'sync master daemon is already running');
    const { addr } = this.#check(cfg);
    const n = this.#portCount(cfg);
    const maxlen = syncMaxlen('master', cfg.maxlen, ifMtu(cfg.iface));
    const sockSize = this.#d.sysctl().syncSockSize;
    const socks: SyncSocket[] = [];
    try {
      for (let id = 0; id < n; id++) {
        const s = await openSyncSocket({ role: 'master', iface: cfg.iface, addr: formatIPv4(addr), port: 0, sockSize });
        socks.push(s);
        s.sock.on('error', (e) => this.#d.warn(`sync master socket: ${e.message}`));
        s.sock.setMulticastInterface(formatIPv4(addr));
        s.sock.setMulticastTTL(cfg.ttl);
        s.sock.setMulticastLoopback(false);
      }
    } catch (e) {
      closeAll(socks);
      throw e instanceof IpvsError ? e : new IpvsError('EINVAL', `sync master socket on ${formatIPv4(addr)}: ${(e as Error).message}`);
    }
    this.#master = { status: this.#status(cfg, addr, maxlen), socks, inFlight: socks.map(() => 0) };
    this.#ports = n;
    try {
      await this.#d.startMasters({ syncid: cfg.syncid, maxlen });
    } catch (e) {
      this.#master = null;
      closeAll(socks);
      await this.#d.stopMasters().catch(() => undefined); // the workers that did start
      throw e;
    }
    this.#c.starts++;
  }

  /** A finished datagram of worker `worker`'s master: send it from socket worker mod
   *  sync_ports, or drop it (counted) when sync_qlen_max datagrams wait there already. */
  send(datagram: Uint8Array, worker = 0): void {
    const m = this.#master;
    if (!m) return; // stopped meanwhile
    const id = worker % m.socks.length;
    if (m.inFlight[id]! >= this.#d.sysctl().syncQlenMax) {
      this.#c.tx_dropped_queue++;
      return;
    }
    m.inFlight[id]!++;
    m.socks[id]!.sock.send(datagram, m.status.port + id, m.status.group, (e) => {
      m.inFlight[id]!--;
      if (e) this.#c.tx_errors++;
      else {
        this.#c.tx_datagrams++;
        this.#c.tx_bytes += datagram.length;
      }
    });
  }

  /** datagrams waiting in the master's sockets (0 when it does not run) */
  get queued(): number {
    return this.#master?.inFlight.reduce((a, b) => a + b, 0) ?? 0;
  }

  async #startBackup(cfg: SyncDaemonConfig): Promise<void> {
    if (this.#backup) throw new IpvsError('EEXIST', 'sync backup daemon is already running');
    const { addr, own } = this.#check(cfg);
    const n = this.#portCount(cfg);
    const maxlen = syncMaxlen('backup', cfg.maxlen, ifMtu(cfg.iface));
    const sockSize = this.#d.sysctl().syncSockSize;
    const socks: SyncSocket[] = [];
    try {
      for (let id = 0; id < n; id++) {
        const s = await openSyncSocket({ role: 'backup', iface: cfg.iface, addr: cfg.group, port: cfg.port + id, sockSize });
        socks.push(s);
        s.sock.addMembership(cfg.group, formatIPv4(addr));
      }
    } catch (e) {
      closeAll(socks);
      throw e instanceof IpvsError ? e : new IpvsError('EINVAL', `sync backup socket ${cfg.group}:${cfg.port} on ${cfg.iface}: ${(e as Error).message}`);
    }
    const b: Backup = { status: this.#status(cfg, addr, maxlen), socks, router: new SyncRouter(this.#d.workers, this.#d.workerOf), own };
    for (const s of socks) {
      s.sock.on('error', (e) => this.#d.warn(`sync backup socket: ${e.message}`));
      s.sock.on('message', (msg, rinfo) => this.#received(b, msg, rinfo.address));
    }
    this.#backup = b;
    this.#ports = n;
    this.#c.starts++;
    await this.#d.backupRunning?.(true).catch((e: Error) => this.#d.warn(`sync backup: the engines were not told the backup runs (backup_only): ${e.message}`));
  }

  #received(b: Backup, msg: Buffer, from: string): void {
    const c = this.#c;
    c.rx_datagrams++;
    c.rx_bytes += msg.length;
    if (b.own.has(tryParseIPv4(from) >>> 0)) {
      c.rx_own++;
      return;
    }
    let len = msg.length;
    if (len > b.status.maxlen) {
      c.rx_truncated++; // the kernel's read buffer cuts it; the size check then drops it
      len = b.status.maxlen;
    }
    const parts = b.router.route(msg, len, b.status.syncid);
    if (b.router.last !== SyncReason.Ok) {
      const now = Date.now();
      if (now - this.#lastWarn >= 10_000) {
        this.#lastWarn = now; // at most one line per 10 s: a hostile sender cannot flood the log
        this.#d.warn(`sync backup: datagram from ${from} dropped (${SYNC_REASON_NAMES[b.router.last]}); counted in sync_daemon_rx_*`);
      }
    }
    parts.forEach((p, i) => {
      if (p === null) return;
      this.#d.receive(i, [p], b.status.syncid).then(
        (n) => (c.rx_records_applied += n),
        (e: Error) => {
          c.rx_apply_errors++;
          this.#d.warn(`sync backup: worker ${i} refused records: ${e.message}`);
        },
      );
    });
  }

  /** the descriptors of each role's sockets, port order (diagnostics and tests: getsockopt) */
  fds(): { master: number[]; backup: number[] } {
    return { master: this.#master?.socks.map((s) => s.fd) ?? [], backup: this.#backup?.socks.map((s) => s.fd) ?? [] };
  }

  status(): SyncDaemonStatus[] {
    return [this.#master?.status, this.#backup?.status].filter((s): s is SyncDaemonStatus => s !== undefined);
  }

  /** sync_daemon_<what>: the sockets' counters and the backup's decode verdicts (rx_<reason>). */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.#c)) out[`sync_daemon_${k}`] = v;
    const routers = [...this.#pastRouters, ...(this.#backup ? [this.#backup.router.counters()] : [])];
    for (const r of routers) for (const [k, v] of Object.entries(r)) out[`sync_daemon_rx_${k}`] = (out[`sync_daemon_rx_${k}`] ?? 0) + v;
    return out;
  }
}

function closeAll(socks: SyncSocket[]): void {
  for (const s of socks) s.sock.close();
}

/** The SyncDaemon of a running ulvsd: its workers' engines, the steering of the rules in force
 *  (the spec is recomputed only when the rules object changes) and this host's addresses;
 *  `kernelSetup` hears of the backup role first when it starts and last when it stops (the
 *  kernel's own connection set-up is off while a backup runs: kernel-tables-follower.ts). */
export function syncDaemonFor(pool: WorkerPool, rules: () => Rules, warn: (msg: string) => void, kernelSetup?: (backupRunning: boolean) => void): SyncDaemon {
  let seen: Rules | null = null;
  let spec: SteeringSpec | null = null;
  const n = pool.size;
  const each = async (f: (i: number) => Promise<unknown>) => {
    const r = await Promise.allSettled(Array.from({ length: n }, (_, i) => f(i)));
    const bad = r.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (bad) throw bad.reason;
  };
  return new SyncDaemon({
    workers: n,
    workerOf: (proto, caddr, cport, vaddr, vport, fwmark) => {
      const r = rules();
      if (r !== seen) {
        seen = r;
        spec = steeringSpec(r.services, r.dests);
      }
      return queueOf(spec!, n, proto, caddr, cport, vaddr, vport, fwmark);
    },
    startMasters: (cfg) => each((i) => pool.call(i, 'syncStartMaster', cfg)),
    stopMasters: () => each((i) => pool.call(i, 'syncStopMaster')),
    receive: (i, datagrams, syncid) => pool.call(i, 'syncReceive', datagrams, syncid),
    addresses: hostAddresses,
    sysctl: () => pool.sysctlNow,
    backupRunning: async (running) => {
      if (running) kernelSetup?.(true); // no SYN set up in the kernel once the engines serve nothing
      await pool.all('syncBackupRunning', running);
      if (!running) kernelSetup?.(false);
    },
    warn,
  });
}
