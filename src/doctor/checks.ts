/**
 * `ulvs doctor`'s judgement, without I/O: LVS/NAT's requirements (the LVS-HOWTO's VS/NAT
 * chapter) checked against what facts.ts gathered on a live director, each named, with the
 * cause and the fix when it fails.
 *
 *   checkDirector(facts) -> Finding[]   in this order:
 *     ulvsd       its admin socket answers (the other checks that need it are skipped otherwise)
 *     forwarding  net.ipv4.ip_forward is 1
 *     vip         each VIP is an address of the director, or is not on one of its connected
 *                 networks (there hosts would ARP for it and nobody would answer)
 *     dip         each masqueraded real server is on a network the director is directly
 *                 connected to (the director holds an address there, the DIP; no gateway between)
 *     gateway     no masqueraded real server leaves connections unanswered through the director
 *                 (the engine's count, core/proto/tcp.ts): its default gateway must be the DIP
 *     clients     no client of a connection is on a real server's network (the server would
 *                 answer it directly, not through the director)
 *   Status `note`: nothing wrong can be seen, but it cannot be confirmed (no connection yet, a
 *   VIP that must be routed here by others).
 */
import { formatIPv4, parseIPv4 } from '../wire/addr.js';

export interface HostAddr {
  ifname: string;
  local: string;
  prefixlen: number;
}
export interface RouteTo {
  /** the result of `ip route get`, or the error text */
  dev?: string;
  gateway?: string;
  prefsrc?: string;
  type?: string;
  error?: string;
}
export interface ServerFacts {
  address: string;
  port: number;
  method: string;
  weight: number;
  unanswered: number;
  /** connections scheduled to it since the counters were zeroed */
  conns: number;
}
export interface Facts {
  /** null: ulvsd answered; else why not (admin-unreachable.ts's words) */
  unreachable: string | null;
  services: { protocol: string; address: string; port: number; servers: ServerFacts[] }[];
  /** client addresses of the connection table */
  clients: string[];
  ipForward: string;
  addrs: HostAddr[];
  routes: Record<string, RouteTo>;
}
export type Status = 'ok' | 'fail' | 'note' | 'skipped';
export interface Finding {
  check: 'ulvsd' | 'forwarding' | 'vip' | 'dip' | 'gateway' | 'clients';
  status: Status;
  detail: string;
}

const mask = (len: number) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
const within = (a: string, net: HostAddr) => ((parseIPv4(a) >>> 0) & mask(net.prefixlen)) === ((parseIPv4(net.local) >>> 0) & mask(net.prefixlen));
const netOf = (n: HostAddr) => `${formatIPv4(((parseIPv4(n.local) >>> 0) & mask(n.prefixlen)) >>> 0)}/${n.prefixlen}`;

/** See the file header. */
export function checkDirector(f: Facts): Finding[] {
  const out: Finding[] = [];
  if (f.unreachable !== null) out.push({ check: 'ulvsd', status: 'fail', detail: f.unreachable });
  else out.push({ check: 'ulvsd', status: 'ok', detail: `answers; ${f.services.length} service${f.services.length === 1 ? '' : 's'}` });
  out.push(f.ipForward.trim() === '1' ? { check: 'forwarding', status: 'ok', detail: 'net.ipv4.ip_forward = 1' } : { check: 'forwarding', status: 'fail', detail: `net.ipv4.ip_forward = ${f.ipForward.trim() || '?'}: this host does not forward, so no packet reaches a real server or a client; ulvsd sets it at start, something reset it: sysctl -w net.ipv4.ip_forward=1` });
  if (f.unreachable !== null) {
    for (const check of ['vip', 'dip', 'gateway', 'clients'] as const) out.push({ check, status: 'skipped', detail: 'needs ulvsd' });
    return out;
  }
  out.push(...vipFindings(f), ...dipFindings(f), ...gatewayFindings(f), clientFinding(f));
  return out;
}

function vipFindings(f: Facts): Finding[] {
  const vips = [...new Set(f.services.map((s) => s.address))];
  if (vips.length === 0) return [{ check: 'vip', status: 'note', detail: 'no service: nothing to check' }];
  return vips.map((v): Finding => {
    const own = f.addrs.find((a) => a.local === v);
    if (own) return { check: 'vip', status: 'ok', detail: `VIP ${v} is an address of the director (${own.ifname})` };
    const on = f.addrs.find((a) => within(v, a));
    if (on) return { check: 'vip', status: 'fail', detail: `VIP ${v} is on the director's network ${netOf(on)} (${on.ifname}) but is not an address of the director: hosts there ask for it by ARP and nobody answers; add it (ip addr add ${v}/32 dev ${on.ifname}) or take it out of that network` };
    return { check: 'vip', status: 'note', detail: `VIP ${v} is not an address of the director: the clients' routers must route it to the director (ulvs takes it from there)` };
  });
}

const masqServers = (f: Facts): ServerFacts[] => {
  const seen = new Map<string, ServerFacts>();
  for (const s of f.services)
    for (const r of s.servers) {
      if (r.method !== 'masq') continue;
      const x = seen.get(r.address);
      seen.set(r.address, x ? { ...x, unanswered: x.unanswered + r.unanswered, conns: x.conns + r.conns } : { ...r });
    }
  return [...seen.values()];
};

function dipFindings(f: Facts): Finding[] {
  const rs = masqServers(f);
  if (rs.length === 0) return [{ check: 'dip', status: 'note', detail: 'no masqueraded (VS/NAT) real server' }];
  return rs.map((r): Finding => {
    const rt = f.routes[r.address] ?? { error: 'not looked up' };
    if (rt.error !== undefined) return { check: 'dip', status: 'fail', detail: `real server ${r.address}: the director has no route to it (${rt.error}): give the director an address on its network (the DIP)` };
    if (rt.type === 'local') return { check: 'dip', status: 'fail', detail: `real server ${r.address} is an address of the director itself: VS/NAT needs a separate host` };
    if (rt.gateway !== undefined) return { check: 'dip', status: 'fail', detail: `real server ${r.address} is reached through the gateway ${rt.gateway} (${rt.dev}): the director and it share no network, so the director holds no DIP on its network to be its default gateway; give the director an address on the real server's network (the DIP)` };
    return { check: 'dip', status: 'ok', detail: `real server ${r.address} is on the director's network on ${rt.dev}, DIP ${rt.prefsrc ?? '?'}` };
  });
}

function gatewayFindings(f: Facts): Finding[] {
  const rs = masqServers(f);
  if (rs.length === 0) return [{ check: 'gateway', status: 'note', detail: 'no masqueraded (VS/NAT) real server' }];
  return rs.map((r): Finding => {
    const dip = f.routes[r.address]?.prefsrc ?? 'the DIP';
    if (r.unanswered > 0) return { check: 'gateway', status: 'fail', detail: `real server ${r.address}: ${r.unanswered} connection${r.unanswered === 1 ? '' : 's'} got no reply through the director (ulvs_backend_unanswered_total): its default gateway is probably not ${dip}, or the client is on its network (see clients); set its default route via ${dip}, then zero the count (ulvsadm -Z) and look again` };
    if (r.conns > 0) return { check: 'gateway', status: 'ok', detail: `real server ${r.address} answered through the director (${r.conns} connection${r.conns === 1 ? '' : 's'}, none unanswered)` };
    return { check: 'gateway', status: 'note', detail: `real server ${r.address} has had no connection yet: whether its default gateway is ${dip} shows once clients connect` };
  });
}

function clientFinding(f: Facts): Finding {
  const rsNets = f.addrs.filter((a) => masqServers(f).some((r) => within(r.address, a)));
  const clients = [...new Set(f.clients)];
  for (const c of clients) {
    const net = rsNets.find((n) => within(c, n));
    if (net) return { check: 'clients', status: 'fail', detail: `client ${c} is on the real servers' network ${netOf(net)} (${net.ifname}): a real server answers it directly, not through the director, so its connections never complete; clients must reach the VIP from another network` };
  }
  if (clients.length === 0) return { check: 'clients', status: 'note', detail: 'no connection in the table: no client to check' };
  return { check: 'clients', status: 'ok', detail: `${clients.length} client address${clients.length === 1 ? '' : 'es'} in the connection table, none on a real server's network` };
}

/** The report: one line per finding, `check  status  detail`. */
export function formatFindings(list: readonly Finding[]): string {
  return list.map((x) => `${x.check.padEnd(10)} ${x.status.padEnd(7)} ${x.detail}\n`).join('');
}
