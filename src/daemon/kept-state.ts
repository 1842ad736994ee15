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
 * namespaces sharing a state directory do not meet.
 */
import { mkdirSync, readFileSync, readlinkSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RoutingPlan } from '../datapath/tun/routing.js';
import type { PriorFastPath } from '../datapath/tun/fastpath.js';

export interface KeptKernel {
  version: 1;
  pid: number;
  workers: number;
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

/** The state files of device `dev` in `dir`: the kernel record and the connections. */
export function statePaths(dir: string, dev: string): { kernel: string; conns: string } {
  const base = join(dir, `${dev}.net${netnsId()}`);
  return { kernel: `${base}.kernel.json`, conns: `${base}.conns` };
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
