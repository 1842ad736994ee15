/**
 * ipvsadm 1.31's listings (ipvs-spec §6.7) from a director snapshot: the default layout,
 * --stats, --rate, --thresholds, --persistent-conn, --tun-info (precedence in that order),
 * --exact, --nosort, one service without the banner, names instead of numbers without -n;
 * the connection listing (-c) and --timeout.
 *
 * Sorting as ipvsadm: services by protocol, then address compared as a signed 32-bit
 * difference (ipvsadm's quirk), then port; real servers by address then port.
 */
import type { ConnInfo, DestSnapshot, DirectorSnapshot, ServiceSnapshot, StatsSnapshot, Timeouts } from '../core/director.js';
import { Fwd, FWD_NAMES, FWMARK_PROTO, isFwmarkKey, schedFlagNames, SvcFlag, TunType } from '../core/service.js';
import { formatIPv4 } from '../wire/addr.js';

const pad = (s: string, w: number) => (s.length >= w ? s : s + ' '.repeat(w - s.length));
const lpad = (s: string, w: number) => (s.length >= w ? s : ' '.repeat(w - s.length) + s);
const diff32 = (a: number, b: number) => ((a - b) | 0);

/** ipvsadm's print_largenum: abbreviated K/M/G/T, or exact with --exact. */
export function largenum(n: number, exact = false): string {
  if (exact) {
    const s = String(n);
    return s.length <= 8 ? lpad(s, 9) : ` ${s}`;
  }
  if (n < 1e8) return lpad(String(n), 9);
  if (n < 1e9) return `${lpad(String(Math.floor(n / 1e3)), 8)}K`;
  if (n < 1e11) return `${lpad(String(Math.floor(n / 1e6)), 8)}M`;
  if (n < 1e14) return `${lpad(String(Math.floor(n / 1e9)), 8)}G`;
  return `${lpad(String(Math.floor(n / 1e12)), 8)}T`;
}

/** How addresses and ports are printed: numbers (-n) or names. */
export interface Namer {
  addr(a: number): string;
  port(p: number, proto: number): string;
}
export const NUMERIC: Namer = { addr: formatIPv4, port: (p) => String(p) };

export type ListFormat = 'default' | 'stats' | 'rate' | 'thresholds' | 'persistent-conn' | 'tun-info';

export interface ListOptions {
  format?: ListFormat;
  exact?: boolean;
  nosort?: boolean;
  /** false for `-L -t service` (ipvsadm prints no banner for a single service) */
  banner?: boolean;
  names?: Namer;
}

/** Protocol names as ipvsadm prints them; 0 is a fwmark template's IPPROTO_IP (`IP`). */
const protoName = (p: number) => (p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 132 ? 'SCTP' : p === FWMARK_PROTO ? 'IP' : String(p));

/** ipvsadm's order: address services (fwmark 0) first, by protocol, address, port; then fwmark
 *  services by mark. */
export function sortServices(s: readonly ServiceSnapshot[]): ServiceSnapshot[] {
  const mark = (x: ServiceSnapshot) => (isFwmarkKey(x) ? x.addr >>> 0 : 0);
  return [...s].sort((a, b) => mark(a) - mark(b) || a.proto - b.proto || diff32(a.addr, b.addr) || a.port - b.port);
}

/** A service's label: `TCP  203.0.113.10:80`, or `FWM  1` for a fwmark service. */
function serviceLabel(s: ServiceSnapshot, n: Namer): string {
  if (isFwmarkKey(s)) return `FWM  ${s.addr >>> 0}`;
  return `${pad(protoName(s.proto), 4)} ${n.addr(s.addr)}:${n.port(s.port, s.proto)}`;
}
function sortDests(s: ServiceSnapshot): DestSnapshot[] {
  return [...s.dests].sort((a, b) => diff32(a.addr, b.addr) || a.port - b.port);
}

function serviceLine(label: string, s: ServiceSnapshot): string {
  let line = `${label} ${s.scheduler}`;
  const flagNames = schedFlagNames(s.scheduler, s.flags);
  if (flagNames.length) line += ` (${flagNames.join(',')})`;
  if (s.flags & SvcFlag.PERSISTENT) {
    line += ` persistent ${s.timeout}`;
    if (s.netmask !== 0xffffffff) line += ` mask ${formatIPv4(s.netmask)}`;
  }
  if (s.flags & SvcFlag.ONEPACKET) line += ' ops';
  return line;
}

export function formatListing(d: DirectorSnapshot, o: ListOptions = {}): string {
  const fmt = o.format ?? 'default';
  const n = o.names ?? NUMERIC;
  const out: string[] = [];
  if (o.banner !== false) out.push(`IP Virtual Server version 1.2.1 (size=${d.buckets})`);
  switch (fmt) {
    case 'default':
      out.push('Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn');
      break;
    case 'stats':
    case 'rate': {
      const cols = fmt === 'stats' ? ['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'] : ['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'];
      out.push(`${pad('Prot LocalAddress:Port', 33)}${cols.map((c) => ` ${lpad(c, 8)}`).join('')}`, '  -> RemoteAddress:Port');
      break;
    }
    case 'thresholds':
      out.push(`${pad('Prot LocalAddress:Port', 33)} ${pad('Uthreshold', 10)} ${pad('Lthreshold', 10)} ${pad('ActiveConn', 10)} ${pad('InActConn', 10)}`, '  -> RemoteAddress:Port');
      break;
    case 'persistent-conn':
      out.push(`${pad('Prot LocalAddress:Port', 33)} ${pad('Weight', 9)} ${pad('PersistConn', 11)} ${pad('ActiveConn', 10)} ${pad('InActConn', 10)}`, '  -> RemoteAddress:Port');
      break;
    case 'tun-info':
      out.push('Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn');
      break;
  }
  const services = o.nosort ? d.services : sortServices(d.services);
  for (const s of services) {
    const label = serviceLabel(s, n).slice(0, 33);
    if (fmt === 'stats' || fmt === 'rate') out.push(pad(label, 33) + numbers(s, fmt, false, !!o.exact));
    else out.push(serviceLine(label, s));
    for (const x of o.nosort ? s.dests : sortDests(s)) {
      const a = `${n.addr(x.addr)}:${n.port(x.port, s.proto)}`.slice(0, 28);
      switch (fmt) {
        case 'default':
          out.push(`  -> ${pad(a, 28)} ${pad(FWD_NAMES[x.fwd]!, 7)} ${pad(String(x.weight), 6)} ${pad(String(x.activeConns), 10)} ${pad(String(x.inactConns), 10)}`);
          break;
        case 'stats':
        case 'rate':
          out.push(`  -> ${pad(a, 28)}${numbers(x, fmt, true, !!o.exact)}`);
          break;
        case 'thresholds':
          out.push(`  -> ${pad(a, 28)} ${pad(String(x.uThreshold), 10)} ${pad(String(x.lThreshold), 10)} ${pad(String(x.activeConns), 10)} ${pad(String(x.inactConns), 10)}`);
          break;
        case 'persistent-conn':
          out.push(`  -> ${pad(a, 28)} ${pad(String(x.weight), 9)} ${pad(String(x.persistConns), 11)} ${pad(String(x.activeConns), 10)} ${pad(String(x.inactConns), 10)}`);
          break;
        case 'tun-info':
          out.push(`  -> ${pad(a, 28)} ${pad(FWD_NAMES[x.fwd]!, 7)} ${pad(tunnelInfo(x), 13)} ${pad(String(x.weight), 6)} ${pad(String(x.activeConns), 10)} ${pad(String(x.inactConns), 10)}`);
          break;
      }
    }
  }
  return `${out.join('\n')}\n`;
}

function numbers(st: StatsSnapshot, fmt: 'stats' | 'rate', dest: boolean, exact: boolean): string {
  if (fmt === 'stats') return st.counters.map((x) => largenum(x, exact)).join('');
  // --rate: a real server's cps/pps columns are printed in full ("%8llu"), its bps through largenum
  const r = st.rates;
  if (dest) return `${r.slice(0, 3).map((x) => ` ${lpad(String(x), 8)}`).join('')}${largenum(r[3]!, exact)}${largenum(r[4]!, exact)}`;
  return r.map((x) => largenum(x, exact)).join('');
}

/** The daemon's SIGUSR1 dump and the demo: banner + one layout. */
export function listServices(d: DirectorSnapshot, fmt: ListFormat = 'default'): string {
  return formatListing(d, { format: fmt });
}

/** ipvsadm -L -c (connection entries read from /proc/net/ip_vs_conn). */
export function formatConnections(conns: readonly ConnInfo[], names: Namer = NUMERIC): string {
  const out = ['IPVS connection entries', `pro expire ${pad('state', 11)} ${pad('source', 18)} ${pad('virtual', 18)} destination`];
  for (const c of conns) {
    const secs = Math.floor(c.expiresInMs / 1000);
    const expire = `${String(Math.floor(secs / 60)).padStart(2, '0')}:${String(secs % 60).padStart(2, '0')}`;
    const ep = (a: number, p: number) => `${names.addr(a)}:${names.port(p, c.proto)}`;
    out.push(`${pad(protoName(c.proto), 3)} ${pad(expire, 6)} ${pad(c.state, 11)} ${pad(ep(c.caddr, c.cport), 18)} ${pad(ep(c.vaddr, c.vport), 18)} ${ep(c.daddr, c.dport)}`);
  }
  return `${out.join('\n')}\n`;
}

export function formatTimeouts(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpfin} ${t.udp}\n`;
}

/** ipvsadm's TunnelInfo column: `ipip`, `gue:PORT:-c|+c|r+c`, `gre:-c|+c`, or `n/a` for a
 *  server that is not tunnelled. */
export function tunnelInfo(d: Pick<DestSnapshot, 'fwd' | 'tunType' | 'tunPort' | 'tunFlags'>): string {
  if (d.fwd !== Fwd.TUNNEL) return 'n/a';
  const csum = ['-c', '+c', 'r+c'][d.tunFlags] ?? '-c';
  if (d.tunType === TunType.GUE) return `gue:${d.tunPort}:${csum}`;
  if (d.tunType === TunType.GRE) return `gre:${csum}`;
  return 'ipip';
}
