/**
 * Runs inside a client namespace of the test bed:
 *   node dist/src/lab/client.js --host 203.0.113.10 --http 80 --requests 30 --udp 53 --queries 10
 * Sends the HTTP requests one after another (a new TCP connection each) and the UDP queries
 * (a new source port each), and prints one JSON line per answer: {kind, ok, server, client, ms}
 * or {kind, ok: false, error}. Bounded: every request has a timeout.
 */
import { request } from 'node:http';
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '203.0.113.10' },
    http: { type: 'string' },
    requests: { type: 'string', default: '0' },
    udp: { type: 'string' },
    queries: { type: 'string', default: '0' },
    timeout: { type: 'string', default: '2000' },
  },
});
const host = values.host!;
const timeout = Number(values.timeout);

function httpGet(port: number): Promise<object> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/', agent: false, timeout, headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        try {
          resolve({ kind: 'http', ok: true, ...(JSON.parse(body) as object), ms: performance.now() - t0 });
        } catch {
          resolve({ kind: 'http', ok: false, error: `bad body ${JSON.stringify(body.slice(0, 80))}` });
        }
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ kind: 'http', ok: false, error: e.message }));
    req.end();
  });
}

function udpQuery(port: number, i: number): Promise<object> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const s = createSocket('udp4');
    const timer = setTimeout(() => {
      s.close();
      resolve({ kind: 'udp', ok: false, error: 'timeout' });
    }, timeout);
    s.on('message', (m) => {
      clearTimeout(timer);
      s.close();
      resolve({ kind: 'udp', ok: true, ...(JSON.parse(m.toString()) as object), ms: performance.now() - t0 });
    });
    s.on('error', (e) => {
      clearTimeout(timer);
      s.close();
      resolve({ kind: 'udp', ok: false, error: e.message });
    });
    s.send(`query ${i}`, port, host);
  });
}

for (let i = 0; i < Number(values.requests); i++) process.stdout.write(`${JSON.stringify(await httpGet(Number(values.http)))}\n`);
for (let i = 0; i < Number(values.queries); i++) process.stdout.write(`${JSON.stringify(await udpQuery(Number(values.udp), i))}\n`);
