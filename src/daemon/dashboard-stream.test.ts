import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { DashboardStream, MAX_BUFFERED } from './dashboard-stream.js';

/** Enough of a request and a response for the stream: what was written, and close. */
class FakeRes extends EventEmitter {
  status = 0;
  headers: Record<string, string> = {};
  body = '';
  ended = false;
  destroyed = false;
  writableLength = 0;
  writeHead(s: number, h: Record<string, string>) {
    this.status = s;
    this.headers = h;
    return this;
  }
  write(s: string) {
    this.body += s;
    return true;
  }
  end(s = '') {
    this.body += s;
    this.ended = true;
  }
  destroy() {
    this.destroyed = true;
  }
}
const pair = () => ({ req: new EventEmitter() as unknown as IncomingMessage, res: new FakeRes() });
const open = (s: DashboardStream) => {
  const p = pair();
  s.open(p.req, p.res as unknown as ServerResponse);
  return p;
};
const tick = () => new Promise((r) => setImmediate(r));

test('stream: an event-stream answer, the status at once and then every period; one status per tick for all clients', async () => {
  let taken = 0;
  const s = new DashboardStream(async () => JSON.stringify({ n: ++taken }), 4, 20);
  const a = open(s);
  const b = open(s);
  await tick();
  assert.equal(a.res.status, 200);
  assert.equal(a.res.headers['content-type'], 'text/event-stream');
  assert.match(a.res.body, /^retry: 2000\n\ndata: \{"n":1\}\n\n/);
  await new Promise((r) => setTimeout(r, 70));
  const msgs = (r: FakeRes) => r.body.split('\n\n').filter((m) => m.startsWith('data:')).length;
  assert.ok(msgs(a.res) >= 3, a.res.body);
  assert.ok(taken <= msgs(a.res) + 1, `statuses taken ${taken}, messages to a client ${msgs(a.res)}: one per tick, not one per client`);
  assert.equal(s.clients, 2);
  b.req.emit('close');
  assert.equal(s.clients, 1);
  s.close();
  assert.equal(a.res.ended, true);
  assert.equal(s.clients, 0);
});

test('stream: more than max clients are refused with 503 and counted, and every client once closed', () => {
  const s = new DashboardStream(async () => '{}', 2, 10_000);
  open(s);
  open(s);
  const c = open(s);
  assert.equal(c.res.status, 503);
  assert.equal(c.res.headers['retry-after'], '5');
  assert.deepEqual(s.counters, { opened: 2, refused: 1, dropped: 0, failed: 0 });
  s.close();
  assert.equal(open(s).res.status, 503, 'closed: refused');
  assert.equal(s.counters.refused, 2);
});

test('stream: a status that cannot be taken is sent as an error event and counted; the stream goes on', async () => {
  const d = new DashboardStream(async () => Promise.reject(new Error('workers busy')), 2, 10_000);
  const e = open(d);
  await tick();
  assert.match(e.res.body, /event: error\ndata: \{"error":"workers busy"\}\n\n/);
  assert.equal(d.counters.failed, 1);
  assert.equal(d.clients, 1);
  d.close();
});

test('stream: a client that does not read (over MAX_BUFFERED queued) is dropped and counted', async () => {
  const slow = new DashboardStream(async () => '{}', 2, 10_000);
  const f = pair();
  f.res.writableLength = MAX_BUFFERED + 1;
  slow.open(f.req, f.res as unknown as ServerResponse);
  const ok = open(slow);
  await tick();
  assert.equal(f.res.destroyed, true);
  assert.equal(ok.res.destroyed, false);
  assert.equal(slow.counters.dropped, 1);
  assert.equal(slow.clients, 1);
  slow.close();
});
