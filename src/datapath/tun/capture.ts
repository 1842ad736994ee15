/**
 * Capture before routing (optional, `ulvsd --capture tc`, the default where the kernel has
 * cls_u32 and act_mirred): tc filters on the ingress of the host's IPv4 interfaces send the
 * service traffic straight into the TUN, so those packets skip the director's first IP pass
 * (receive, policy-rule lookup, reverse-path check, forward) and cross its stack once, on the
 * way out of the TUN. The policy rules of routing.ts stay in place and catch what the filters
 * do not (packets with IP options, and traffic on an interface that appeared since the last
 * look: ulvsd checks the interfaces every 2 s, followInterfaces).
 *
 *   tc qdisc add dev IF clsact                                         (if IF has none)
 *   tc filter add dev IF ingress pref P protocol ip u32 match ip dst LOCAL/32 classid 1:1
 *       for each address of this host first, VIPs excepted: its own traffic with the real
 *       servers (health checks, whose replies come from a RIP:port) stays on the normal path (a
 *       match without an action ends the classification with TC_ACT_OK; gact may not be built)
 *   tc filter add dev IF ingress pref P protocol ip u32
 *       match u8 0x45 0xff at 0                    IPv4 without options (fixed L4 offset)
 *       match ip dst VIP/32  match ip protocol 6|17 0xff  match ip dport VPORT 0xffff
 *       action mirred egress redirect dev <tun>                        each service
 *   ... match ip dst VIP/32 match ip protocol 1 0xff match u8 8 0xff at 20 classid 1:1
 *                                                                      echo requests to each VIP
 *                                                                      pass (a local VIP answers)
 *   ... match ip dst VIP/32 match ip protocol 1 0xff ...              other ICMP to each VIP
 *
 * A local VIP (assigned to this host, e.g. by keepalived, at any time) changes nothing here:
 * the filters run before the IP stack, so its service ports never reach a local socket (no
 * reset without a listener), its other ports and pings do. The policy rules cannot stand in for
 * them with a local VIP (the kernel's `local` table, rule 0, delivers it first): the daemon
 * refuses a local VIP without the filters (kernel-setup.ts).
 *   ... match ip src RIP/32 match ip protocol 6|17 0xff match ip sport RPORT 0xffff ...
 *                                                                      each real server endpoint
 *   ... match ip src RIP/32 match ip protocol 1 0xff ...              ICMP from each real server
 *
 * Every filter carries preference P or P+1 (a change installs the new set under the other one,
 * then deletes the old), so ours are found and removed exactly (at exit, and at start to clear a
 * crashed run's); the clsact qdisc is removed only when ulvsd added it and no other
 * filter remains on it. Measured gain: BENCHMARKS.md.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { formatIPv4 } from '../../wire/addr.js';
import { hostAddresses, type HostAddress, type RoutingPlan } from './routing.js';

const run = (args: string[]) => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** One u32 filter: its match arguments and its action. */
export interface CaptureFilter {
  match: string[];
  /** redirect into the TUN, or leave the packet to the normal path */
  action: 'redirect' | 'pass';
}

/**
 * The filters a plan needs, in the order they must be tried (deduplicated): first a pass for
 * each of `locals` (this host's addresses) that is not a VIP, then the redirects (and the
 * passes of echo requests to the VIPs, before the VIPs' ICMP redirects).
 */
export function captureFilters(p: Pick<RoutingPlan, 'services' | 'servers'>, locals: readonly number[] = []): CaptureFilter[] {
  const base = ['match', 'u8', '0x45', '0xff', 'at', '0'];
  const out: CaptureFilter[] = [];
  const proto = (n: number) => ['match', 'ip', 'protocol', String(n), '0xff'];
  const redirect = (match: string[]) => out.push({ match: [...base, ...match], action: 'redirect' });
  const vips = new Set(p.services.map((s) => s.addr >>> 0));
  // a VIP that is also local must still be captured: it gets no pass
  for (const a of new Set(locals)) if (!vips.has(a >>> 0)) out.push({ match: ['match', 'ip', 'dst', `${formatIPv4(a)}/32`], action: 'pass' });
  for (const s of p.services) redirect(['match', 'ip', 'dst', `${formatIPv4(s.addr)}/32`, ...proto(s.proto), ...(s.port ? ['match', 'ip', 'dport', String(s.port), '0xffff'] : [])]);
  for (const v of vips) out.push({ match: [...base, 'match', 'ip', 'dst', `${formatIPv4(v)}/32`, ...proto(1), 'match', 'u8', '8', '0xff', 'at', '20'], action: 'pass' });
  for (const v of vips) redirect(['match', 'ip', 'dst', `${formatIPv4(v)}/32`, ...proto(1)]);
  for (const r of p.servers) redirect(['match', 'ip', 'src', `${formatIPv4(r.addr)}/32`, ...proto(r.proto), ...(r.port ? ['match', 'ip', 'sport', String(r.port), '0xffff'] : [])]);
  for (const a of new Set(p.servers.map((r) => r.addr))) redirect(['match', 'ip', 'src', `${formatIPv4(a)}/32`, ...proto(1)]);
  const seen = new Set<string>();
  return out.filter((f) => !seen.has(f.match.join(' ')) && seen.add(f.match.join(' ')) !== undefined);
}

/**
 * What to capture on and what to let pass, from one listing of the host's addresses: every
 * interface with an IPv4 address except loopback and the TUN, and the addresses themselves
 * (loopback's excluded).
 */
function hostView(tun: string, addrs: HostAddress[] = hostAddresses()): { devices: string[]; locals: number[] } {
  return {
    devices: [...new Set(addrs.map((a) => a.dev).filter((d) => d !== 'lo' && d !== tun))],
    locals: addrs.filter((a) => a.addr >>> 24 !== 127).map((a) => a.addr),
  };
}

/** The interfaces the capture (and the kernel fast path) work on: every IPv4 interface but lo
 *  and the TUN (from `addrs` when the caller has just listed them). */
export function captureDevices(tun: string, addrs?: HostAddress[]): string[] {
  return hostView(tun, addrs).devices;
}

export interface CaptureState {
  devices: string[];
  /** the tc preference of the filters now in place (the plan's pref or pref + 1) */
  pref: number;
  /** devices on which ulvsd added the clsact qdisc */
  addedQdisc: string[];
  filters: number;
  /** what is in place: filterSetKey of the devices and filters last installed whole (absent
   *  when unknown: taken over from a previous process, or after a failure) */
  installed?: string;
}

/** One string for a filter set on a device list: equal strings, identical filters in place. */
export function filterSetKey(devices: readonly string[], filters: readonly CaptureFilter[]): string {
  return JSON.stringify([devices, filters.map((f) => [f.action, ...f.match])]);
}

/** Give `dev` a clsact qdisc unless it has one; remembered in `st` when ulvsd added it (throws). */
function addClsact(st: CaptureState, dev: string): void {
  if (/qdisc clsact/.test(run(['tc', 'qdisc', 'show', 'dev', dev]))) return;
  run(['tc', 'qdisc', 'add', 'dev', dev, 'clsact']);
  st.addedQdisc.push(dev);
}

/** All of a device's filters through one `tc -batch` (one process, not one per filter: a rule
 *  change rewrites every filter, ~50 per device in the tests, and a spawn costs 5-20 ms on a
 *  loaded machine); tc stops at the first line that fails and exits non-zero (throws). */
function addFilters(dev: string, tun: string, filters: readonly CaptureFilter[], pref: number): number {
  if (filters.length === 0) return 0;
  const line = (f: CaptureFilter) => ['filter', 'add', 'dev', dev, 'ingress', 'pref', String(pref), 'protocol', 'ip', 'u32', ...f.match, ...(f.action === 'pass' ? ['classid', '1:1'] : ['action', 'mirred', 'egress', 'redirect', 'dev', tun])].join(' ');
  execFileSync('tc', ['-batch', '-'], { encoding: 'utf8', input: `${filters.map(line).join('\n')}\n`, stdio: ['pipe', 'pipe', 'pipe'] });
  return filters.length;
}

function deleteFilters(dev: string, pref: number): void {
  try {
    run(['tc', 'filter', 'del', 'dev', dev, 'ingress', 'pref', String(pref)]);
  } catch {
    /* none of ours */
  }
}

/** Install the filters; throws (after removing what it added) when tc cannot do it. */
export function installCapture(p: RoutingPlan): CaptureState {
  const host = hostView(p.dev);
  const filters = captureFilters(p, host.locals);
  const st: CaptureState = { devices: host.devices, pref: p.pref, addedQdisc: [], filters: filters.length };
  try {
    for (const dev of st.devices) {
      addClsact(st, dev);
      addFilters(dev, p.dev, filters, st.pref);
    }
    st.installed = filterSetKey(st.devices, filters);
    return st;
  } catch (e) {
    removeCapture(p.pref, st);
    throw e;
  }
}

/**
 * Follow the host's interfaces: when an IPv4 interface has appeared (or lost its last address),
 * install the whole filter set anew on the current list (updateCapture), a clsact qdisc first
 * where a new interface has none. Interfaces that still exist keep being managed (so their
 * filters are removed at exit). Returns the interfaces added, or null when nothing changed.
 * Never throws (a failure leaves the previous filters; the next call tries again).
 */
export function followInterfaces(st: CaptureState, plan: RoutingPlan, addrs?: HostAddress[]): string[] | null {
  let now: string[];
  try {
    now = hostView(plan.dev, addrs).devices;
  } catch {
    return null;
  }
  const added = now.filter((d) => !st.devices.includes(d));
  const kept = st.devices.filter((d) => now.includes(d) || existsSync(`/sys/class/net/${d}`));
  if (added.length === 0 && kept.length === st.devices.length) return null;
  const ok: string[] = [];
  for (const dev of added) {
    try {
      addClsact(st, dev);
      ok.push(dev);
    } catch {
      /* went away again, or no tc: try at the next call */
    }
  }
  st.devices = [...kept, ...ok];
  updateCapture(st, plan);
  return ok;
}

/**
 * Replace the filters for a new plan: the new set goes in under the other preference first, so
 * a packet always meets a complete set, then the old set is deleted. Never throws: where it
 * fails, the old filters are kept (and the policy rules still carry what they miss).
 */
export function updateCapture(st: CaptureState, to: RoutingPlan): void {
  const next = st.pref === to.pref ? to.pref + 1 : to.pref;
  let ok = true;
  let filters: CaptureFilter[] = [];
  try {
    filters = captureFilters(to, hostView(to.dev).locals);
  } catch {
    ok = false;
  }
  // A change that leaves the filters as they are (a weight, a scheduler, a server's method)
  // spawns no tc at all: rewriting ~20 filters per interface, one tc each, cost 0.3-0.7 s per
  // admin edit on a loaded 2-core machine (test/integration/reload-under-load.test.ts).
  const key = filterSetKey(st.devices, filters);
  if (ok && st.installed === key) return;
  for (const dev of ok ? st.devices : []) {
    deleteFilters(dev, next);
    try {
      addFilters(dev, to.dev, filters, next);
    } catch {
      ok = false;
    }
  }
  for (const dev of st.devices) deleteFilters(dev, ok ? st.pref : next);
  if (ok) {
    st.pref = next;
    st.filters = filters.length;
    st.installed = key;
  } else delete st.installed;
}

/** Remove our filters (preferences pref and pref + 1) on the given devices, or on every device; never throws. */
export function removeCapture(pref: number, st?: CaptureState): void {
  let devs: string[];
  try {
    devs = st?.devices ?? hostView('').devices;
  } catch {
    return;
  }
  for (const dev of devs) {
    deleteFilters(dev, pref);
    deleteFilters(dev, pref + 1);
    if (st?.addedQdisc.includes(dev)) {
      try {
        if (!/filter/.test(run(['tc', 'filter', 'show', 'dev', dev, 'ingress'])) && !/filter/.test(run(['tc', 'filter', 'show', 'dev', dev, 'egress']))) run(['tc', 'qdisc', 'del', 'dev', dev, 'clsact']);
      } catch {
        /* the device may be gone */
      }
    }
  }
}
