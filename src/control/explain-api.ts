/**
 * The admin API's explain (issue 15): which real server a flow gets and why, from the engine
 * that owns the flow, changing nothing (core/explain.ts runs the packet path's own decide() and
 * the scheduler's dry run).
 *
 *   GET /v1/explain?protocol=tcp|udp&service=VIP:PORT&client=ADDR:PORT[&flags=SYN,ACK,...]
 *
 * 200: the Explanation with the query echoed and the worker asked. Errors ({"error": {code,
 * message}}): 400 validation (a missing or malformed parameter, flags on UDP, an unknown flag
 * name), 404 ESRCH "No such service" when no virtual service takes the flow (the explanation's
 * reason is the message). `flags`: TCP flag names, comma separated, case-insensitive; default
 * SYN (a new connection's first segment).
 */
import type { Explanation, FlowQuery } from '../core/director.js';
import { IpvsError } from '../core/errors.js';
import { tryParseIPv4 } from '../wire/addr.js';
import { TcpFlag } from '../wire/tcp.js';

/** What the daemon gives the API: the explanation from the worker owning the flow. */
export type ExplainBackend = (q: FlowQuery) => Promise<{ worker: number; explanation: Explanation }>;

/** A request's parameters were not usable: 400 validation with this message (admin.ts maps an
 *  IpvsError's code to its status; 'validation' is a 400). */
export class ExplainQueryError extends IpvsError {
  constructor(message: string) {
    super('validation', message);
  }
}

const PROTO: Record<string, number> = { tcp: 6, udp: 17 };

/** ADDR:PORT with a dotted IPv4 address and a decimal port 0..65535, or null. */
export function parseAddrPort(s: string): { addr: number; port: number } | null {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(s);
  if (m === null) return null;
  const addr = tryParseIPv4(m[1]!);
  const port = Number(m[2]);
  return addr < 0 || port > 65535 ? null : { addr, port };
}

/** TCP flag names ("SYN,ACK") to their bits; throws ExplainQueryError naming a bad one. */
export function parseTcpFlags(s: string): number {
  let bits = 0;
  for (const w of s.split(',')) {
    const name = w.trim().toUpperCase();
    if (!Object.hasOwn(TcpFlag, name)) throw new ExplainQueryError(`flags: unknown TCP flag ${JSON.stringify(w)} (known: ${Object.keys(TcpFlag).join(', ')})`);
    bits |= TcpFlag[name as keyof typeof TcpFlag];
  }
  return bits;
}

/** The FlowQuery of a request's search parameters; throws ExplainQueryError. */
export function explainQuery(p: URLSearchParams): FlowQuery {
  for (const k of p.keys()) if (!['protocol', 'service', 'client', 'flags'].includes(k)) throw new ExplainQueryError(`unknown parameter ${JSON.stringify(k)}`);
  const protocol = p.get('protocol') ?? '';
  if (!Object.hasOwn(PROTO, protocol)) throw new ExplainQueryError('protocol: must be tcp or udp');
  const svc = parseAddrPort(p.get('service') ?? '');
  if (svc === null) throw new ExplainQueryError('service: must be VIP:PORT (dotted IPv4, port 0-65535)');
  const client = parseAddrPort(p.get('client') ?? '');
  if (client === null) throw new ExplainQueryError('client: must be ADDR:PORT (dotted IPv4, port 0-65535)');
  const q: FlowQuery = { proto: PROTO[protocol]!, caddr: client.addr, cport: client.port, vaddr: svc.addr, vport: svc.port };
  const flags = p.get('flags');
  if (flags !== null) {
    if (q.proto !== 6) throw new ExplainQueryError('flags: only for tcp');
    q.tcpFlags = parseTcpFlags(flags);
  }
  return q;
}

/** Answer one explain request: the JSON body of a 200, or throws IpvsError ESRCH /
 *  ExplainQueryError for the API's error mapping. */
export async function explainRequest(backend: ExplainBackend, p: URLSearchParams): Promise<object> {
  const q = explainQuery(p);
  const { worker, explanation } = await backend(q);
  if (explanation.path === 'no-service') throw new IpvsError('ESRCH', `No such service: ${explanation.reason}`);
  return { query: { protocol: p.get('protocol'), service: p.get('service'), client: p.get('client'), flags: q.tcpFlags ?? null }, worker, ...explanation };
}
