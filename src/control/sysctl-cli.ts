/**
 * `ulvsadm --sysctl [NAME[=VALUE] ...]` — ulvs's own (ipvsadm has no such option; on a kernel
 * director this is `sysctl net.ipv4.vs.NAME[=VALUE]`), over the admin API's /v1/sysctl:
 *
 *   --sysctl                     every sysctl, one `net.ipv4.vs.NAME = VALUE` line each (as
 *                                sysctl(8) prints; sync_threshold's two values tab-separated)
 *   --sysctl NAME ...            those
 *   --sysctl NAME=VALUE ...      set them, all or nothing (one PUT), then print them
 * NAME may carry the `net.ipv4.vs.` prefix. Exit 0, or 2 for a refused word or value (the
 * message is the API's or sysctl-names.ts's, naming the sysctl), nothing changed.
 */
import type { AdminReply } from './admin-client.js';
import { IPVS_SYSCTL_NAMES, parseSysctlAssignment } from '../core/sysctl-names.js';

export type SysctlApi = (method: string, path: string, body?: object) => Promise<AdminReply>;

const bare = (n: string) => n.replace(/^net\.ipv4\.vs\./, '');
const line = (n: string, v: unknown) => `net.ipv4.vs.${n} = ${String(v).replace(' ', '\t')}\n`;

export async function sysctlCommand(args: string[], api: SysctlApi, io: { out(s: string): void; err(s: string): void }): Promise<number> {
  const fail = (m: string) => (io.err(`ulvsadm --sysctl: ${m}\n`), 2);
  const sets: Record<string, string> = {};
  const names: string[] = [];
  for (const a of args) {
    if (a.includes('=')) {
      try {
        const [k, v] = parseSysctlAssignment(a);
        sets[k] = v;
        names.push(k);
      } catch (e) {
        return fail((e as Error).message);
      }
    } else if (IPVS_SYSCTL_NAMES.includes(bare(a))) names.push(bare(a));
    else return fail(`unknown sysctl ${JSON.stringify(a)} (ulvs has: ${IPVS_SYSCTL_NAMES.join(', ')})`);
  }
  const r = Object.keys(sets).length > 0 ? await api('PUT', '/v1/sysctl', sets) : await api('GET', '/v1/sysctl');
  if (r.status !== 200) return fail((r.json as { error?: { message?: string } } | null)?.error?.message ?? `ulvsd answered ${r.status}`);
  const values = r.json as Record<string, unknown>;
  for (const n of names.length > 0 ? [...new Set(names)] : Object.keys(values)) io.out(line(n, values[n]));
  return 0;
}
