/**
 * The kernel's default of sync_qlen_max, which depends on the machine: ip_vs_control_net_init_sysctl
 * sets it to nr_free_buffer_pages() / 32 when a namespace's IPVS starts — the pages of the
 * kernel's low zones above their high watermarks, i.e. about all of memory, in 4 KiB pages. ulvsd
 * takes MemTotal from /proc/meminfo (watermarks are a fraction of a percent of it) at start,
 * so on a 4 GiB machine 32,768 datagrams (~46 MiB of 1472-byte datagrams at most) may wait.
 * `--sysctl sync_qlen_max=N` or PUT /v1/sysctl replace it.
 */
import { readFileSync } from 'node:fs';

const PAGE = 4096;

/** MemTotal (kB) as /proc/meminfo writes it -> datagrams; `fallback` when unreadable. */
export function qlenMaxOfMeminfo(meminfo: string, fallback: number): number {
  const m = /^MemTotal:\s+(\d+)\s+kB$/m.exec(meminfo);
  if (!m) return fallback;
  return Math.floor((Number(m[1]) * 1024) / PAGE / 32);
}

export function defaultSyncQlenMax(fallback = 4096): number {
  try {
    return qlenMaxOfMeminfo(readFileSync('/proc/meminfo', 'utf8'), fallback);
  } catch {
    return fallback;
  }
}
