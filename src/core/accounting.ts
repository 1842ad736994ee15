/**
 * IPVS's traffic counters (ip_vs_in_stats, ip_vs_out_stats, ip_vs_conn_stats): every packet and
 * connection is counted on its real server, that server's service and the director's totals.
 */
import type { RealServer } from './service.js';
import { Stat, type Stats } from './stats.js';

/** Count one packet of `bytes` in direction (pkts, octets) = (INPKTS, INBYTES) or (OUTPKTS, OUTBYTES). */
export function countPacket(d: RealServer, totals: Stats, pkts: number, octets: number, bytes: number): void {
  const ds = d.stats.c;
  const ss = d.svc.stats.c;
  const gs = totals.c;
  ds[pkts]!++;
  ds[octets]! += bytes;
  ss[pkts]!++;
  ss[octets]! += bytes;
  gs[pkts]!++;
  gs[octets]! += bytes;
}

function addTraffic(st: Float64Array, inPkts: number, inBytes: number, outPkts: number, outBytes: number): void {
  st[Stat.INPKTS]! += inPkts;
  st[Stat.INBYTES]! += inBytes;
  st[Stat.OUTPKTS]! += outPkts;
  st[Stat.OUTBYTES]! += outBytes;
}

/** Count traffic forwarded elsewhere (the kernel fast path) in bulk. */
export function countTraffic(d: RealServer, totals: Stats, inPkts: number, inBytes: number, outPkts: number, outBytes: number): void {
  addTraffic(d.stats.c, inPkts, inBytes, outPkts, outBytes);
  addTraffic(d.svc.stats.c, inPkts, inBytes, outPkts, outBytes);
  addTraffic(totals.c, inPkts, inBytes, outPkts, outBytes);
}

/** Count a new connection. */
export function countConn(d: RealServer, totals: Stats): void {
  d.stats.c[Stat.CONNS]!++;
  d.svc.stats.c[Stat.CONNS]!++;
  totals.c[Stat.CONNS]!++;
}
