/**
 * A client that holds many HTTP connections open at once; runs inside a client namespace of the
 * test bed (root), driven by held-conns.ts through stdin (one JSON command a line) and stdout
 * (one JSON event a line). Test-only.
 *
 *   node hold-client.js --host VIP --port 80 --then-bytes B [--sources a,b,...] [--timeout MS]
 *
 * {"op":"open","n":N}   opens N connections at once (local addresses from --sources in turn),
 *                       sends `GET /` on each and reads the answer ({server, client}); then
 *                       starts a second request, `GET /bytes/B`, without its last empty line,
 *                       and sends one more header line every second, so the server's keep-alive
 *                       timer (5 s in Node) never closes the connection: it is held, established
 *                       and idle but for those lines. Event: {"ev":"opened","conns":[{id,local,
 *                       server,client}],"failed":[messages]} once every connection is answered
 *                       or failed.
 * {"op":"finish","ids":[...],"pauseAt":P}
 *                       ends the second request on those connections: the server streams B
 *                       bytes of the test pattern. With pauseAt, reading stops once P bytes
 *                       arrived (TCP flow control then stops the server): {"ev":"paused","id",
 *                       "bytes"} per connection; otherwise {"ev":"done",...} when it ends.
 * {"op":"resume","ids":[...],"stallMs":S}
 *                       reads again; {"ev":"done","id","bytes","ok"} when B bytes arrived and
 *                       their SHA-256 is the pattern's, or {"ev":"stalled","id","bytes"} when no
 *                       byte came for S ms (the kernel's buffered bytes are read first).
 * {"op":"close"}        closes every connection and exits.
 */
import { createHash, type Hash } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { fillPattern } from '../../src/lab/pattern.js';

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '203.0.113.10' },
    port: { type: 'string', default: '80' },
    'then-bytes': { type: 'string', default: '0' },
    sources: { type: 'string', default: '' },
    timeout: { type: 'string', default: '30000' },
  },
});
const host = values.host!;
const port = Number(values.port);
const thenBytes = Number(values['then-bytes']);
const sources = values.sources ? values.sources.split(',') : [];
const timeoutMs = Number(values.timeout);
const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** The SHA-256 of the first n bytes of the test pattern. */
function patternSha(n: number): string {
  const h = createHash('sha256');
  const chunk = Buffer.alloc(1 << 16);
  for (let off = 0; off < n; off += chunk.length) {
    const k = Math.min(chunk.length, n - off);
    fillPattern(chunk, off, k);
    h.update(chunk.subarray(0, k));
  }
  return h.digest('hex');
}
const wantSha = patternSha(thenBytes);

interface Held {
  id: number;
  sock: Socket;
  local: string;
  trickle: NodeJS.Timeout | null;
  /** the bytes of the current response read so far (head and body) */
  head: Buffer;
  body: number;
  length: number;
  sha: Hash | null;
  pauseAt: number;
  lastByte: number;
  stallTimer: NodeJS.Timeout | null;
  onBody: ((h: Held) => void) | null;
}
const held: Held[] = [];

/** Parse `buf` as an HTTP/1.1 response head: its length and Content-Length, or null if incomplete. */
function parseHead(buf: Buffer): { headLen: number; length: number; status: number } | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return null;
  const text = buf.subarray(0, end).toString('latin1');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const length = /\r\ncontent-length: *(\d+)/i.exec(text);
  if (!length) throw new Error(`response without Content-Length: ${text.slice(0, 200)}`);
  return { headLen: end + 4, length: Number(length[1]), status };
}

/** Read one response on h; `onChunk` sees each body piece, resolves with the whole body when it is short (< 64 KiB) or an empty buffer. */
function readResponse(h: Held, onChunk: (b: Buffer) => void): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    let parsed: ReturnType<typeof parseHead> = null;
    let got = 0;
    const small: Buffer[] = [];
    const onData = (d: Buffer) => {
      let piece = d;
      if (!parsed) {
        head = Buffer.concat([head, d]);
        try {
          parsed = parseHead(head);
        } catch (e) {
          return fail(e as Error);
        }
        if (!parsed) return;
        if (parsed.status !== 200) return fail(new Error(`status ${parsed.status}`));
        piece = head.subarray(parsed.headLen);
      }
      got += piece.length;
      if (parsed.length < 65536) small.push(piece);
      onChunk(piece);
      if (got >= parsed.length) {
        cleanup();
        resolve(parsed.length < 65536 ? Buffer.concat(small) : Buffer.alloc(0));
      }
    };
    const onClose = () => fail(new Error(`closed after ${got} body bytes`));
    const fail = (e: Error) => {
      cleanup();
      reject(e);
    };
    const cleanup = () => {
      h.sock.off('data', onData);
      h.sock.off('close', onClose);
    };
    h.sock.on('data', onData);
    h.sock.on('close', onClose);
  });
}

async function openOne(id: number): Promise<object> {
  const localAddress = sources.length ? sources[id % sources.length] : undefined;
  const sock = connect({ host, port, localAddress });
  sock.setTimeout(timeoutMs, () => sock.destroy(new Error('timeout')));
  sock.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', reject);
    sock.once('close', () => reject(new Error('closed before connect')));
  });
  const h: Held = { id, sock, local: `${sock.localAddress}:${sock.localPort}`, trickle: null, head: Buffer.alloc(0), body: 0, length: 0, sha: null, pauseAt: 0, lastByte: 0, stallTimer: null, onBody: null };
  const answer = readResponse(h, () => {});
  sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`);
  const body = JSON.parse((await answer).toString()) as { server: string; client: string };
  sock.setTimeout(0);
  sock.write(`GET /bytes/${thenBytes} HTTP/1.1\r\nHost: ${host}\r\n`);
  h.trickle = setInterval(() => sock.write('X-Held: 1\r\n'), 1000);
  held[id] = h;
  return { id, local: h.local, server: body.server, client: body.client };
}

async function open(n: number): Promise<void> {
  const base = held.length;
  const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => openOne(base + i)));
  const conns = results.filter((r) => r.status === 'fulfilled').map((r) => (r as PromiseFulfilledResult<object>).value);
  const failed = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason?.message));
  emit({ ev: 'opened', conns, failed });
}

function watchStall(h: Held, stallMs: number): void {
  if (h.stallTimer) clearInterval(h.stallTimer);
  h.stallTimer = setInterval(() => {
    if (Date.now() - h.lastByte < stallMs) return;
    clearInterval(h.stallTimer!);
    h.stallTimer = null;
    emit({ ev: 'stalled', id: h.id, bytes: h.body });
  }, 100);
}

function finish(ids: number[], pauseAt: number): void {
  for (const id of ids) {
    const h = held[id];
    if (!h) {
      emit({ ev: 'done', id, ok: false, error: 'no such connection' });
      continue;
    }
    if (h.trickle) clearInterval(h.trickle);
    h.trickle = null;
    h.sha = createHash('sha256');
    h.pauseAt = pauseAt;
    h.lastByte = Date.now();
    readResponse(h, (b) => {
      h.sha!.update(b);
      h.body += b.length;
      h.lastByte = Date.now();
      if (h.pauseAt > 0 && h.body >= h.pauseAt) {
        h.pauseAt = 0;
        h.sock.pause();
        emit({ ev: 'paused', id, bytes: h.body });
      }
    }).then(
      () => {
        if (h.stallTimer) clearInterval(h.stallTimer);
        const sha = h.sha!.digest('hex');
        emit({ ev: 'done', id, bytes: h.body, ok: h.body === thenBytes && sha === wantSha });
      },
      (e: Error) => {
        if (h.stallTimer) clearInterval(h.stallTimer);
        emit({ ev: 'done', id, bytes: h.body, ok: false, error: e.message });
      },
    );
    h.sock.write('\r\n');
  }
}

function resume(ids: number[], stallMs: number): void {
  for (const id of ids) {
    const h = held[id];
    if (!h) continue;
    h.lastByte = Date.now();
    h.sock.resume();
    if (stallMs > 0) watchStall(h, stallMs);
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const cmd = JSON.parse(line) as { op: string; n?: number; ids?: number[]; pauseAt?: number; stallMs?: number };
  if (cmd.op === 'open') void open(cmd.n ?? 1);
  else if (cmd.op === 'finish') finish(cmd.ids ?? [], cmd.pauseAt ?? 0);
  else if (cmd.op === 'resume') resume(cmd.ids ?? [], cmd.stallMs ?? 0);
  else if (cmd.op === 'close') {
    for (const h of held) {
      if (!h) continue;
      if (h.trickle) clearInterval(h.trickle);
      if (h.stallTimer) clearInterval(h.stallTimer);
      h.sock.destroy();
    }
    emit({ ev: 'closed' });
    process.exit(0);
  }
});
lines.on('close', () => process.exit(0));
emit({ ev: 'ready' });
