/**
 * What a ulvsd leaves in the kernel for the next one, recorded where the next one finds it:
 * `<state dir>/<dev>.kernel.json`, written (atomically) at start and whenever it changes, kept
 * by a hand-over stop and by a crash (`kill -9`), removed by a final stop. The next start reads
 * it to take the kernel side over instead of clearing it (kernel-setup.ts):
 *
 *   routing   the routing plan in force (its rules are changed by difference, never removed
 *             and added again: a reply meeting no rule would be forwarded untranslated and the
 *             client would reset the connection) and the sysctls' values from before the first
 *             run, which only the final stop restores
 *   capture   the tc preference and interfaces of the filters, the clsact qdiscs ulvsd added
 *   fastPath  the ids of the program and maps attached link-less on the interfaces (offloaded
 *             connections keep flowing without a process), the slot count, the interfaces
 *
 * The TUN itself is persistent (TUNSETPERSIST) and keeps its name, routes and rules. The file
 * is named by the device and the network namespace (its inode), so directors in different
 * namespaces sharing a state directory do not meet. An inode number names a namespace only
 * while it exists: a director whose namespace was deleted (a container gone, with its ulvsd
 * killed) leaves its files behind, and the kernel gives the number to a later namespace. So the
 * record also carries the namespace's cookie (datapath/tun/netns-cookie.ts), which the kernel
 * never gives twice until reboot: a record with another cookie is stale (takeKept: logged,
 * counted as handover_stale_records, removed with the connection and carry-over files beside
 * it, nothing of it taken over or undone). A record without a cookie (a ulvsd before this
 * field, during an in-place upgrade) is taken as this namespace's, as before.
 */
import { mkdirSync, readFileSync, readlinkSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RoutingPlan } from '../datapath/tun/routing.js';
import type { PriorFastPath } from '../datapath/tun/fastpath.js';
import { netnsCookie } from '../datapath/tun/netns-cookie.js';
import type { DaemonLog } from './log.js';

export interface KeptKernel {
  version: 1;
  pid: number;
  workers: number;
  /** the network namespace's cookie (netns-cookie.ts) as a decimal string; null where the kernel
   *  has none; absent in records written before the field */
  netnsCookie?: string | null;
  routing: { plan: RoutingPlan; sysctls: [string, string][] };
  capture: { pref: number; devices: string[]; addedQdisc: string[] } | null;
  fastPath: PriorFastPath | null;
}

/** This network namespace's inode number ("net:[4026531840]" -> 4026531840), or 0. */
function netnsId(): string {
  try {
    return /\[(\d+)\]/.exec(readlinkSync('/proc/self/ns/net'))?.[1] ?? '0';
  } catch {
    return '0';
  }
}

/** The state files of device `dev` in `dir` (one namespace's): the kernel record, the
 *  connections (conn-state-file.ts) and the counters and scheduler cursors (carry-file.ts). */
export interface StatePaths {
  kernel: string;
  conns: string;
  carry: string;
}

export function statePaths(dir: string, dev: string): StatePaths {
  const base = join(dir, `${dev}.net${netnsId()}`);
  return { kernel: `${base}.kernel.json`, conns: `${base}.conns`, carry: `${base}.carry` };
}

/** This namespace's cookie, once per process (it cannot change). */
let ownCookie: string | null | undefined;
export function ownNetnsCookie(): string | null {
  if (ownCookie === undefined) ownCookie = netnsCookie();
  return ownCookie;
}

/** Why record `k` is not this namespace's (its cookie is another one), or null when it is (or
 *  either side has no cookie: an older record, an older kernel). */
export function staleReason(k: KeptKernel, here: string | null): string | null {
  if (!k.netnsCookie || !here || k.netnsCookie === here) return null;
  return `it was left by a network namespace that no longer exists (namespace cookie ${k.netnsCookie}, this one's is ${here}; the inode number was reused)`;
}

/**
 * The record for this start, or null. A stale one (staleReason) is logged, counted in
 * `counters.handover_stale_records`, and removed with the files beside it: nothing of it is
 * taken over, and its connections are not imported. Never throws.
 */
export function takeKept(paths: StatePaths, counters: { handover_stale_records: number }, log: DaemonLog): KeptKernel | null {
  const k = readKept(paths.kernel);
  if (k === null) return null;
  const why = staleReason(k, ownNetnsCookie());
  if (why === null) return k;
  counters.handover_stale_records++;
  log.warn(`kept state ${paths.kernel} ignored and removed with its connection and counter files: ${why}`);
  for (const p of [paths.kernel, paths.conns, paths.carry]) removeKept(p);
  return null;
}

/** The record, or null when absent or unreadable (then nothing is taken over). */
export function readKept(path: string): KeptKernel | null {
  try {
    const k = JSON.parse(readFileSync(path, 'utf8')) as KeptKernel;
    return k.version === 1 && k.routing?.plan ? k : null;
  } catch {
    return null;
  }
}

/** Write the record atomically; throws the system's error. */
export function writeKept(path: string, k: KeptKernel): void {
  mkdirSync(join(path, '..'), { recursive: true, mode: 0o700 });
  writeFileSync(`${path}.tmp`, JSON.stringify(k), { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export function removeKept(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* absent */
  }
}
