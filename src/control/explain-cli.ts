/**
 * `ulvsadm --explain` — ulvs's own (ipvsadm has no such command): which real server a flow gets
 * and why, asked of the engine that owns the flow over GET /v1/explain (explain-api.ts),
 * changing nothing:
 *
 *   ulvsadm --explain -t|-u VIP:PORT --client ADDR:PORT [--flags SYN,ACK,...] [--json]
 *
 * `--flags` (TCP only): the segment's flags, default SYN (a new connection). `--json`: the API's
 * JSON as is. Exit statuses as ipvsadm's: 0 answered; 2 a bad command line (ipvsadm's
 * "illegal virtual server address[:port] specified" for a bad service); 1 no such service (as
 * `ipvsadm -L -t` of an unknown service: "No such service").
 */
import type { AdminReply } from './admin-client.js';
import { parseAddrPort, parseTcpFlags } from './explain-api.js';
import type { Explanation } from '../core/director.js';

export type AdminApi = (method: string, path: string, body?: object) => Promise<AdminReply>;
type Io = { out(s: string): void; err(s: string): void };

export interface ExplainArgs {
  protocol: 'tcp' | 'udp';
  service: string;
  client: string;
  flags?: string;
  json: boolean;
}

/** The command line after `--explain`; a string is the error message (exit 2). */
export function parseExplainArgs(argv: readonly string[]): ExplainArgs | string {
  let protocol: 'tcp' | 'udp' | undefined;
  let service: string | undefined;
  let client: string | undefined;
  let flags: string | undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [name, attached] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = () => attached ?? argv[++i];
    if (name === '--json') json = true;
    else if (name === '-t' || name === '--tcp-service' || name === '-u' || name === '--udp-service') {
      if (protocol !== undefined) return 'only one service (-t or -u) may be given';
      protocol = name === '-t' || name === '--tcp-service' ? 'tcp' : 'udp';
      service = value();
      if (service === undefined || parseAddrPort(service) === null) return 'illegal virtual server address[:port] specified';
    } else if (name === '--client') {
      client = value();
      if (client === undefined || parseAddrPort(client) === null) return 'illegal client address:port specified (--client ADDR:PORT, dotted IPv4)';
    } else if (name === '--flags') {
      flags = value();
      if (flags === undefined) return '--flags needs a value (TCP flag names, comma separated: SYN,ACK)';
      try {
        parseTcpFlags(flags);
      } catch (e) {
        return (e as Error).message;
      }
    } else return `unknown option for --explain: ${JSON.stringify(a)}`;
  }
  if (protocol === undefined || service === undefined) return '--explain needs a service: -t VIP:PORT or -u VIP:PORT';
  if (client === undefined) return '--explain needs --client ADDR:PORT';
  if (flags !== undefined && protocol !== 'tcp') return '--flags is for TCP services only';
  return { protocol, service, client, ...(flags !== undefined && { flags }), json };
}

/** The explanation as text for a person. */
export function formatExplanation(e: Explanation & { worker: number; query: { client: string } }): string {
  const lines = [`${e.service ?? '?'}  client ${e.query.client}  (worker ${e.worker})`];
  const verdict = e.verdict === 'forward' ? `-> ${e.dest}` : e.verdict === 'icmp' ? '-> ICMP port unreachable to the client' : e.verdict === 'pass' ? '-> host stack (passed unchanged)' : '-> dropped';
  lines.push(`  ${verdict}   [${e.path}${e.scheduler ? `, scheduler ${e.scheduler}` : ''}]`);
  lines.push(`  why: ${e.reason}`);
  if (e.expires) lines.push(`  first: ${e.expires}`);
  for (const s of e.skipped ?? []) lines.push(`  skipped: ${s.server} (${s.why === 'quiesced' ? 'quiesced, weight 0' : 'overloaded, over its upper threshold'})`);
  if (e.servers && e.servers.length > 0) {
    lines.push('  servers (this worker\'s counts):');
    for (const s of e.servers) lines.push(`    ${s.server.padEnd(21)} weight ${String(s.weight).padStart(5)}  active ${String(s.active).padStart(6)}  inactive ${String(s.inactive).padStart(6)}${s.overloaded ? '  overloaded' : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Run `--explain ARGS`; returns the exit status. */
export async function explainCommand(argv: readonly string[], api: AdminApi, io: Io): Promise<number> {
  const a = parseExplainArgs(argv);
  if (typeof a === 'string') {
    io.err(`ulvsadm --explain: ${a}\n`);
    return 2;
  }
  const q = new URLSearchParams({ protocol: a.protocol, service: a.service, client: a.client, ...(a.flags !== undefined && { flags: a.flags }) });
  const r = await api('GET', `/v1/explain?${q}`);
  if (r.status !== 200) {
    const err = (r.json as { error?: { code?: string; message?: string } } | null)?.error;
    if (err?.code === 'ESRCH') {
      io.err('No such service\n');
      return 1;
    }
    io.err(`ulvsadm --explain: ${err?.message ?? `ulvsd answered ${r.status}`}\n`);
    return err?.code === 'validation' ? 2 : 255;
  }
  io.out(a.json ? `${JSON.stringify(r.json)}\n` : formatExplanation(r.json));
  return 0;
}
