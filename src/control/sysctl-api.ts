/**
 * The admin API's /v1/sysctl (ulvs's own: the kernel has /proc/sys/net/ipv4/vs, ipvsadm no
 * command for it):
 *
 *   GET /v1/sysctl                      {name: value} for every sysctl ulvs carries, IPVS names
 *   PUT /v1/sysctl {name: value, ...}   change those named, on every worker's engine; answers as
 *                                       GET. Unknown name or bad value: 400 (validation for a
 *                                       body that is not an object of numbers/strings/[T, P];
 *                                       EINVAL naming the sysctl otherwise) and nothing changed.
 *
 * Names, values and the kernel's checks: core/sysctl-names.ts.
 */
import { z } from 'zod';
import { ipvsSysctls, parseSysctls, type IpvsSysctlValue } from '../core/sysctl-names.js';
import type { Sysctls } from '../core/sysctl.js';

/** What the daemon offers: the engines' values (worker 0's; all workers hold the same), and a
 *  change applied to every engine inside the control plane's serial section. */
export interface AdminSysctls {
  values(): Promise<Sysctls>;
  set(p: Partial<Sysctls>): Promise<void>;
}

export const SysctlBody = z.record(z.string(), z.union([z.number(), z.string(), z.array(z.number()).length(2)]));

/** GET (body null) or PUT (the body as SysctlBody parsed it). Throws IpvsError EINVAL before
 *  changing anything if a name or value is refused. */
export async function sysctlRequest(s: AdminSysctls, body: z.output<typeof SysctlBody> | null): Promise<Record<string, IpvsSysctlValue>> {
  if (body !== null) await s.set(parseSysctls(body));
  return ipvsSysctls(await s.values());
}
