/**
 * What `ulvs doctor` looks at on a live director (run it where ulvsd runs: the same host or
 * network namespace, as root): ulvsd's services, servers and connections over its admin socket,
 * net.ipv4.ip_forward, the host's IPv4 addresses (`ip -j -4 addr`) and the route to each
 * masqueraded real server (`ip -j -4 route get`). checks.ts judges them.
 *
 *   gatherFacts(socket) -> Facts   never throws: what cannot be read is recorded as such
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { callAdmin } from '../control/admin-client.js';
import { unreachableMessage } from '../control/admin-unreachable.js';
import type { Facts, HostAddr, RouteTo } from './checks.js';

interface ServerJson {
  address: string;
  port: number;
  method: string;
  weight: number;
  unanswered?: number;
  counters: number[];
}
interface ServiceJson {
  protocol: string;
  address: string;
  port: number;
  servers: ServerJson[];
}

const ipJson = (args: string[]): unknown => JSON.parse(execFileSync('ip', ['-j', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) || '[]');

function hostAddrs(): HostAddr[] {
  try {
    const links = ipJson(['-4', 'addr', 'show']) as { ifname: string; addr_info?: { local: string; prefixlen: number; family: string }[] }[];
    return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => ({ ifname: l.ifname, local: a.local, prefixlen: a.prefixlen })));
  } catch {
    return [];
  }
}

function routeTo(addr: string): RouteTo {
  try {
    const [r] = ipJson(['-4', 'route', 'get', addr]) as { dev?: string; gateway?: string; prefsrc?: string; type?: string }[];
    if (!r) return { error: 'no route' };
    return { ...(r.dev && { dev: r.dev }), ...(r.gateway && { gateway: r.gateway }), ...(r.prefsrc && { prefsrc: r.prefsrc }), ...(r.type && { type: r.type }) };
  } catch (e) {
    const err = (e as { stderr?: string }).stderr?.trim() || (e as Error).message;
    return { error: err.split('\n')[0]! };
  }
}

/** See the file header. */
export async function gatherFacts(socket: string): Promise<Facts> {
  let ipForward = '?';
  try {
    ipForward = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8');
  } catch {
    /* recorded as '?' */
  }
  const facts: Facts = { unreachable: null, services: [], clients: [], ipForward, addrs: hostAddrs(), routes: {} };
  try {
    const svc = await callAdmin(socket, 'GET', '/v1/services');
    const conns = await callAdmin(socket, 'GET', '/v1/connections');
    facts.services = (svc.json as ServiceJson[]).map((s) => ({ protocol: s.protocol, address: s.address, port: s.port, servers: s.servers.map((r) => ({ address: r.address, port: r.port, method: r.method, weight: r.weight, unanswered: r.unanswered ?? 0, conns: r.counters[0] ?? 0 })) }));
    facts.clients = (conns.json as { client: string; template?: boolean }[]).filter((c) => !c.template).map((c) => c.client.replace(/:\d+$/, ''));
  } catch (e) {
    facts.unreachable = unreachableMessage(socket, e as NodeJS.ErrnoException);
    return facts;
  }
  for (const s of facts.services) for (const r of s.servers) if (r.method === 'masq' && !(r.address in facts.routes)) facts.routes[r.address] = routeTo(r.address);
  return facts;
}
