/**
 * What the kernel needs so VS/NAT traffic crosses the TUN, and nothing more (issue 3):
 *
 *   table T (default 4200):  default dev <tun>
 *   rule  P:     iif <tun> lookup main                 packets ulvs wrote back are routed normally
 *                iif <tun> unreachable                 ... and only normally: when main has no route
 *                                                      (a passed packet to a VIP that is not a
 *                                                      local address), the lookup must not fall
 *                                                      through to the rules below, whose table
 *                                                      sends it into the TUN again, round and round
 *                                                      until its TTL runs out (64 engine passes
 *                                                      per packet; found by the hostile-packet
 *                                                      test); the kernel drops it as it would
 *                                                      with no route (InNoRoutes, ICMP unreachable)
 *   rule  P+1:   to VIP ipproto tcp|udp dport VPORT lookup T     each service
 *                to VIP ipproto icmp lookup T                    errors about a service's traffic
 *                from RIP ipproto tcp|udp sport RPORT lookup T   each real server's replies
 *                from RIP ipproto icmp lookup T                  errors from the real servers
 *                iif lo ipproto icmp lookup T                    this host's own errors about
 *                                                                forwarded traffic (e.g. PMTU)
 *                fwmark MARK lookup T                            each fwmark service: packets the
 *                                                                host's netfilter rules marked
 *                                                                (prerouting: before this lookup)
 *   the TUN:     up, txqueuelen 4096
 *   sysctls:     net.ipv4.ip_forward=1; rp_filter=0 on all and <tun> (packets leave the TUN with
 *                the client's or the VIP's address, which strict reverse-path filtering drops);
 *                accept_local=1 on <tun> (a reply written back from a local VIP has a local
 *                source, a martian without it; it also skips the reverse-path lookup, see below);
 *                IPv6 off on <tun> (the data path is IPv4 only for now)
 *
 * Every rule carries the preference P or P+1, so `removeRouting` (at exit, and before a start,
 * to clear a crashed run's state) finds exactly ours. Old sysctl values are restored on exit.
 */
import { execFileSync } from 'node:child_process';
import { formatIPv4, parseIPv4 } from '../../wire/addr.js';

export interface RoutingPlan {
  dev: string;
  table: number;
  /** rule preference of the iif rule; steering rules use pref + 1 */
  pref: number;
  services: { proto: number; addr: number; port: number }[];
  servers: { proto: number; addr: number; port: number }[];
  /** the marks of the fwmark services (absent in a record of an older ulvsd: none) */
  marks?: number[];
}

export interface RoutingState {
  sysctls: [string, string][];
}

const ip = (args: string[]) => execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
const ipRun = ip;
const protoName = (p: number) => (p === 6 ? 'tcp' : 'udp');

function sysctl(name: string, value?: string): string {
  const path = `/proc/sys/${name.replace(/\./g, '/')}`;
  if (value !== undefined) execFileSync('sh', ['-c', `echo ${value} > ${path}`]);
  return execFileSync('cat', [path], { encoding: 'utf8' }).trim();
}

/** The `ip rule` argument lists the plan installs (for logging and tests). */
export function ruleArgs(p: RoutingPlan): string[][] {
  const t = String(p.table);
  const pref = String(p.pref + 1);
  const rules: string[][] = [
    ['pref', String(p.pref), 'iif', p.dev, 'lookup', 'main'],
    ['pref', String(p.pref), 'iif', p.dev, 'unreachable'], // after the one above: same preference, added later
  ];
  const vips = new Set<number>();
  for (const s of p.services) {
    rules.push(['pref', pref, 'to', `${formatIPv4(s.addr)}/32`, 'ipproto', protoName(s.proto), ...(s.port ? ['dport', String(s.port)] : []), 'lookup', t]);
    vips.add(s.addr);
  }
  for (const v of vips) rules.push(['pref', pref, 'to', `${formatIPv4(v)}/32`, 'ipproto', 'icmp', 'lookup', t]);
  const rips = new Set<number>();
  for (const r of p.servers) {
    rules.push(['pref', pref, 'from', `${formatIPv4(r.addr)}/32`, 'ipproto', protoName(r.proto), ...(r.port ? ['sport', String(r.port)] : []), 'lookup', t]);
    rips.add(r.addr);
  }
  for (const a of rips) rules.push(['pref', pref, 'from', `${formatIPv4(a)}/32`, 'ipproto', 'icmp', 'lookup', t]);
  for (const m of p.marks ?? []) rules.push(['pref', pref, 'fwmark', String(m >>> 0), 'lookup', t]);
  // ICMP errors this host generates about forwarded traffic (fragmentation needed when the path
  // to a real server has a smaller MTU, TTL exceeded) quote the packet *after* the NAT rewrite
  // (client -> RIP), which the client cannot match: send them through the engine, which
  // translates them like errors from the real servers. Other local ICMP passes unchanged.
  rules.push(['pref', pref, 'iif', 'lo', 'ipproto', 'icmp', 'lookup', t]);
  // A real server in several services (or a service listed twice) must yield one rule: the
  // kernel refuses an exact duplicate.
  const seen = new Set<string>();
  return rules.filter((r) => !seen.has(r.join(' ')) && seen.add(r.join(' ')) !== undefined);
}

/** The sysctls a plan sets, and their values. */
const planSysctls = (p: Pick<RoutingPlan, 'dev'>) =>
  [
    ['net.ipv4.ip_forward', '1'],
    ['net.ipv4.conf.all.rp_filter', '0'],
    [`net.ipv4.conf.${p.dev}.rp_filter`, '0'],
    [`net.ipv6.conf.${p.dev}.disable_ipv6`, '1'], // the IPv4-only engine would count its ND traffic as drops
    // Required for a local VIP: NAT replies written back carry the VIP as source, which the
    // stack drops as a martian (local source) unless accept_local is set (fib_validate_source;
    // the way-out program's bpf_fib_lookup does not check the source, the stack's input does
    // whenever the packet goes that way: --fast-path off, or a lookup the program leaves to it).
    // It also spares every packet from the TUN a reverse-path route lookup (walking all the
    // rules again; measured: CPU per connection -3 %, BENCHMARKS.md).
    [`net.ipv4.conf.${p.dev}.accept_local`, '1'],
  ] as const;

/** The names among a plan's sysctls that belong to the namespace as a whole, not to its TUN
 *  (several ulvsd in one namespace share them: daemon/netns-claims.ts). */
export const namespaceSysctls = (): string[] =>
  planSysctls({ dev: '/' })
    .map(([k]) => k as string)
    .filter((k) => !k.includes('/'));

export function installRouting(p: RoutingPlan): RoutingState {
  const state: RoutingState = { sysctls: [] };
  for (const [k, v] of planSysctls(p)) {
    state.sysctls.push([k, sysctl(k)]);
    sysctl(k, v);
  }
  // A queue of 4096 packets (TUN's default is 500) rides out a worker descheduled for ~10 ms
  // at 50,000 packets/s instead of dropping (with 500, one 1,000,000-flow run tracked 999,986).
  ip(['link', 'set', p.dev, 'txqueuelen', '4096', 'up']);
  ip(['route', 'replace', 'default', 'dev', p.dev, 'table', String(p.table)]);
  for (const r of ruleArgs(p)) ip(['rule', 'add', ...r]);
  return state;
}

/**
 * Take over the routing a previous process left (`from`, in force now) for the plan `to`: the
 * sysctls set again (the values from before the first run, `original`, are kept for the final
 * stop), the TUN up and its table's route replaced, the rules changed by difference
 * (updateRouting, tolerant of a rule already there or already gone), never removed and added
 * again: a real server's reply that met no rule would leave untranslated.
 */
export function adoptRouting(from: RoutingPlan, to: RoutingPlan, original: [string, string][]): RoutingState {
  for (const [k, v] of planSysctls(to)) sysctl(k, v);
  ip(['link', 'set', to.dev, 'txqueuelen', '4096', 'up']);
  ip(['route', 'replace', 'default', 'dev', to.dev, 'table', String(to.table)]);
  updateRouting(from, to, true);
  return { sysctls: original };
}

/** Move from one plan to another without a gap: add the new rules first, then delete the
 *  rules that are no longer wanted (matched by their exact selectors). */
export function updateRouting(from: RoutingPlan, to: RoutingPlan, tolerant = false): { added: number; removed: number } {
  const ip = tolerant
    ? (a: string[]) => {
        try {
          return ipRun(a);
        } catch {
          return ''; // already there (add) or already gone (del)
        }
      }
    : ipRun;
  const key = (r: string[]) => r.join(' ');
  const old = new Map(ruleArgs(from).map((r) => [key(r), r]));
  const want = new Map(ruleArgs(to).map((r) => [key(r), r]));
  let added = 0;
  let removed = 0;
  for (const [k, r] of want)
    if (!old.has(k)) {
      ip(['rule', 'add', ...r]);
      added++;
    }
  for (const [k, r] of old)
    if (!want.has(k)) {
      ip(['rule', 'del', ...r]);
      removed++;
    }
  return { added, removed };
}

/** Remove our rules (by preference) and table; restore sysctls when a state is given. Never throws. */
export function removeRouting(p: Pick<RoutingPlan, 'table' | 'pref'>, state?: RoutingState): void {
  for (const pref of [p.pref, p.pref + 1]) {
    for (let k = 0; k < 10000; k++) {
      try {
        ip(['rule', 'del', 'pref', String(pref)]);
      } catch {
        break;
      }
    }
  }
  try {
    ip(['route', 'flush', 'table', String(p.table)]);
  } catch {
    /* empty or absent */
  }
  for (const [k, v] of state?.sysctls.reverse() ?? []) {
    try {
      sysctl(k, v);
    } catch {
      /* the TUN may already be gone */
    }
  }
}

/** An IPv4 address configured on interface `dev` (uint32). */
export interface HostAddress {
  dev: string;
  addr: number;
}

/** The IPv4 addresses configured in this namespace, with their interfaces (`ip -4 -o addr show`). */
export function hostAddresses(): HostAddress[] {
  const out: HostAddress[] = [];
  for (const m of ip(['-4', '-o', 'addr', 'show']).matchAll(/^\d+:\s+(\S+?)(?:@\S+)?\s+inet (\d+\.\d+\.\d+\.\d+)\//gm)) out.push({ dev: m[1]!, addr: parseIPv4(m[2]!) >>> 0 });
  return out;
}

/** True when `addr` is configured on an interface of this namespace. */
export function isLocalAddress(addr: number): boolean {
  return hostAddresses().some((a) => a.addr === addr >>> 0);
}

/** How this host reaches `addr` (`ip -j route get`): on a directly connected network of `dev`,
 *  through a gateway, as a local address, or not at all (`error`: ip's message). */
export type RouteTo = { kind: 'onlink'; dev: string } | { kind: 'gateway'; via: string; dev: string } | { kind: 'local' } | { kind: 'none'; error: string };

export function routeTo(addr: number): RouteTo {
  let r: { type?: string; gateway?: string; dev?: string }[];
  try {
    r = JSON.parse(ip(['-j', '-4', 'route', 'get', formatIPv4(addr >>> 0)])) as typeof r;
  } catch (e) {
    const err = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    return { kind: 'none', error: err };
  }
  const x = r[0] ?? {};
  if (x.type === 'local') return { kind: 'local' };
  if (x.gateway) return { kind: 'gateway', via: x.gateway, dev: x.dev ?? '?' };
  return { kind: 'onlink', dev: x.dev ?? '?' };
}
