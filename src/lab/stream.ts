/**
 * Long-lived streaming TCP connections for the restart tests (test/integration/restart.test.ts).
 *
 *   node dist/src/lab/stream.js --serve PORT [--corrupt-at N]
 *       an echo server (a real server's program): every byte received is sent back; with
 *       --corrupt-at, byte N (from 0) of each connection's echo is inverted (the control that
 *       shows a client's check catches a changed byte)
 *   node dist/src/lab/stream.js --connect HOST:PORT --conns N [--chunk 1024] [--every-ms 50]
 *       N connections, each writing `chunk` bytes of its own pattern every `every-ms` and checking
 *       every byte echoed back against what it sent (position by position), so a lost, repeated,
 *       reordered or cross-wired byte is a mismatch. Prints JSON lines:
 *         {"event":"established","conns":N}            once every connection is open
 *         {"event":"status", ...}                      on SIGUSR1: per connection bytes received
 *                                                      so far, its local port (which entry of
 *                                                      the director's table it is), errors, and
 *                                                      the longest time without an echo since
 *                                                      the last status (ms)
 *         {"event":"final", ...}                       on SIGUSR2: stop writing, wait (at most
 *                                                      --drain-ms) until every open connection has
 *                                                      its bytes back, report (also per connection:
 *                                                      bytes lost, error), exit 0
 * Resets and closes are counted per connection (`errors`), never retried.
 */
import { createConnection, createServer, type Socket } from 'node:net';
import { Transform } from 'node:stream';
import { parseArgs } from 'node:util';
import { patternByte } from './pattern.js';

const { values } = parseArgs({
  options: {
    serve: { type: 'string' },
    connect: { type: 'string' },
    conns: { type: 'string', default: '1' },
    chunk: { type: 'string', default: '1024' },
    'every-ms': { type: 'string', default: '50' },
    'drain-ms': { type: 'string', default: '30000' },
    'corrupt-at': { type: 'string' },
  },
});
const out = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

if (values.serve) {
  const srv = createServer((s) => {
    s.on('error', () => s.destroy());
    if (values['corrupt-at'] === undefined) return void s.pipe(s);
    const at = Number(values['corrupt-at']);
    let seen = 0;
    const corrupt = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        if (at >= seen && at < seen + chunk.length) chunk[at - seen] ^= 0xff;
        seen += chunk.length;
        cb(null, chunk);
      },
    });
    s.pipe(corrupt).pipe(s);
  });
  srv.listen(Number(values.serve), () => out({ event: 'ready' }));
} else if (values.connect) {
  const [host, port] = values.connect.split(':') as [string, string];
  const n = Number(values.conns);
  const chunk = Number(values.chunk);
  const every = Number(values['every-ms']);
  /** one connection's books: bytes written, bytes echoed and checked, mismatches, error */
  interface Conn {
    s: Socket;
    seed: number;
    sent: number;
    recv: number;
    mismatches: number;
    error: string | null;
    open: boolean;
    lastRecv: number;
    maxStall: number;
  }
  const conns: Conn[] = [];
  let established = 0;
  let writing = true;
  const buf = Buffer.alloc(chunk);
  for (let i = 0; i < n; i++) {
    const c: Conn = { s: createConnection({ host, port: Number(port) }), seed: i * 7919, sent: 0, recv: 0, mismatches: 0, error: null, open: false, lastRecv: 0, maxStall: 0 };
    conns.push(c);
    c.s.setNoDelay(true);
    c.s.on('connect', () => {
      c.open = true;
      c.lastRecv = Date.now();
      if (++established === n) out({ event: 'established', conns: n });
    });
    c.s.on('data', (d: Buffer) => {
      for (let k = 0; k < d.length; k++) if (d[k] !== patternByte(c.seed + c.recv + k)) c.mismatches++;
      c.recv += d.length;
      const now = Date.now();
      c.maxStall = Math.max(c.maxStall, now - c.lastRecv);
      c.lastRecv = now;
    });
    c.s.on('error', (e) => (c.error ??= e.message));
    c.s.on('close', () => {
      c.open = false;
      c.error ??= 'closed';
    });
  }
  const timer = setInterval(() => {
    if (!writing) return;
    for (const c of conns) {
      if (!c.open || c.s.writableLength > 256 * 1024) continue; // the kernel's buffers are full: wait
      for (let k = 0; k < chunk; k++) buf[k] = patternByte(c.seed + c.sent + k);
      c.s.write(Buffer.from(buf));
      c.sent += chunk;
    }
  }, every);
  const summary = () => ({
    conns: n,
    established,
    errors: conns.filter((c) => c.error !== null).length,
    errorSamples: [...new Set(conns.map((c) => c.error).filter(Boolean))].slice(0, 5),
    sent: conns.reduce((a, c) => a + c.sent, 0),
    recv: conns.reduce((a, c) => a + c.recv, 0),
    mismatches: conns.reduce((a, c) => a + c.mismatches, 0),
  });
  process.on('SIGUSR1', () => {
    const now = Date.now();
    out({ event: 'status', ...summary(), perConn: conns.map((c) => c.recv), localPorts: conns.map((c) => c.s.localPort ?? 0), maxStallMs: conns.map((c) => Math.max(c.maxStall, c.open ? now - c.lastRecv : 0)) });
    for (const c of conns) c.maxStall = 0;
  });
  process.on('SIGUSR2', () => {
    writing = false;
    clearInterval(timer);
    const t0 = Date.now();
    const check = setInterval(() => {
      const pending = conns.filter((c) => c.error === null && c.recv < c.sent).length;
      if (pending > 0 && Date.now() - t0 < Number(values['drain-ms'])) return;
      clearInterval(check);
      const lost = conns.reduce((a, c) => a + (c.sent - c.recv), 0);
      out({ event: 'final', ...summary(), lost, unfinished: pending, perConnLost: conns.map((c) => c.sent - c.recv), perConnError: conns.map((c) => c.error) });
      for (const c of conns) c.s.destroy();
      process.exit(0);
    }, 100);
  });
}
