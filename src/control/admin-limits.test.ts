/**
 * Every admin input limit (admin-limits.ts, README "Admin API limits") holds, and what goes
 * over it gets a clear error and a counter, against the real admin server on a Unix socket.
 * Each test first shows the request just under the limit served, so a limit that did not exist
 * (or sat elsewhere) would fail it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { globalAgent, type Server } from 'node:http';
import { createAdminServer, type AdminControlPlane } from './admin.js';
import { callAdmin } from './admin-client.js';
import { ADMIN_LIMITS, newAdminCounters, type AdminCounters, type AdminLimits } from './admin-limits.js';
import { parseRules, type Rules } from './rules.js';

/** A backend whose snapshot waits until `release()` (to hold requests in flight). */
function backend() {
  let rules: Rules = parseRules('-A -t 203.0.113.10:80 -s rr\n');
  let waiters: (() => void)[] = [];
  let hold = false;
  const cp: AdminControlPlane = {
    rules: () => rules,
    mutate: async (fn) => void (rules = fn(rules)),
    snapshot: async () => {
      if (hold) await new Promise<void>((r) => waiters.push(r));
      return { services: [], connections: 0 } as never;
    },
    connections: async () => [],
    timeouts: async () => ({ tcp: 900, tcpfin: 120, udp: 300 }),
    setTimeouts: async () => {},
    zero: async () => {},
    counters: async () => ({ engine: {} }),
    reload: async () => 'reloaded',
  };
  return {
    cp,
    hold: () => (hold = true),
    waiting: () => waiters.length,
    release: () => {
      hold = false;
      for (const w of waiters) w();
      waiters = [];
    },
  };
}

/** Send `text` on a raw connection and collect what comes back until the server closes it
 *  (a write into a connection the server already closed ends it the same way). */
function raw(socket: string, text: string | null, endAfterMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const c = connect(socket, () => {
      if (text !== null) c.write(text);
      if (endAfterMs) setTimeout(() => c.end(), endAfterMs);
    });
    let out = '';
    c.on('data', (d) => (out += d.toString()));
    c.on('close', () => resolve(out));
    c.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EPIPE' || e.code === 'ECONNRESET' ? undefined : reject(e)));
  });
}

describe('admin API limits', () => {
  let dir: string;
  let socket: string;
  let server: Server;
  let counters: AdminCounters;
  const b = backend();
  // the timeouts shortened for the test; every other limit at its real value
  const limits: AdminLimits = { ...ADMIN_LIMITS, headersTimeoutMs: 600, requestTimeoutMs: 1200 };
  const adminCounters = async () => (await callAdmin(socket, 'GET', '/v1/counters')).json.admin as AdminCounters;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hD-limits-'));
    socket = join(dir, 'admin.sock');
    counters = newAdminCounters();
    server = createAdminServer(b.cp, limits, counters);
    await new Promise<void>((r) => server.listen(socket, r));
  });
  after(() => {
    b.release();
    server?.close();
    server?.closeAllConnections();
    rmSync(dir, { recursive: true, force: true });
  });

  test(`body: ${ADMIN_LIMITS.maxBody} bytes served, one more is 413 body_too_large, counted, nothing changed`, async () => {
    const rulesAt = (n: number) => {
      const line = '-A -t 203.0.113.10:81 -s rr\n';
      return line + '#'.repeat(n - line.length - 1) + '\n';
    };
    const ok = await callAdmin(socket, 'PUT', '/v1/rules', rulesAt(ADMIN_LIMITS.maxBody));
    assert.equal(ok.status, 200, ok.text);
    const over = await callAdmin(socket, 'PUT', '/v1/rules', rulesAt(ADMIN_LIMITS.maxBody + 1).replace(':81', ':82'));
    assert.equal(over.status, 413);
    assert.deepEqual(over.json.error, { code: 'body_too_large', message: `request body over ${ADMIN_LIMITS.maxBody} bytes` });
    assert.match((await callAdmin(socket, 'GET', '/v1/rules')).text, /:81 /, 'the refused body changed nothing');
    assert.equal((await adminCounters()).body_too_large, 1);
  });

  test(`header section: under ${ADMIN_LIMITS.maxHeaderBytes} bytes served, over it 431 headers_too_large, counted`, async () => {
    const near = await callAdmin(socket, 'GET', '/v1/rules', undefined, { 'x-pad': 'a'.repeat(ADMIN_LIMITS.maxHeaderBytes - 200) });
    assert.equal(near.status, 200);
    const over = await callAdmin(socket, 'GET', '/v1/rules', undefined, { 'x-pad': 'a'.repeat(ADMIN_LIMITS.maxHeaderBytes + 1) }).catch((e: Error) => ({ status: -1, json: null, text: e.message }));
    assert.equal(over.status, 431, over.text);
    assert.equal(over.json.error.code, 'headers_too_large');
    assert.match(over.json.error.message, new RegExp(`over ${ADMIN_LIMITS.maxHeaderBytes} bytes`));
    assert.equal((await adminCounters()).headers_too_large, 1);
  });

  test(`in flight: ${ADMIN_LIMITS.maxInFlight} requests waiting (pipelined on 2 connections) are all served, one more at once is 503 too_busy, counted`, async () => {
    b.hold();
    const half = ADMIN_LIMITS.maxInFlight / 2;
    const pipelined = () => raw(socket, 'GET /v1/snapshot HTTP/1.1\r\nhost: x\r\n\r\n'.repeat(half - 1) + 'GET /v1/snapshot HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    const waiting = [pipelined(), pipelined()];
    while (b.waiting() < ADMIN_LIMITS.maxInFlight) await new Promise((r) => setTimeout(r, 20)); // all of them in the server
    const busy = await callAdmin(socket, 'GET', '/v1/rules');
    assert.equal(busy.status, 503);
    assert.equal(busy.json.error.code, 'too_busy');
    assert.match(busy.json.error.message, new RegExp(`at most ${ADMIN_LIMITS.maxInFlight} at once`));
    b.release();
    const served = (await Promise.all(waiting)).map((t) => t.match(/^HTTP\/1\.1 200 /gm)?.length ?? 0);
    assert.deepEqual(served, [half, half], 'the ones in flight were served');
    assert.equal((await callAdmin(socket, 'GET', '/v1/rules')).status, 200, 'served again once they are done');
    assert.equal((await adminCounters()).too_busy, 1);
  });

  test(`connections: ${ADMIN_LIMITS.maxConnections} open at once are kept, one more is closed at once, counted`, async () => {
    globalAgent.destroy(); // node 20's agent keeps the earlier tests' connections alive: they would count
    await new Promise((r) => setTimeout(r, 200));
    const open: Socket[] = [];
    try {
      for (let i = 0; i < ADMIN_LIMITS.maxConnections; i++)
        open.push(
          await new Promise<Socket>((resolve, reject) => {
            const c = connect(socket, () => resolve(c));
            c.on('error', reject);
          }),
        );
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(open.every((c) => !c.destroyed && c.readyState === 'open'), 'all kept open');
      const t0 = Date.now();
      const got = await raw(socket, 'GET /v1/rules HTTP/1.1\r\nhost: x\r\n\r\n');
      assert.equal(got, '', 'closed without an answer (no request read yet)');
      assert.ok(Date.now() - t0 < 2000, 'at once');
      assert.equal(counters.connections_refused, 1);
    } finally {
      for (const c of open) c.destroy();
    }
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await adminCounters()).connections_refused, 1, 'and served again when they are closed');
  });

  test('a request not complete within the header timeout is 408 timed_out, counted; a slow complete one is served', async () => {
    const slowOk = await raw(socket, 'GET /v1/rules HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n');
    assert.match(slowOk, /^HTTP\/1\.1 200/);
    const got = await raw(socket, 'GET /v1/rules HTTP/1.1\r\nhost: x\r\n'); // never ends its headers
    assert.match(got, /^HTTP\/1\.1 408 Request Timeout\r\n/);
    assert.equal(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4)).error.code, 'timed_out');
    assert.equal((await adminCounters()).timed_out, 1);
  });

  test('bytes that are not HTTP: 400 bad_request, counted', async () => {
    const got = await raw(socket, 'HELLO\0\r\n\r\n');
    assert.match(got, /^HTTP\/1\.1 400 Bad Request\r\n/);
    assert.equal(JSON.parse(got.slice(got.indexOf('\r\n\r\n') + 4)).error.code, 'bad_request');
    assert.equal((await adminCounters()).bad_request, 1);
  });

  test('README documents every limit with its value', () => {
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    const section = readme.slice(readme.indexOf('### Admin API limits'));
    assert.ok(section.length > 0 && readme.includes('### Admin API limits'));
    const shown: Record<keyof AdminLimits, string> = {
      maxBody: '1 MiB (1,048,576 bytes)',
      maxHeaderBytes: '16 KiB (16,384 bytes)',
      maxInFlight: '256',
      maxConnections: '256',
      headersTimeoutMs: '10 s',
      requestTimeoutMs: '30 s',
    };
    assert.deepEqual(ADMIN_LIMITS, { maxBody: 1048576, maxHeaderBytes: 16384, maxInFlight: 256, maxConnections: 256, headersTimeoutMs: 10000, requestTimeoutMs: 30000 }, 'a changed limit changes the README row too');
    for (const [k, v] of Object.entries(shown)) assert.ok(section.includes(`| ${v} |`), `README "Admin API limits" shows ${k} as ${v}`);
    for (const c of Object.keys(newAdminCounters())) assert.ok(section.includes(`\`${c}\``), `README names the counter ${c}`);
  });
});
