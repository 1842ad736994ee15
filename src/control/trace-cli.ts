/**
 * `ulvsadm --trace` — ulvs's own: a live trace of the packets of a client, a service or a real
 * server, streamed from ulvsd's workers over GET /v1/trace (trace-api.ts):
 *
 *   ulvsadm --trace [--client ADDR[:PORT]] [-t|-u VIP[:PORT]] [--server RIP[:PORT]]
 *                   [--count N] [--seconds S] [--json]
 *
 * At least one of --client, -t/-u, --server. Bounded by --count (default 100) and --seconds
 * (default 60); ulvsd caps both (trace-api.ts MAX_COUNT, MAX_SECONDS). Exit 0 when the trace
 * ran, 2 for a bad command line (nothing asked), 255 when ulvsd refused (its message).
 */
import type { AdminReply } from './admin-client.js';
import { MAX_COUNT, MAX_SECONDS, parseAddrOptPort } from './trace-api.js';

export type StreamApi = (path: string, onData: (chunk: string) => void) => Promise<AdminReply>;
type Io = { out(s: string): void; err(s: string): void };

/** The query string of the command line after `--trace`, or the error message (exit 2). */
export function parseTraceArgs(argv: readonly string[]): URLSearchParams | string {
  const q = new URLSearchParams();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    const [name, attached] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, undefined];
    const value = () => attached ?? argv[++i];
    const endpoint = (key: string, what: string) => {
      const v = value();
      if (v === undefined || parseAddrOptPort(v) === null) return `illegal ${what} address[:port] specified`;
      if (q.has(key)) return `${what} given twice`;
      q.set(key, v);
      return null;
    };
    const int = (key: string, max: number) => {
      const v = value();
      if (v === undefined || !/^\d{1,9}$/.test(v) || Number(v) < 1 || Number(v) > max) return `--${key} must be an integer 1-${max}`;
      q.set(key, v);
      return null;
    };
    let err: string | null = null;
    if (name === '--json') q.set('format', 'json');
    else if (name === '--client') err = endpoint('client', 'client');
    else if (name === '--server') err = endpoint('server', 'real server');
    else if (name === '-t' || name === '--tcp-service' || name === '-u' || name === '--udp-service') {
      err = endpoint('service', 'virtual server');
      if (err === null) q.set('protocol', name === '-t' || name === '--tcp-service' ? 'tcp' : 'udp');
    } else if (name === '--count') err = int('count', MAX_COUNT);
    else if (name === '--seconds') err = int('seconds', MAX_SECONDS);
    else err = `unknown option for --trace: ${JSON.stringify(a)}`;
    if (err !== null) return err;
  }
  if (!q.has('client') && !q.has('service') && !q.has('server')) return '--trace needs a filter: --client ADDR[:PORT], -t/-u VIP[:PORT] or --server RIP[:PORT]';
  return q;
}

/** Run `--trace ARGS`, writing the stream as it comes; returns the exit status. */
export async function traceCommand(argv: readonly string[], stream: StreamApi, io: Io): Promise<number> {
  const q = parseTraceArgs(argv);
  if (typeof q === 'string') {
    io.err(`ulvsadm --trace: ${q}\n`);
    return 2;
  }
  const r = await stream(`/v1/trace?${q}`, (c) => io.out(c));
  if (r.status === 200) return 0;
  const err = (r.json as { error?: { code?: string; message?: string } } | null)?.error;
  io.err(`ulvsadm --trace: ${err?.message ?? `ulvsd answered ${r.status}`}\n`);
  return err?.code === 'validation' ? 2 : 255;
}
