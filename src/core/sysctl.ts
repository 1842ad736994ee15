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
    ...overrides,
  };
}
