/**
 * The sysctls of /proc/sys/net/ipv4/vs that the engine honours (ipvs-spec §9), with IPVS's
 * defaults. One object per engine, read on the packet path, written by the control plane.
 */

export interface Sysctls {
  expireNodestConn: boolean;
  expireQuiescentTemplate: boolean;
  /** use the hardened TCP state table (secure_tcp = 3) */
  secureTcp: boolean;
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
}

export function defaultSysctls(overrides?: Partial<Sysctls>): Sysctls {
  return {
    expireNodestConn: false,
    expireQuiescentTemplate: false,
    secureTcp: false,
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
    ...overrides,
  };
}
