/**
 * The engine's sysctls under their IPVS names (net.ipv4.vs.*, the kernel's ip_vs_ctl.c table and
 * Documentation/networking/ipvs-sysctl.rst), with the kernel's validation of each value:
 *
 *   parseSysctlValue(name, value)   -> Partial<Sysctls>   one name; throws IpvsError EINVAL
 *   parseSysctls({name: value...})  -> Partial<Sysctls>   all or nothing: the first bad name or
 *                                                          value throws, naming the sysctl
 *   parseSysctlAssignment("n=v")    -> [name, text]        ulvsd --sysctl / ulvsadm --sysctl
 *   ipvsSysctls(s)                  -> {name: value}       what GET /v1/sysctl answers
 *   applySysctls(engine's, partial)                        checked whole, then in place
 *
 * Values: a number or its decimal text; sync_threshold is "T P" (two integers, blank- or
 * comma-separated) or [T, P]. Kernel rules followed:
 *   sync_threshold      proc_do_sync_threshold: T >= 0, P >= 0, and T < P unless P == 0
 *   sync_version        proc_do_sync_mode: 0 or 1
 *   sync_retries        proc_dointvec_minmax: 0..3
 *   sync_refresh_period, lblc(r)_expiration  proc_dointvec_jiffies: seconds, 0..2147483 (INT_MAX
 *                       jiffies at HZ 1000); negative refused (the kernel would take them)
 *   conn_reuse_mode     proc_dointvec: any int (bits 1 and 2 are defined; ulvs acts on bit 1)
 *   expire_nodest_conn, expire_quiescent_template, sloppy_tcp, sync_persist_mode: proc_dointvec,
 *                       used as booleans; ulvs takes 0 or 1 only
 *   secure_tcp, drop_entry, drop_packet   proc_do_defense_mode: 0..3 (1 and 2 automatic: the
 *                       engine writes 1 <-> 2 back as memory runs low and recovers, defense.ts)
 *   amemthresh, am_droprate   proc_dointvec: any int; ulvs refuses negative values (the kernel
 *                       would take them: amemthresh < 0 never counts as low, am_droprate < 0
 *                       drops every packet in mode 3)
 *   sync_qlen_max       proc_doulongvec_minmax without bounds: 0..ULONG_MAX, negative refused;
 *                       ulvs stops at 2^53 - 1 (far beyond any queue memory can hold)
 *   sync_sock_size      proc_dointvec: any int (used only when > 0)
 *   sync_ports          proc_do_sync_ports: >= 1 and a power of 2 (start_sync_thread clamps to 64)
 *   backup_only         proc_dointvec, used as a boolean; ulvs takes 0 or 1 only
 *   evict_embryonic     ulvs's own (no kernel counterpart), 0 or 1, default 1: a full table
 *                       evicts a half-open TCP entry for a new connection (conn/lifecycle.ts)
 *   syn_cookies         ulvs's own, 0, 1 (always) or 2 (automatic, while a flood overflows
 *                       the TUN; ulvsd's default with the kernel fast path, daemon/syn-cookies.ts
 *                       startMode): SYN cookies for NAT TCP services
 *                       (core/syn-proxy.ts, docs/syn-cookies.md)
 *   kernel_setup        ulvs's own, 0 or 1, default 1: the kernel fast path sets connections of
 *                       eligible services up itself (docs/kernel-setup.md)
 * Names of the kernel's table that ulvs does not carry (cache_bypass, nat_icmp_send, ...) are
 * refused as unknown. No I/O.
 */
import { IpvsError } from './errors.js';
import type { Sysctls } from './sysctl.js';

export type IpvsSysctlValue = number | string;

const INT_MAX = 2147483647;
const JIFFIES_MAX_S = 2147483; // INT_MAX / HZ(1000), seconds

const bad = (name: string, why: string) => new IpvsError('EINVAL', `sysctl ${name}: ${why}`);

/** an integer from a number or its decimal text */
function integer(name: string, v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d{1,10}\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n) || n < -INT_MAX - 1 || n > INT_MAX) throw bad(name, `wants an integer, not ${JSON.stringify(v)}`);
  return n;
}
function ranged(name: string, v: unknown, lo: number, hi: number, unit = ''): number {
  const n = integer(name, v);
  if (n < lo || n > hi) throw bad(name, `is ${lo}..${hi}${unit}, not ${n}`);
  return n;
}
/** proc_doulongvec_minmax: a non-negative integer (ulvs: up to 2^53 - 1) */
function ulong(name: string, v: unknown): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?\d{1,16}\s*$/.test(v) ? Number(v) : NaN;
  if (!Number.isInteger(n)) throw bad(name, `wants an integer, not ${JSON.stringify(v)}`);
  if (n < 0 || n > Number.MAX_SAFE_INTEGER) throw bad(name, `is 0..${Number.MAX_SAFE_INTEGER}, not ${n}`);
  return n;
}
function bool(name: string, v: unknown): boolean {
  const n = integer(name, v);
  if (n !== 0 && n !== 1) throw bad(name, `is 0 or 1, not ${n}`);
  return n === 1;
}
function threshold(name: string, v: unknown): Partial<Sysctls> {
  let parts: unknown[];
  if (Array.isArray(v)) parts = v;
  else if (typeof v === 'string') parts = v.trim().split(/[\s,]+/);
  else throw bad(name, `wants "T P" (threshold and period, e.g. "3 50"), not ${JSON.stringify(v)}`);
  if (parts.length !== 2) throw bad(name, `wants two integers "T P" (e.g. "3 50"), not ${JSON.stringify(v)}`);
  const t = integer(name, parts[0]);
  const p = integer(name, parts[1]);
  if (t < 0 || p < 0) throw bad(name, `threshold and period are >= 0, not "${t} ${p}"`);
  if (p !== 0 && t >= p) throw bad(name, `the threshold is below the period (unless the period is 0), not "${t} ${p}"`);
  return { syncThreshold: t, syncPeriod: p };
}

interface Entry {
  parse(name: string, v: unknown): Partial<Sysctls>;
  show(s: Sysctls): IpvsSysctlValue;
}
const flag = (key: 'expireNodestConn' | 'expireQuiescentTemplate' | 'sloppyTcp' | 'syncPersistMode' | 'backupOnly' | 'evictEmbryonic'): Entry => ({
  parse: (n, v) => ({ [key]: bool(n, v) }),
  show: (s) => (s[key] ? 1 : 0),
});
const seconds = (key: 'syncRefreshPeriod' | 'lblcExpiration' | 'lblcrExpiration'): Entry => ({
  parse: (n, v) => ({ [key]: ranged(n, v, 0, JIFFIES_MAX_S, ' seconds') }),
  show: (s) => s[key],
});

/** proc_do_defense_mode: 0 off, 1 and 2 automatic (2: on now), 3 always */
const defense = (key: 'dropEntry' | 'dropPacket' | 'secureTcp'): Entry => ({
  parse: (n, v) => ({ [key]: ranged(n, v, 0, 3) }),
  show: (s) => s[key],
});

/** IPVS name -> how it maps to Sysctls. In the kernel table's order. */
const TABLE: Record<string, Entry> = {
  amemthresh: { parse: (n, v) => ({ amemthresh: ranged(n, v, 0, INT_MAX, ' pages') }), show: (s) => s.amemthresh },
  am_droprate: { parse: (n, v) => ({ amDroprate: ranged(n, v, 0, INT_MAX) }), show: (s) => s.amDroprate },
  drop_entry: defense('dropEntry'),
  drop_packet: defense('dropPacket'),
  conn_reuse_mode: { parse: (n, v) => ({ connReuseMode: integer(n, v) }), show: (s) => s.connReuseMode },
  expire_nodest_conn: flag('expireNodestConn'),
  sloppy_tcp: flag('sloppyTcp'),
  expire_quiescent_template: flag('expireQuiescentTemplate'),
  sync_threshold: { parse: threshold, show: (s) => `${s.syncThreshold} ${s.syncPeriod}` },
  sync_refresh_period: seconds('syncRefreshPeriod'),
  sync_retries: { parse: (n, v) => ({ syncRetries: ranged(n, v, 0, 3) }), show: (s) => s.syncRetries },
  sync_version: { parse: (n, v) => ({ syncVersion: ranged(n, v, 0, 1) }), show: (s) => s.syncVersion },
  sync_persist_mode: flag('syncPersistMode'),
  sync_ports: {
    parse: (n, v) => {
      const p = integer(n, v);
      if (p < 1 || (p & (p - 1)) !== 0) throw bad(n, `is a power of 2 (1, 2, 4, ...), not ${p}`);
      return { syncPorts: p };
    },
    show: (s) => s.syncPorts,
  },
  sync_qlen_max: { parse: (n, v) => ({ syncQlenMax: ulong(n, v) }), show: (s) => s.syncQlenMax },
  sync_sock_size: { parse: (n, v) => ({ syncSockSize: integer(n, v) }), show: (s) => s.syncSockSize },
  secure_tcp: defense('secureTcp'),
  lblc_expiration: seconds('lblcExpiration'),
  lblcr_expiration: seconds('lblcrExpiration'),
  backup_only: flag('backupOnly'),
  // ulvs's own (no such sysctl in the kernel): core/sysctl.ts evictEmbryonic
  evict_embryonic: flag('evictEmbryonic'),
  // ulvs's own: core/sysctl.ts synCookies (2: automatic, daemon/syn-cookie-auto.ts)
  syn_cookies: { parse: (n, v) => ({ synCookies: ranged(n, v, 0, 2) }), show: (s) => s.synCookies },
  // ulvs's own: core/sysctl.ts kernelSetup (daemon/kernel-tables-follower.ts acts on it)
  kernel_setup: { parse: (n, v) => ({ kernelSetup: ranged(n, v, 0, 1) }), show: (s) => s.kernelSetup },
};

export const IPVS_SYSCTL_NAMES: readonly string[] = Object.keys(TABLE);

/** One sysctl's value; throws IpvsError EINVAL naming it. */
export function parseSysctlValue(name: string, value: unknown): Partial<Sysctls> {
  const e = Object.hasOwn(TABLE, name) ? TABLE[name]! : null;
  if (e === null) throw new IpvsError('EINVAL', `unknown sysctl ${JSON.stringify(name)} (ulvs has: ${IPVS_SYSCTL_NAMES.join(', ')})`);
  return e.parse(name, value);
}

/** Several; the first bad one throws and nothing is returned (all or nothing). */
export function parseSysctls(values: Record<string, unknown>): Partial<Sysctls> {
  let out: Partial<Sysctls> = {};
  for (const [k, v] of Object.entries(values)) out = { ...out, ...parseSysctlValue(k, v) };
  return out;
}

/** "name=value" (the net.ipv4.vs. prefix allowed) -> [name, value text]; checked by parseSysctlValue. */
export function parseSysctlAssignment(text: string): [string, string] {
  const m = /^\s*(?:net\.ipv4\.vs\.)?([a-z_]+)\s*=\s*(.*?)\s*$/.exec(text);
  if (!m) throw new IpvsError('EINVAL', `sysctl wants name=value (e.g. sync_refresh_period=10), not ${JSON.stringify(text)}`);
  parseSysctlValue(m[1]!, m[2]!);
  return [m[1]!, m[2]!];
}

/** The engine's values under the IPVS names (sync_threshold as "T P"). */
export function ipvsSysctls(s: Sysctls): Record<string, IpvsSysctlValue> {
  const out: Record<string, IpvsSysctlValue> = {};
  for (const [k, e] of Object.entries(TABLE)) out[k] = e.show(s);
  return out;
}

/** Whole-object check of the rules above: throws IpvsError EINVAL naming the first bad one. */
export function checkSysctls(s: Sysctls): void {
  for (const [k, e] of Object.entries(TABLE)) e.parse(k, e.show(s));
}

/**
 * Change an engine's sysctls at run time (a worker's setSysctls: the control plane validated
 * them; checked again whole, nothing changes if refused). In place: the packet path and the sync
 * master read the object (Director.sysctl) on each use, so the next packet sees the new values.
 */
export function applySysctls(target: Sysctls, p: Partial<Sysctls>): void {
  checkSysctls({ ...target, ...p });
  Object.assign(target, p);
}
