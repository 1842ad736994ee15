/**
 * The admin API's live trace (issue 15):
 *
 *   GET /v1/trace?[protocol=tcp|udp][&client=ADDR[:PORT]][&service=VIP[:PORT]]
 *                [&server=RIP[:PORT]][&count=N][&seconds=S][&format=json]
 *
 * At least one of client, service, server. The answer streams: text blocks (or one JSON object
 * a line with format=json) for each matching packet as the workers record them
 * (trace-format.ts), polled every POLL_MS, until `count` records (default 100, at most
 * MAX_COUNT), `seconds` (default 60, at most MAX_SECONDS) or the client hangs up; the last line
 * says why it ended, how many records and how many were lost. Records a worker could not keep
 * because this reader was slow (its ring full) are reported as they are noticed ("N records
 * lost"). One trace at a time: another gets 409 EBUSY. Errors before the stream starts: 400
 * validation.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { IpvsError } from '../core/errors.js';
import { Kind, Rec, REC } from '../core/trace/packet-trace.js';
import { compileFilter, type TraceFilterSpec } from '../core/trace/trace-filter.js';
import { tryParseIPv4 } from '../wire/addr.js';
import { ExplainQueryError } from './explain-api.js';
import { formatRecord } from './trace-format.js';

export const MAX_COUNT = 100_000;
export const MAX_SECONDS = 3600;
const POLL_MS = 100;

/** What the daemon gives the trace: every worker's PacketTrace, and its routes. */
export interface TraceBackend {
  tun: string;
  start(filter: number[], budget: number): Promise<void>;
  /** each worker's records since the last read; `origin`: its clock's origin, ms since the epoch */
  read(): Promise<{ records: Int32Array; lost: number; on: boolean; origin: number }[]>;
  stop(): Promise<void>;
  /** where the director routes `addr` ("dev X via G"), or null */
  route(addr: number): Promise<string | null>;
}

export interface TraceRequest {
  filter: TraceFilterSpec;
  count: number;
  seconds: number;
  json: boolean;
}

/** ADDR or ADDR:PORT (dotted IPv4), or null. */
export function parseAddrOptPort(s: string): { addr: number; port?: number } | null {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?::(\d{1,5}))?$/.exec(s);
  if (m === null) return null;
  const addr = tryParseIPv4(m[1]!);
  if (addr < 0 || (m[2] !== undefined && Number(m[2]) > 65535)) return null;
  return m[2] === undefined ? { addr } : { addr, port: Number(m[2]) };
}

/** The trace of a request's search parameters; throws ExplainQueryError (400 validation). */
export function traceQuery(p: URLSearchParams): TraceRequest {
  for (const k of p.keys()) if (!['protocol', 'client', 'service', 'server', 'count', 'seconds', 'format'].includes(k)) throw new ExplainQueryError(`unknown parameter ${JSON.stringify(k)}`);
  const filter: TraceFilterSpec = {};
  const protocol = p.get('protocol');
  if (protocol !== null) {
    if (protocol !== 'tcp' && protocol !== 'udp') throw new ExplainQueryError('protocol: must be tcp or udp');
    filter.proto = protocol === 'tcp' ? 6 : 17;
  }
  for (const k of ['client', 'service', 'server'] as const) {
    const v = p.get(k);
    if (v === null) continue;
    const e = parseAddrOptPort(v);
    if (e === null) throw new ExplainQueryError(`${k}: must be ADDR or ADDR:PORT (dotted IPv4, port 0-65535)`);
    filter[k] = e;
  }
  if (!filter.client && !filter.service && !filter.server) throw new ExplainQueryError('a trace needs a filter: client, service or server');
  const int = (k: string, dflt: number, max: number) => {
    const v = p.get(k);
    if (v === null) return dflt;
    if (!/^\d{1,9}$/.test(v) || Number(v) < 1 || Number(v) > max) throw new ExplainQueryError(`${k}: must be an integer 1-${max}`);
    return Number(v);
  };
  const format = p.get('format');
  if (format !== null && format !== 'json' && format !== 'text') throw new ExplainQueryError('format: must be json or text');
  return { filter, count: int('count', 100, MAX_COUNT), seconds: int('seconds', 60, MAX_SECONDS), json: format === 'json' };
}

/** the backends with a trace running: one at a time each */
const busy = new WeakSet<TraceBackend>();

/** Serve GET /v1/trace; throws (before anything is written) for a bad request or a busy backend. */
export async function serveTrace(backend: TraceBackend, p: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const t = traceQuery(p);
  if (busy.has(backend)) throw new IpvsError('EBUSY', 'a trace is already running (one at a time)');
  busy.add(backend);
  try {
    await run(backend, t, req, res);
  } finally {
    busy.delete(backend);
  }
}

async function run(backend: TraceBackend, t: TraceRequest, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await backend.start(compileFilter(t.filter), t.count);
  let closed = false;
  res.on('close', () => (closed = true));
  req.on('close', () => (closed = true));
  res.writeHead(200, { 'content-type': t.json ? 'application/x-ndjson' : 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  const emit = (text: string, json: object) => res.write(t.json ? `${JSON.stringify(json)}\n` : text);
  emit(`tracing up to ${t.count} packets for ${t.seconds} s (the kernel fast path's flows: their offload, then its counters every 0.5 s)\n`, { kind: 'start', count: t.count, seconds: t.seconds });
  const routes = new Map<number, string | null>();
  const deadline = Date.now() + t.seconds * 1000;
  let written = 0;
  let lost = 0;
  let why = 'time is up';
  try {
    for (;;) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      const all = await backend.read();
      // where the forwarded packets went: the route of each new destination, asked once
      for (const w of all)
        for (let o = 0; o < w.records.length; o += REC) {
          if (w.records[o + Rec.kind] !== Kind.Packet) continue;
          for (const a of [w.records[o + Rec.aDaddr]!, w.records[o + Rec.daddr]!]) if (a !== 0 && !routes.has(a)) routes.set(a, await backend.route(a));
        }
      for (let i = 0; i < all.length && written < t.count; i++) {
        const w = all[i]!;
        for (let o = 0; o < w.records.length && written < t.count; o += REC) {
          const line = formatRecord(w.records, o, { worker: i, origin: w.origin, tun: backend.tun }, (a) => routes.get(a) ?? null);
          emit(line.text, line.json);
          written++;
        }
        if (w.lost > 0) {
          lost += w.lost;
          emit(`worker ${i}: ${w.lost} records lost (this reader was slow; the ring holds its records until read)\n`, { kind: 'lost', worker: i, records: w.lost });
        }
      }
      if (written >= t.count) why = `${t.count} records`;
      else if (closed) why = 'the client went away';
      else if (Date.now() < deadline) continue;
      break;
    }
  } finally {
    await backend.stop();
  }
  emit(`trace ended (${why}): ${written} records, ${lost} lost\n`, { kind: 'end', reason: why, records: written, lost });
  res.end();
}
