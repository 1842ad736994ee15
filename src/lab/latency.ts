/**
 * Open-loop HTTP latency at a fixed rate (used by `npm run bench`; runs in a client namespace).
 *   --host H --port P --rate R --seconds S --connections C
 * C keep-alive TCP connections; request i is due at start + i/R and goes out on connection
 * i mod C as soon as that connection is free (HTTP/1.1 without pipelining). Latency is measured
 * from the due time, not the send time, so a stall is charged to every request it delays
 * (no coordinated omission). The server must answer `GET /` with a body ending in "\n" and a
 * Content-Length (nginx `return 200 "ok\n"` in the test bed). Prints one JSON line:
 * {"sent","answered","p50_ms","p90_ms","p99_ms","max_ms","errors"}.
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '203.0.113.10' },
    port: { type: 'string', default: '80' },
    rate: { type: 'string', default: '1000' },
    seconds: { type: 'string', default: '5' },
    connections: { type: 'string', default: '16' },
  },
});
const RATE = Number(values.rate);
const TOTAL = Math.round(RATE * Number(values.seconds));
const C = Number(values.connections);
const REQUEST = Buffer.from(`GET / HTTP/1.1\r\nHost: ${values.host}\r\n\r\n`);

interface Conn {
  sock: Socket;
  /** due times (ms, performance.now) of requests waiting for this connection, oldest first */
  queue: number[];
  busy: boolean;
  buf: string;
}
const latencies = new Float64Array(TOTAL);
let answered = 0;
let errors = 0;
let sent = 0;

/** One complete response in `buf`: headers, then Content-Length bytes. Returns its length or 0. */
function responseLength(buf: string): number {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return 0;
  const m = /content-length:\s*(\d+)/i.exec(buf.slice(0, end));
  const len = end + 4 + (m ? Number(m[1]) : 0);
  return buf.length >= len ? len : 0;
}

function pump(c: Conn): void {
  if (c.busy || c.queue.length === 0) return;
  c.busy = true;
  c.sock.write(REQUEST);
}

const conns: Conn[] = await Promise.all(
  Array.from(
    { length: C },
    () =>
      new Promise<Conn>((resolve, reject) => {
        const sock = connect({ host: values.host!, port: Number(values.port), noDelay: true }, () => resolve(c));
        const c: Conn = { sock, queue: [], busy: false, buf: '' };
        sock.setEncoding('latin1');
        sock.on('data', (d: string) => {
          c.buf += d;
          for (let n = responseLength(c.buf); n > 0; n = responseLength(c.buf)) {
            c.buf = c.buf.slice(n);
            const due = c.queue.shift()!;
            latencies[answered++] = performance.now() - due;
            c.busy = false;
          }
          pump(c);
        });
        sock.on('error', (e) => {
          errors++;
          reject(e);
        });
      }),
  ),
);

const t0 = performance.now() + 20;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    while (sent < TOTAL && t0 + (sent * 1000) / RATE <= now) {
      const c = conns[sent % C]!;
      c.queue.push(t0 + (sent * 1000) / RATE);
      sent++;
      pump(c);
    }
    if (sent < TOTAL) setTimeout(tick, 1);
    else resolve();
  };
  tick();
});
const deadline = performance.now() + 5000;
while (answered < sent && performance.now() < deadline) await new Promise((r) => setTimeout(r, 10));
for (const c of conns) c.sock.destroy();

const xs = latencies.subarray(0, answered).sort();
const q = (p: number) => (answered ? Number(xs[Math.min(answered - 1, Math.floor(p * answered))]!.toFixed(3)) : null);
process.stdout.write(`${JSON.stringify({ sent, answered, p50_ms: q(0.5), p90_ms: q(0.9), p99_ms: q(0.99), max_ms: answered ? Number(xs[answered - 1]!.toFixed(3)) : null, errors: errors + (sent - answered) })}\n`);
