/**
 * What to do about the kernel set-up's failures: the messages of kernel-setup.ts (refusals and
 * warnings such as "kernel fast path unavailable: ...") carry the system's cause (strerror text
 * or a missing program); this adds the operator's fix for the causes one can name.
 *
 *   withFix(msg) -> msg, with "; <fix>" appended when a cause is recognised (once)
 *   hintedLog(log) -> the same DaemonLog, its warnings passed through withFix
 */
import type { DaemonLog } from './log.js';

const FIXES: [RegExp, string][] = [
  [/Operation not permitted|\bEPERM\b/, 'the kernel refused the operation: ulvsd needs CAP_NET_ADMIN and CAP_BPF (CAP_SYS_ADMIN before Linux 5.8) in its network namespace; in a container run it privileged or grant those capabilities'],
  [/spawnSync (ip|tc) ENOENT|\b(ip|tc): not found|ENOENT.*\b(ip|tc)\b/, 'the ip or tc program is missing: install iproute2 (apt-get install iproute2)'],
  [/Cannot allocate memory|\bENOMEM\b/, 'the kernel could not allocate memory for the maps or the TUN: free memory, lower --fast-path-conns or --max-conns, or raise the locked-memory limit (LimitMEMLOCK=infinity, ulimit -l unlimited)'],
  [/Function not implemented|\bENOSYS\b/, 'this kernel lacks the facility (io_uring, tcx or BPF): use --io syscalls or --fast-path off, or a newer kernel'],
];

/** See the file header. */
export function withFix(msg: string): string {
  for (const [re, fix] of FIXES) if (re.test(msg) && !msg.includes(fix)) return `${msg}; ${fix}`;
  return msg;
}

/** See the file header. */
export function hintedLog(log: DaemonLog): DaemonLog {
  return { info: log.info, warn: (msg, kind, fields) => log.warn(withFix(msg), kind, fields) };
}
