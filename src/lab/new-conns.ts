/**
 * Legitimate new connections at a fixed rate, open loop (runs in a client namespace; used by
 * bench/flood.ts): every 1000 / --rate ms, for --seconds, a new TCP connection to HOST:PORT
 * sends `GET / HTTP/1.0` and waits for a "200" status line and the server's close, at most
 * --timeout ms (the kernel's SYN retransmissions, 1 s then 2 s, happen inside that time).
 * Attempts do not wait for each other: a stalled one does not delay the next. SIGINT stops
 * it early: no new attempt, the pending ones are awaited and the line printed.
 * Prints one JSON line at the end: {"probes": [[start, ms], ...]} with `start` in ms since the
 * epoch (Date.now, to line up with the flood's own times) and `ms` the time to the answer, or
 * -1 when it failed or timed out.
 */
import { connect } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '203.0.113.10' },
    port: { type: 'string', default: '80' },
    rate: { type: 'string', default: '20' },
    seconds: { type: 'string', default: '10' },
    timeout: { type: 'string', default: '3000' },
  },
});
const RATE = Number(values.rate);
const SECONDS = Number(values.seconds);
const TIMEOUT = Number(values.timeout);
for (const [k, v] of [['rate', RATE], ['seconds', SECONDS], ['timeout', TIMEOUT]] as const) {
  if (!(v > 0)) {
    process.stderr.write(`new-conns: --${k} is a positive number\n`);
    process.exit(2);
  }
}
const host = values.host!;
const port = Number(values.port);
const REQUEST = `GET / HTTP/1.0\r\nHost: ${host}\r\n\r\n`;

/** One attempt; resolves with its latency in ms, or -1. */
function attempt(): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let head = '';
    let settled = false;
    const done = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(ok ? Math.round((performance.now() - t0) * 10) / 10 : -1);
    };
    const sock = connect({ host, port }, () => sock.write(REQUEST));
    const timer = setTimeout(() => done(false), TIMEOUT);
    sock.on('data', (d: Buffer) => {
      if (head.length < 16) head += d.toString('latin1');
    });
    sock.on('end', () => done(/^HTTP\/1\.\d 200/.test(head)));
    sock.on('error', () => done(false));
  });
}

const probes: [number, number][] = [];
const pending: Promise<void>[] = [];
const total = Math.round(RATE * SECONDS);
const t0 = performance.now();
const epoch0 = Date.now();
let stopping = false;
process.on('SIGINT', () => (stopping = true));
for (let i = 0; i < total && !stopping; i++) {
  const due = (i * 1000) / RATE;
  const wait = due - (performance.now() - t0);
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  if (stopping) break;
  const start = epoch0 + Math.round(performance.now() - t0);
  const slot: [number, number] = [start, -1];
  probes.push(slot);
  pending.push(attempt().then((ms) => void (slot[1] = ms)));
}
await Promise.all(pending);
process.stdout.write(`${JSON.stringify({ probes })}\n`);
