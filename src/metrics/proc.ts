/**
 * The kernel's /proc/net/ip_vs, /proc/net/ip_vs_stats and /proc/net/ip_vs_conn texts
 * (ecosystem.md §2.2-2.4; ip_vs_ctl.c ip_vs_info_seq_show / ip_vs_stats_show, ip_vs_conn.c),
 * exact to the character, so existing parsers (node_exporter's procfs, scripts) read ulvs.
 * Addresses and ports are upper-case hex of the host-order values; trailing spaces are kept.
 * Order: services as configured (the kernel prints hash-bucket order), servers newest first.
 */
import type { ConnInfo, DirectorSnapshot, StatsSnapshot } from '../core/director.js';
import { FWD_NAMES, FWMARK_PROTO, SvcFlag } from '../core/service.js';

const hex = (n: number, w: number) => (n >>> 0).toString(16).toUpperCase().padStart(w, '0');
const hexBig = (n: number, w: number) => BigInt(Math.max(0, Math.floor(n))).toString(16).toUpperCase().padStart(w, ' ');
const pad = (s: string, w: number) => (s.length >= w ? s : s + ' '.repeat(w - s.length));
const proto = (p: number) => (p === 6 ? 'TCP' : p === 17 ? 'UDP' : p === 132 ? 'SCTP' : 'IP');

export function procIpVs(s: DirectorSnapshot): string {
  let out = `IP Virtual Server version 1.2.1 (size=${s.buckets})\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n`;
  for (const v of s.services) {
    // ip_vs_info_seq_show: a fwmark service is `FWM  %08X` (its mark), without a port
    out += `${v.proto === FWMARK_PROTO ? `FWM  ${hex(v.addr, 8)}` : `${proto(v.proto)}  ${hex(v.addr, 8)}:${hex(v.port, 4)}`} ${v.scheduler} ${v.flags & SvcFlag.ONEPACKET ? 'ops ' : ''} `;
    out += v.flags & SvcFlag.PERSISTENT ? `persistent ${v.timeout} ${hex(v.netmask, 8)}\n` : '\n';
    for (const d of v.dests) {
      out += `  -> ${hex(d.addr, 8)}:${hex(d.port, 4)}      ${pad(FWD_NAMES[d.fwd]!, 7)} ${pad(String(d.weight), 6)} ${pad(String(d.activeConns), 10)} ${pad(String(d.inactConns), 10)}\n`;
    }
  }
  return out;
}

export function procIpVsStats(t: StatsSnapshot): string {
  const c = t.counters;
  const r = t.rates;
  return (
    '   Total Incoming Outgoing         Incoming         Outgoing\n' +
    '   Conns  Packets  Packets            Bytes            Bytes\n' +
    `${hexBig(c[0]!, 8)} ${hexBig(c[1]!, 8)} ${hexBig(c[2]!, 8)} ${hexBig(c[3]!, 16)} ${hexBig(c[4]!, 16)}\n\n` +
    ' Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n' +
    `${hexBig(r[0]!, 8)} ${hexBig(r[1]!, 8)} ${hexBig(r[2]!, 8)} ${hexBig(r[3]!, 16)} ${hexBig(r[4]!, 16)}\n`
  );
}

export function procIpVsConn(conns: readonly ConnInfo[]): string {
  let out = 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n';
  for (const c of conns) {
    out += `${pad(proto(c.proto), 3)} ${hex(c.caddr, 8)} ${hex(c.cport, 4)} ${hex(c.vaddr, 8)} ${hex(c.vport, 4)} ${hex(c.daddr, 8)} ${hex(c.dport, 4)} ${pad(c.state, 11)} ${String(Math.floor(c.expiresInMs / 1000)).padStart(7)}\n`;
  }
  return out;
}
