/**
 * ipvsadm 1.31's `-L -n` listings (ipvs-spec §6.7): the default layout, `--stats` and `--rate`,
 * from a director's services. Sorting as ipvsadm: services by protocol, then address compared
 * as a signed 32-bit difference (ipvsadm's quirk), then port; real servers by address, port.
 */
import type { DestSnapshot, DirectorSnapshot, ServiceSnapshot, StatsSnapshot } from '../core/director.js';
import { FWD_NAMES, SvcFlag } from '../core/service.js';
import { formatIPv4 } from '../wire/addr.js';

const pad = (s: string, w: number) => (s.length >= w ? s : s + ' '.repeat(w - s.length));
const lpad = (s: string, w: number) => (s.length >= w ? s : ' '.repeat(w - s.length) + s);
const diff32 = (a: number, b: number) => ((a - b) | 0);

/** ipvsadm's print_largenum without --exact. */
export function largenum(n: number): string {
  if (n < 1e8) return lpad(String(n), 9);
  if (n < 1e9) return `${lpad(String(Math.floor(n / 1e3)), 8)}K`;
  if (n < 1e11) return `${lpad(String(Math.floor(n / 1e6)), 8)}M`;
  if (n < 1e14) return `${lpad(String(Math.floor(n / 1e9)), 8)}G`;
  return `${lpad(String(Math.floor(n / 1e12)), 8)}T`;
}

const protoName = (p: number) => (p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 132 ? 'SCTP' : String(p));
const label = (s: ServiceSnapshot) => `${pad(protoName(s.proto), 4)} ${formatIPv4(s.addr)}:${s.port}`;
const destAddr = (d: DestSnapshot) => `${formatIPv4(d.addr)}:${d.port}`;

function sortedServices(d: DirectorSnapshot): ServiceSnapshot[] {
  return [...d.services].sort((a, b) => a.proto - b.proto || diff32(a.addr, b.addr) || a.port - b.port);
}
function sortedDests(s: ServiceSnapshot): DestSnapshot[] {
  return [...s.dests].sort((a, b) => diff32(a.addr, b.addr) || a.port - b.port);
}

function serviceLine(s: ServiceSnapshot): string {
  let line = `${label(s)} ${s.scheduler}`;
  const f = s.flags & (SvcFlag.SCHED1 | SvcFlag.SCHED2 | SvcFlag.SCHED3);
  if (f) {
    const names = s.scheduler === 'sh' ? ['sh-fallback', 'sh-port', 'flag-3'] : s.scheduler === 'mh' ? ['mh-fallback', 'mh-port', 'flag-3'] : ['flag-1', 'flag-2', 'flag-3'];
    line += ` (${[SvcFlag.SCHED1, SvcFlag.SCHED2, SvcFlag.SCHED3].flatMap((bit, i) => (f & bit ? [names[i]] : [])).join(',')})`;
  }
  if (s.flags & SvcFlag.PERSISTENT) {
    line += ` persistent ${s.timeout}`;
    if (s.netmask !== 0xffffffff) line += ` mask ${formatIPv4(s.netmask)}`;
  }
  if (s.flags & SvcFlag.ONEPACKET) line += ' ops';
  return line;
}

export type ListFormat = 'default' | 'stats' | 'rate';

export function listServices(d: DirectorSnapshot, fmt: ListFormat = 'default'): string {
  const out: string[] = [`IP Virtual Server version 1.2.1 (size=${d.buckets})`];
  if (fmt === 'default') {
    out.push('Prot LocalAddress:Port Scheduler Flags', '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn');
  } else {
    const cols = fmt === 'stats' ? ['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'] : ['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'];
    out.push(`${pad('Prot LocalAddress:Port', 33)}${cols.map((c) => ` ${lpad(c, 8)}`).join('')}`, '  -> RemoteAddress:Port');
  }
  for (const s of sortedServices(d)) {
    if (fmt === 'default') out.push(serviceLine(s));
    else out.push(pad(label(s), 33) + numbers(s, fmt, false));
    for (const x of sortedDests(s)) {
      if (fmt === 'default')
        out.push(`  -> ${pad(destAddr(x), 28)} ${pad(FWD_NAMES[x.fwd]!, 7)} ${pad(String(x.weight), 6)} ${pad(String(x.activeConns), 10)} ${pad(String(x.inactConns), 10)}`);
      else out.push(`  -> ${pad(destAddr(x), 28)}${numbers(x, fmt, true)}`);
    }
  }
  return `${out.join('\n')}\n`;
}

function numbers(st: StatsSnapshot, fmt: ListFormat, dest: boolean): string {
  if (fmt === 'stats') return st.counters.map(largenum).join('');
  // --rate: a real server's cps/pps columns are printed in full ("%8llu"), its bps abbreviated
  const r = st.rates;
  if (dest) return `${r.slice(0, 3).map((x) => ` ${lpad(String(x), 8)}`).join('')}${largenum(r[3]!)}${largenum(r[4]!)}`;
  return r.map(largenum).join('');
}
