/**
 * GET /v1/trace and `ulvsadm --trace` through the real admin server (no root), the backend a
 * real engine's PacketTrace fed a SYN, its SYN-ACK and a packet with a broken checksum. Checks:
 * the stream (start line, the records as text or ndjson, the lost count, the end line and why),
 * the count bound, stop called at the end, one trace at a time (409 EBUSY), and refusals before
 * anything runs (no filter, bad numbers, bad addresses; the CLI asks nothing for those).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { createAdminServer, type AdminControlPlane } from './admin.js';
import { callAdmin, streamAdmin } from './admin-client.js';
import { traceCommand, parseTraceArgs } from './trace-cli.js';
import type { TraceBackend } from './trace-api.js';
import { PacketTrace } from '../core/trace/packet-trace.js';
import { compileFilter } from '../core/trace/trace-filter.js';
import { ipv4 } from '../wire/build.js';
import { CLIENT, director, ip, key, RS1, TCP, VIP } from '../../test/support/bed.js';

/** Three records from a real engine: SYN, SYN-ACK, a SYN with a broken IP checksum. */
function records(): Int32Array {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080 });
  const tr = new PacketTrace();
  tr.start(compileFilter({ client: { addr: ip(CLIENT) } }), 10);
  const bad = Buffer.from(ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 7, dport: 80, flags: 'S' }).build());
  bad[10] ^= 0xff;
  for (const p of [ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40000, dport: 80, flags: 'S' }).build(), ipv4({ src: RS1, dst: CLIENT }).tcp({ sport: 8080, dport: 40000, flags: 'SA' }).build(), bad]) {
    const b = Buffer.from(p);
    tr.before(d, b, 0, b.length);
    tr.after(d, b, 0, d.process(b, 0, b.length, 5, 0), 5);
  }
  return tr.drain().records;
}

describe('admin API /v1/trace and ulvsadm --trace', () => {
  let dir: string;
  let socket: string;
  let server: Server;
  const recs = records();
  const log: string[] = [];
  let pending: Int32Array | null = null;
  const backend: TraceBackend = {
    tun: 'ulvs0',
    start: async (filter, budget) => {
      log.push(`start ${filter[0]} ${budget}`);
      pending = recs;
    },
    read: async () => {
      const r = pending;
      pending = null;
      return [{ records: r ?? new Int32Array(0), lost: r ? 4 : 0, on: true, origin: Date.UTC(2026, 11, 1) }];
    },
    stop: async () => void log.push('stop'),
    route: async (a) => (a === (ip(RS1) | 0) ? 'dev br0, directly connected' : null),
  };
  const unused = () => Promise.reject(new Error('not used here'));
  const cli = async (...argv: string[]) => {
    let out = '';
    let err = '';
    const code = await traceCommand(argv, (p, on) => streamAdmin(socket, p, on), { out: (s) => (out += s), err: (s) => (err += s) });
    return { code, out, err };
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ulvs-trace-'));
    socket = join(dir, 'admin.sock');
    const cp: AdminControlPlane = { rules: () => ({ services: [], dests: [] }) as never, mutate: unused, snapshot: unused, connections: unused, timeouts: unused, setTimeouts: unused, zero: unused, counters: unused, reload: unused, trace: backend };
    server = createAdminServer(cp);
    await new Promise<void>((r) => server.listen(socket, r));
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('text: the SYN scheduled and rewritten with its route, the SYN-ACK rewritten back, the drop by its reason, lost and end lines', async () => {
    log.length = 0;
    const r = await cli('--client', CLIENT, '--seconds', '1');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^tracing up to 100 packets for 1 s/);
    const syn = `TCP ${CLIENT}:40000 > ${VIP}:80 [S] len 40  captured: TUN ulvs0 queue 0\n  lookup: new connection: scheduled -> ${RS1}:8080 (Masq)\n  state: NONE -> SYN_RECV\n  rewrite: ${CLIENT}:40000 > ${VIP}:80 [S]  =>  ${CLIENT}:40000 > ${RS1}:8080 [S]  [forward_in]\n  sent: back into the TUN, out by the way-out program: routed to ${RS1}, dev br0, directly connected\n`;
    assert.ok(r.out.includes(syn), r.out);
    assert.match(r.out, new RegExp(`rewrite: ${RS1}:8080 > ${CLIENT}:40000 \\[S\\.\\]  =>  ${VIP}:80 > ${CLIENT}:40000 \\[S\\.\\]  \\[forward_out\\]`));
    assert.match(r.out, /state: SYN_RECV -> SYN_RECV/);
    assert.match(r.out, /result: dropped: drop_bad_ip_checksum\n/);
    assert.match(r.out, /worker 0: 4 records lost/);
    assert.match(r.out, /trace ended \(time is up\): 3 records, 4 lost\n$/);
    assert.deepEqual(log, ['start 1 100', 'stop']);
  });

  test('ndjson and the count bound: two records, then the end', async () => {
    log.length = 0;
    const r = await cli('--client', CLIENT, '--count', '2', '--json');
    assert.equal(r.code, 0, r.err);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(lines.map((l) => l.kind), ['start', 'packet', 'packet', 'lost', 'end']);
    assert.deepEqual([lines[1].connection.stateBefore, lines[1].connection.state, lines[1].after.dst, lines[1].time], ['NONE', 'SYN_RECV', `${RS1}:8080`, '2026-12-01T00:00:00.005Z']);
    assert.deepEqual([lines[4].reason, lines[4].records], ['2 records', 2]);
    assert.deepEqual(log, ['start 1 2', 'stop']);
  });

  test('one trace at a time; refusals before anything runs', async () => {
    const first = streamAdmin(socket, `/v1/trace?service=${VIP}&seconds=1`, () => {});
    await new Promise((r) => setTimeout(r, 50));
    const busy = await callAdmin(socket, 'GET', `/v1/trace?client=${CLIENT}`);
    assert.deepEqual([busy.status, busy.json.error.code], [409, 'EBUSY']);
    assert.equal((await first).status, 200);
    log.length = 0;
    for (const q of ['', 'client=1.2.3', `client=${CLIENT}&count=0`, `client=${CLIENT}&seconds=3601`, `client=${CLIENT}&x=1`, `server=${RS1}:99999`]) {
      const r = await callAdmin(socket, 'GET', `/v1/trace?${q}`);
      assert.deepEqual([r.status, r.json.error.code], [400, 'validation'], q);
    }
    for (const argv of [[], ['--client', 'x'], ['--client', CLIENT, '--count', '100001'], ['-t', `${VIP}:80`, '--bogus']]) {
      const r = await cli(...argv);
      assert.equal(r.code, 2, argv.join(' '));
      assert.match(r.err, /^ulvsadm --trace: /);
    }
    assert.deepEqual(log, [], 'nothing started');
    assert.equal(String(parseTraceArgs(['-u', `${VIP}:53`, '--server', `${RS1}:5353`])), `service=${VIP}%3A53&protocol=udp&server=${RS1}%3A5353`);
  });
});
