/**
 * The sysctls of /proc/sys/net/ipv4/vs that the engine honours (ipvs-spec §9), with IPVS's
 * defaults. One object per engine, read on the packet path, written by the control plane.
 */

export interface Sysctls {
  expireNodestConn: boolean;
  expireQuiescentTemplate: boolean;
  // Flood defences (core/defense.ts, update_defense_level; each mode 0 off, 1 automatic and
  // off now, 2 automatic and on now (the engine writes 1 <-> 2 back), 3 always on):
  /** secure_tcp: TCP moves by tcp_states_dos while on */
  secureTcp: number;
  /** drop_entry: every second, drop entries from a random 1/32 of the table while on */
  dropEntry: number;
  /** drop_packet: drop one of every `rate` packets that would open a connection while on */
  dropPacket: number;
  /** amemthresh, pages (4096 bytes): memory counts as low below this (defense.ts says what
   *  ulvs measures: MemAvailable and the connection table's free entries) */
  amemthresh: number;
  /** am_droprate: drop_packet's rate in mode 3 (one of this many; 0 drops none) */
  amDroprate: number;
  /** schedule TCP connections on any segment, not only SYN */
  sloppyTcp: boolean;
  /** conn_reuse_mode: 0 off, bit 1 reschedule on SYN to TIME_WAIT/CLOSE conns */
  connReuseMode: number;
  /** lblc / lblcr entry expiration, seconds */
  lblcExpiration: number;
  lblcrExpiration: number;
  // Connection synchronisation (core/sync; net.ipv4.vs.sync_*, ha-scaleout.md §1.10):
  /** sync_version: version of the messages a master sends, 0 or 1 */
  syncVersion: number;
  /** sync_threshold "T P": a connection is announced at its T-th inbound packet and then every
   *  P packets (P 0: once, or by the refresh rule); 0 <= T < P when P > 0 */
  syncThreshold: number;
  syncPeriod: number;
  /** sync_refresh_period, seconds (0: off): re-announce once the expiry moved this much */
  syncRefreshPeriod: number;
  /** sync_retries, 0..3: extra announcements R/8 apart when the expiry did not move */
  syncRetries: number;
  /** sync_persist_mode: only templates are announced for connections they control */
  syncPersistMode: boolean;
  // The sync daemon's (daemon/sync-daemon.ts reads them from the main thread's copy; the engines
  // carry them so that one object holds every net.ipv4.vs value):
  /** sync_qlen_max: datagrams the master may have waiting to be sent; more are dropped and
   *  counted (sb_queue_tail). The kernel's default is nr_free_buffer_pages() / 32, computed once
   *  per namespace; ulvsd computes it at start from /proc/meminfo (daemon/sync-defaults.ts);
   *  this constant is only the engine's own default, for tests and tools */
  syncQlenMax: number;
  /** sync_sock_size, bytes: SO_SNDBUF of the master's sockets, SO_RCVBUF of the backup's, when
   *  > 0 (the kernel then doubles it, as setsockopt does); 0 or less: the system's default */
  syncSockSize: number;
  /** sync_ports: sockets (the kernel: threads) per daemon, on port, port+1, ...; a power of 2,
   *  read when the first daemon starts (start_sync_thread), clamped to 1..64 */
  syncPorts: number;
  /** backup_only: while the backup daemon runs, virtual services are not served: requests pass
   *  to the host stack unchanged (ip_vs_in_hook, ip_vs_forward_icmp: sysctl_backup_only) */
  backupOnly: boolean;
  /** evict_embryonic (ulvs's own, not the kernel's): a full connection table makes room for a
   *  new connection by removing the half-open TCP entry queued soonest (conn/lifecycle.ts); the
   *  kernel's nearest rule is drop_entry's random drops under memory pressure */
  evictEmbryonic: boolean;
  /** syn_cookies (ulvs's own): 1, NAT TCP services' SYNs are answered by the kernel fast path
   *  with cookies and the engine opens a connection only on a checked ACK (syn-proxy.ts,
   *  docs/syn-cookies.md); 2 the same while ulvsd's watch sees a flood (daemon/syn-cookie-auto.ts:
   *  the engine honours checked ACKs whenever it is not 0); 0 off. 0 here: ulvsd starts its
   *  engines with 2 when the kernel fast path is installed (daemon/syn-cookies.ts startMode) */
  synCookies: number;
  /** kernel_setup (ulvs's own): 1, the kernel fast path schedules the SYNs of eligible services
   *  itself from tables ulvsd publishes (docs/kernel-setup.md; datapath/tun/kernel-tables.ts);
   *  0 every SYN goes through the engine. Only matters when the fast path is installed. The
   *  engine does not read it: ulvsd's table publisher does */
  kernelSetup: number;
}

export function defaultSysctls(overrides?: Partial<Sysctls>): Sysctls {
  return {
    expireNodestConn: false,
    expireQuiescentTemplate: false,
    secureTcp: 0,
    dropEntry: 0,
    dropPacket: 0,
    amemthresh: 1024,
    amDroprate: 10,
    sloppyTcp: false,
    connReuseMode: 1,
    lblcExpiration: 86400,
    lblcrExpiration: 86400,
    syncVersion: 1,
    syncThreshold: 3,
    syncPeriod: 50,
    syncRefreshPeriod: 0,
    syncRetries: 0,
    syncPersistMode: false,
    syncQlenMax: 4096,
    syncSockSize: 0,
    syncPorts: 1,
    backupOnly: false,
    evictEmbryonic: true,
    synCookies: 0,
    kernelSetup: 0, // opt-in for now (docs/kernel-setup.md "Still open")
    ...overrides,
  };
}
