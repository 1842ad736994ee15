/**
 * The dashboard's live stream (GET /v1/events on the metrics listener, http.ts): server-sent
 * events, one `data:` message per STREAM_PERIOD_MS carrying the JSON status
 * (metrics/status.ts). One status is taken per tick for all clients, and only while a client
 * is connected, so a stream costs one engine snapshot a second however many pages are open.
 *
 * Bounds: at most `max` clients at once; another is answered 503 with Retry-After and counted
 * (`refused`). A client that does not read (its socket's buffer over MAX_BUFFERED bytes) is
 * disconnected and counted (`dropped`). A tick whose status cannot be taken is counted
 * (`failed`) and sent as an `event: error` message; the stream goes on.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export const MAX_STREAMS = 8;
export const STREAM_PERIOD_MS = 1000;
/** bytes queued to one client before it is dropped (a few statuses: 100 services of 10 servers
 *  make about 270 KiB) */
export const MAX_BUFFERED = 1 << 20;

export interface StreamCounters {
  /** streams accepted since start */
  opened: number;
  /** streams refused: `max` clients connected already */
  refused: number;
  /** clients disconnected for not reading */
  dropped: number;
  /** ticks whose status could not be taken */
  failed: number;
}

export class DashboardStream {
  readonly #clients = new Set<ServerResponse>();
  readonly counters: StreamCounters = { opened: 0, refused: 0, dropped: 0, failed: 0 };
  #timer: NodeJS.Timeout | null = null;
  #busy = false;
  #closed = false;

  constructor(
    /** the status as JSON text, taken once per tick */
    readonly status: () => Promise<string>,
    readonly max = MAX_STREAMS,
    readonly periodMs = STREAM_PERIOD_MS,
  ) {}

  /** clients connected now */
  get clients(): number {
    return this.#clients.size;
  }

  /** Answer one GET: the stream, or 503 when `max` clients are connected already. */
  open(req: IncomingMessage, res: ServerResponse): void {
    if (this.#closed || this.#clients.size >= this.max) {
      this.counters.refused++;
      res.writeHead(503, { 'content-type': 'text/plain', 'retry-after': '5' });
      res.end(`too many dashboard streams (${this.max} connected): try again later\n`);
      return;
    }
    this.counters.opened++;
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
    res.write('retry: 2000\n\n'); // EventSource reconnects after 2 s when the stream ends
    this.#clients.add(res);
    const gone = () => this.#clients.delete(res);
    req.on('close', gone);
    res.on('close', gone);
    res.on('error', gone);
    this.#timer ??= setInterval(() => this.#tick(), this.periodMs).unref();
    this.#tick(); // the first status at once
  }

  /** End every stream and refuse new ones (the listener is closing). */
  close(): void {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    for (const c of this.#clients) c.end();
    this.#clients.clear();
  }

  #tick(): void {
    if (this.#clients.size === 0) {
      if (this.#timer) clearInterval(this.#timer);
      this.#timer = null;
      return;
    }
    if (this.#busy) return; // the previous status is still being taken
    this.#busy = true;
    this.status().then(
      (json) => this.#send(`data: ${json}\n\n`),
      (e: Error) => {
        this.counters.failed++;
        this.#send(`event: error\ndata: ${JSON.stringify({ error: e.message })}\n\n`);
      },
    ).finally(() => (this.#busy = false));
  }

  #send(msg: string): void {
    for (const c of this.#clients) {
      if (c.writableLength > MAX_BUFFERED) {
        this.counters.dropped++;
        this.#clients.delete(c);
        c.destroy();
        continue;
      }
      c.write(msg);
    }
  }
}
