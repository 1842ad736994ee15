/**
 * Runs inside a real-server namespace of the test bed (not part of the director):
 *   node dist/src/lab/servers.js --name rs1 --http 8080 --udp 5353
 * HTTP: GET / answers JSON {server, client} where client is the peer address the server saw
 * (in VS/NAT it must be the real client, not the director); GET /bytes/N streams N bytes of a
 * deterministic pattern; POST /sha256 answers the SHA-256 of the body. UDP: every datagram is
 * answered with JSON {server, client, bytes}. --https PORT --cert --key: HTTPS answering JSON;
 * --dns PORT: a minimal DNS responder. Prints "ready" when listening.
 */
import { createHash } from 'node:crypto';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { parseArgs } from 'node:util';
import { fillPattern } from './pattern.js';

const { values } = parseArgs({
  options: {
    name: { type: 'string', default: 'rs' },
    http: { type: 'string' },
    udp: { type: 'string' },
    https: { type: 'string' },
    cert: { type: 'string' },
    key: { type: 'string' },
    dns: { type: 'string' },
  },
});
const name = values.name!;
let pending = 0;
const ready = () => {
  if (--pending === 0) process.stdout.write('ready\n');
};


if (values.http) {
  pending++;
  const srv = createServer((req, res) => {
    const client = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    const m = /^\/bytes\/(\d+)$/.exec(req.url ?? '');
    if (req.method === 'GET' && m) {
      const total = Number(m[1]);
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(total) });
      const chunk = Buffer.alloc(1 << 16);
      let sent = 0;
      const pump = () => {
        while (sent < total) {
          const n = Math.min(chunk.length, total - sent);
          fillPattern(chunk, sent, n);
          sent += n;
          if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    const st = /^\/status\/(\d{3})$/.exec(req.url ?? '');
    if (st) {
      res.writeHead(Number(st[1]), { 'content-type': 'text/plain' });
      res.end(`status ${st[1]}\n`);
      return;
    }
    if (req.method === 'POST' && req.url === '/sha256') {
      const h = createHash('sha256');
      let bytes = 0;
      req.on('data', (c: Buffer) => {
        h.update(c);
        bytes += c.length;
      });
      req.on('end', () => res.end(JSON.stringify({ server: name, client, bytes, sha256: h.digest('hex') })));
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ server: name, client }));
  });
  srv.listen(Number(values.http), '0.0.0.0', ready);
}

if (values.https && values.cert && values.key) {
  pending++;
  createHttpsServer({ cert: readFileSync(values.cert), key: readFileSync(values.key) }, (req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ server: name, client: `${req.socket.remoteAddress}:${req.socket.remotePort}`, tls: true }));
  }).listen(Number(values.https), '0.0.0.0', ready);
}

if (values.dns) {
  // A minimal DNS responder: answers every query with its own question, QR set, no records.
  pending++;
  const d = createSocket('udp4');
  d.on('message', (msg, rinfo) => {
    if (msg.length < 12) return;
    const r = Buffer.from(msg);
    r[2] = (r[2]! | 0x80) & 0xf9; // QR, keep opcode/RD
    r[3] = 0x80; // RA, rcode 0
    d.send(r, rinfo.port, rinfo.address);
  });
  d.bind(Number(values.dns), '0.0.0.0', ready);
}

if (values.udp) {
  pending++;
  const s = createSocket('udp4');
  s.on('message', (msg, rinfo) => {
    s.send(JSON.stringify({ server: name, client: `${rinfo.address}:${rinfo.port}`, bytes: msg.length }), rinfo.port, rinfo.address);
  });
  s.bind(Number(values.udp), '0.0.0.0', ready);
}
