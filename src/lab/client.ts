/**
 * Runs inside a client namespace of the test bed. One JSON line per result.
 *   --requests N [--concurrent]  N HTTP GETs to --http PORT, a new TCP connection each
 *                                (sequential, or all at once with --concurrent)
 *   --queries N [--connected]    N UDP datagrams to --udp PORT, a new source port each; with
 *                                --connected an ICMP error surfaces as an error (ECONNREFUSED)
 *   --get-bytes N                download N bytes of the test pattern, check its SHA-256
 *   --post-bytes N               upload N bytes of the test pattern, compare the server's SHA-256
 *   --hold MS                    one keep-alive connection: a request, a pause of MS, a request
 *   --streams N --duration MS    N keep-alive connections, each fetching 32 KiB again and again
 *                                for MS; reports failures and whether every stream kept its one
 *                                TCP connection (a broken one would be replaced silently)
 * Every operation has a timeout (--timeout ms).
 */
import { createHash } from 'node:crypto';
import { Agent, request } from 'node:http';
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { fillPattern } from './pattern.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '203.0.113.10' },
    http: { type: 'string', default: '80' },
    requests: { type: 'string', default: '0' },
    concurrent: { type: 'boolean', default: false },
    udp: { type: 'string', default: '53' },
    queries: { type: 'string', default: '0' },
    connected: { type: 'boolean', default: false },
    'get-bytes': { type: 'string' },
    'post-bytes': { type: 'string' },
    hold: { type: 'string' },
    streams: { type: 'string' },
    duration: { type: 'string', default: '5000' },
    timeout: { type: 'string', default: '5000' },
  },
});
const host = values.host!;
const port = Number(values.http);
const timeout = Number(values.timeout);
const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

function get(path: string, agent: Agent | false, onBody?: (c: Buffer) => void): Promise<{ status: number; body: string; ms: number; local: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ host, port, path, agent, timeout, headers: agent ? {} : { connection: 'close' } }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (onBody ? onBody(c) : (body += c.toString())));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - t0, local: `${req.socket?.localAddress}:${req.socket?.localPort}` }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function httpOnce(): Promise<object> {
  try {
    const r = await get('/', false);
    return { kind: 'http', ok: true, ...(JSON.parse(r.body) as object), ms: r.ms };
  } catch (e) {
    return { kind: 'http', ok: false, error: (e as Error).message };
  }
}

function udpQuery(i: number): Promise<object> {
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const end = (o: object) => {
      clearTimeout(timer);
      s.close();
      resolve(o);
    };
    const timer = setTimeout(() => end({ kind: 'udp', ok: false, error: 'timeout' }), timeout);
    s.on('message', (m) => end({ kind: 'udp', ok: true, ...(JSON.parse(m.toString()) as object) }));
    s.on('error', (e: NodeJS.ErrnoException) => end({ kind: 'udp', ok: false, error: e.code ?? e.message }));
    const payload = Buffer.from(`query ${i}`);
    if (values.connected) s.connect(Number(values.udp), host, () => s.send(payload));
    else s.send(payload, Number(values.udp), host);
  });
}

const n = Number(values.requests);
if (n > 0) {
  if (values.concurrent) for (const r of await Promise.all(Array.from({ length: n }, httpOnce))) emit(r);
  else for (let i = 0; i < n; i++) emit(await httpOnce());
}
for (let i = 0; i < Number(values.queries); i++) emit(await udpQuery(i));

if (values['get-bytes']) {
  const total = Number(values['get-bytes']);
  const got = createHash('sha256');
  let bytes = 0;
  try {
    const r = await get(`/bytes/${total}`, false, (c) => {
      got.update(c);
      bytes += c.length;
    });
    const want = createHash('sha256');
    const chunk = Buffer.alloc(1 << 16);
    for (let off = 0; off < total; off += chunk.length) {
      const k = Math.min(chunk.length, total - off);
      fillPattern(chunk, off, k);
      want.update(k === chunk.length ? chunk : chunk.subarray(0, k));
    }
    const a = got.digest('hex');
    const b = want.digest('hex');
    emit({ kind: 'get', ok: r.status === 200 && bytes === total && a === b, bytes, sha256: a, expected: b, ms: r.ms });
  } catch (e) {
    emit({ kind: 'get', ok: false, error: (e as Error).message, bytes });
  }
}

if (values['post-bytes']) {
  const total = Number(values['post-bytes']);
  const want = createHash('sha256');
  const t0 = performance.now();
  const res = await new Promise<object>((resolve) => {
    const req = request({ host, port, path: '/sha256', method: 'POST', agent: false, timeout, headers: { 'content-length': String(total), connection: 'close' } }, (r) => {
      let body = '';
      r.on('data', (c: Buffer) => (body += c.toString()));
      r.on('end', () => {
        const srv = JSON.parse(body) as { sha256: string; bytes: number };
        const exp = want.digest('hex');
        resolve({ kind: 'post', ok: srv.bytes === total && srv.sha256 === exp, bytes: srv.bytes, sha256: srv.sha256, expected: exp, ms: performance.now() - t0 });
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ kind: 'post', ok: false, error: e.message }));
    const chunk = Buffer.alloc(1 << 16);
    let off = 0;
    const pump = () => {
      while (off < total) {
        const k = Math.min(chunk.length, total - off);
        fillPattern(chunk, off, k);
        const piece = Buffer.from(chunk.subarray(0, k));
        want.update(piece);
        off += k;
        if (!req.write(piece)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  emit(res);
}

if (values.hold) {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  try {
    const a = await get('/', agent);
    emit({ kind: 'hold', step: 1, ok: true, ...(JSON.parse(a.body) as object), local: a.local });
    await new Promise((r) => setTimeout(r, Number(values.hold)));
    const b = await get('/', agent);
    emit({ kind: 'hold', step: 2, ok: true, ...(JSON.parse(b.body) as object), local: b.local });
  } catch (e) {
    emit({ kind: 'hold', ok: false, error: (e as Error).message });
  }
  agent.destroy();
}

if (values.streams) {
  const n = Number(values.streams);
  const until = Date.now() + Number(values.duration);
  const errors: string[] = [];
  let requests = 0;
  let changedSocket = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      const agent = new Agent({ keepAlive: true, maxSockets: 1 });
      let local: string | null = null;
      try {
        while (Date.now() < until) {
          let bytes = 0;
          const r = await get('/bytes/32768', agent, (c) => (bytes += c.length));
          if (r.status !== 200 || bytes !== 32768) throw new Error(`short response: ${r.status} ${bytes}`);
          if (local !== null && r.local !== local) changedSocket++;
          local = r.local;
          requests++;
        }
      } catch (e) {
        errors.push((e as Error).message);
      }
      agent.destroy();
    }),
  );
  emit({ kind: 'streams', ok: errors.length === 0 && changedSocket === 0, streams: n, requests, failures: errors.length, changedSocket, errors: errors.slice(0, 5) });
}
