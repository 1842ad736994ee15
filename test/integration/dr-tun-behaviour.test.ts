/**
 * Direct routing (-g) and IP-in-IP tunnelling (-i) under load and under change, each case run
 * for both methods (issue 12): a client, a director holding the VIP on `lo`, three real servers
 * on one bridge prepared with `ulvs rs-setup` (dr-tun-bed.ts; their replies go through a reply
 * router, never through the director).
 *
 *   - 500 connections opened at once and held open together, every one answered, spread by rr
 *     in exact thirds (IPVS's rr hands out one sequence: counts differ by at most one), the
 *     director counting them ActiveConn per server; wrr 3:2:1 over 600 connections exactly
 *     300/200/100 (a whole number of wrr cycles); sh: one server per client address;
 *   - persistence (-p): every connection of a client address to one server, a template each;
 *   - weight 0: no new connection to the server; its established connections, held and
 *     streaming, finish byte-exact (ipvs-spec §1, "Weight 0 = quiesced");
 *   - a server deleted (-d) while its connections stream: IPVS with expire_nodest_conn=0 (the
 *     default) DROPS every packet of a connection whose server is no longer available
 *     (ip_vs_in: "Conn whose dest is no longer AVAILABLE ... else DROP", ipvs-spec §4.2 step 5),
 *     so the client's ACKs no longer reach the server and the stream stalls; new connections
 *     go to the other servers; the drops are counted (drop_dest_unavailable).
 *
 * Controls (each check can fail): the one-server-per-address check is run against the rr result
 * (one address, three servers) and must fail; the weight-0 check against the connections opened
 * before the weight was set must fail; the stall check is run on a connection of a server that
 * was not deleted, which must complete.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { needsRoot } from '../support/root.js';
import { DrTunBed, FORWARD_NAME, RS, rulesFor, source, type Method } from '../support/dr-tun-bed.js';
import { countByServer, HeldConns, type HeldConn } from '../support/held-conns.js';
import { dumpCounter } from '../support/one-way.js';
import { LAB } from '../../src/lab/testbed.js';

const SERVERS = ['rs1', 'rs2', 'rs3'];

/** Every connection answered, the client's own address seen by the server (no NAT of the source). */
function assertAllAnswered(r: { conns: HeldConn[]; failed: string[] }, n: number): void {
  assert.deepEqual(r.failed, [], 'no connection failed');
  assert.equal(r.conns.length, n);
  for (const c of r.conns) assert.equal(c.client, c.local, 'the server sees the client address and port');
}

/** Every client address's connections went to one server. */
function assertOneServerPerAddress(conns: HeldConn[]): Map<string, string> {
  const by = new Map<string, string>();
  for (const c of conns) {
    const addr = c.local.split(':')[0]!;
    const was = by.get(addr);
    assert.ok(was === undefined || was === c.server, `${addr} went to ${was} and to ${c.server}`);
    by.set(addr, c.server);
  }
  return by;
}

/** None of `conns` went to `server`. */
function assertNoneTo(conns: HeldConn[], server: string): void {
  const to = conns.filter((c) => c.server === server).length;
  assert.equal(to, 0, `${to} new connections went to ${server}`);
}

for (const method of ['dr', 'tun'] as Method[]) {
  describe(`${method === 'dr' ? 'direct routing (-g)' : 'IPIP tunnelling (-i)'}: load and changes, VIP on the director's lo`, { skip: needsRoot }, () => {
    let t: DrTunBed;
    let client: HeldConns | null = null;
    let rrConns: HeldConn[] = [];
    const f = () => t.flag;
    before(async () => {
      t = await DrTunBed.start({ method, vip: 'lo', sources: 20 });
    });
    after(async () => {
      await client?.close();
      await t?.stop();
    });
    /** Close the client's connections and wait until the director has seen every one end (no
     *  ActiveConn left): a FIN still queued when the next test's -C runs would be dropped (its
     *  server is gone) and the connection would count again when -R revives that server. */
    const closeAndSettle = async (c: HeldConns) => {
      await c.close();
      const t0 = Date.now();
      for (;;) {
        const active = Object.values(t.conns()).reduce((n, x) => n + x.active, 0);
        if (active === 0) return;
        if (Date.now() - t0 > 20_000) throw new Error(`connections still active 20 s after the client closed them: ${JSON.stringify(t.conns())}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    /** Each test connects from its own client address(es): a connection of an earlier test
     *  that the director still tracks (FIN_WAIT: with DR/TUN it sees the client's side only)
     *  takes a new SYN that reuses its port to its own server, or drops it if that server was
     *  deleted (IPVS does the same: ipvs-spec §4.2 steps 4-5), which would skew the counts. */
    const holdClient = async (o: { thenBytes?: number; sources?: string[] } = {}) => {
      await client?.close();
      client = await new HeldConns(t.bed.clients[0]!, { thenBytes: o.thenBytes ?? 1000, sources: o.sources ?? [LAB.client(0)] }).ready();
      return client;
    };

    test('500 connections held open at once: all answered, rr in exact thirds, each counted active by the director', async () => {
      t.setRules(rulesFor('rr', [0, 1, 2].map((i) => ({ i, flag: f() }))));
      const c = await holdClient();
      const r = await c.open(500);
      assertAllAnswered(r, 500);
      const by = countByServer(r.conns);
      const counts = SERVERS.map((s) => by[s] ?? 0);
      assert.deepEqual([...counts].sort(), [166, 167, 167], `rr: ${JSON.stringify(by)}`);
      const listed = t.conns();
      for (const [i, s] of SERVERS.entries()) {
        assert.equal(listed[RS[i]!]?.method, FORWARD_NAME[method]);
        assert.equal(listed[RS[i]!]?.active, by[s], `ActiveConn of ${s} while all 500 are held: ${JSON.stringify(listed)}`);
      }
      // the held connections still work: each one's second request, 1000 bytes, byte-exact
      const ends = await c.finish(r.conns.map((x) => x.id));
      assert.equal(ends.filter((e) => e.ok).length, 500, JSON.stringify(ends.filter((e) => !e.ok).slice(0, 3)));
      rrConns = r.conns;
      const st = t.stats();
      for (const a of RS) assert.equal(st[a]?.outPkts, 0, `no reply packet crossed ulvs (${a})`);
      await closeAndSettle(c);
    });

    test('wrr 3:2:1: 600 connections at once split exactly 300/200/100', async () => {
      t.setRules(rulesFor('wrr', [0, 1, 2].map((i) => ({ i, flag: f(), weight: 3 - i }))));
      const c = await holdClient({ sources: [source(12)] });
      const r = await c.open(600);
      assertAllAnswered(r, 600);
      assert.deepEqual(countByServer(r.conns), { rs1: 300, rs2: 200, rs3: 100 });
      await closeAndSettle(c);
    });

    test('sh: every connection of a client address goes to one server; 12 addresses use more than one', async () => {
      t.setRules(rulesFor('sh', [0, 1, 2].map((i) => ({ i, flag: f() }))));
      const c = await holdClient({ sources: Array.from({ length: 12 }, (_, i) => source(i)) });
      const r = await c.open(120);
      assertAllAnswered(r, 120);
      const by = assertOneServerPerAddress(r.conns);
      assert.equal(by.size, 12);
      assert.ok(new Set(by.values()).size >= 2, `sh spreads addresses: ${JSON.stringify([...by])}`);
      assert.throws(() => assertOneServerPerAddress(rrConns), /went to/, 'control: rr spread one address over three servers');
      await closeAndSettle(c);
    });

    test('persistence (-p 60): each client address stays on one server, rr across addresses, one template each (ASSURED: a connection it controls reached ESTABLISHED)', async () => {
      t.setRules(rulesFor('rr', [0, 1, 2].map((i) => ({ i, flag: f() })), 60));
      const c = await holdClient({ sources: [source(13), source(14), source(15)] });
      const first = await c.open(3); // one each, so rr gives the three templates three servers
      assertAllAnswered(first, 3);
      const r = await c.open(60);
      assertAllAnswered(r, 60);
      const by = assertOneServerPerAddress([...first.conns, ...r.conns]);
      assert.deepEqual([...new Set(by.values())].sort(), SERVERS, `three addresses, three servers: ${JSON.stringify([...by])}`);
      const listing = t.ok('-L -n -c');
      const templates = listing.split('\n').filter((l) => /ASSURED\s+198\.51\.100\.3[3-5]:0\s/.test(l));
      assert.equal(templates.length, 3, `persistence templates: ${listing.split('\n').slice(0, 8).join('\n')}`);
      await closeAndSettle(c);
    });

    test('weight 0: no new connection to the server; its established ones (held, then streaming) finish byte-exact', async () => {
      t.setRules(rulesFor('rr', [0, 1, 2].map((i) => ({ i, flag: f() }))));
      const c = await holdClient({ thenBytes: 20e6, sources: [source(16)] });
      const old = await c.open(30);
      assertAllAnswered(old, 30);
      const onRs1 = old.conns.filter((x) => x.server === 'rs1').map((x) => x.id);
      assert.equal(onRs1.length, 10);
      const streaming = onRs1.slice(0, 5); // mid-transfer at the change; the other 5 idle, held
      const paused = await c.finish(streaming, 1e6);
      assert.ok(paused.every((p) => p.ev === 'paused'), JSON.stringify(paused));
      t.ok(`-e -t ${LAB.VIP}:80 -r ${RS[0]}:80 ${f()} -w 0`);
      const now = await c.open(30);
      assertAllAnswered(now, 30);
      assertNoneTo(now.conns, 'rs1');
      assert.deepEqual(countByServer(now.conns), { rs2: 15, rs3: 15 });
      assert.throws(() => assertNoneTo(old.conns, 'rs1'), /went to rs1/, 'control: before the change rs1 got its share');
      const listed = t.conns()[RS[0]!]!;
      assert.equal(listed.weight, 0);
      assert.equal(listed.active, 10, 'rs1 keeps its 10 established connections');
      const resumed = await c.resume(streaming, 10_000);
      const rest = await c.finish(onRs1.slice(5));
      for (const e of [...resumed, ...rest]) assert.ok(e.ev === 'done' && e.ok, `rs1's connection finished byte-exact: ${JSON.stringify(e)}`);
      await closeAndSettle(c);
    });

    test('a server re-added after its deletion is revived (IPVS trash): its stalled connection goes on and completes byte-exact', async () => {
      t.setRules(rulesFor('rr', [0, 1, 2].map((i) => ({ i, flag: f() }))));
      const c = await holdClient({ thenBytes: 30e6, sources: [source(17)] });
      const old = await c.open(3);
      assertAllAnswered(old, 3);
      const id = old.conns.find((x) => x.server === 'rs1')!.id;
      const paused = await c.finish([id], 1e6);
      assert.equal(paused[0]?.ev, 'paused', JSON.stringify(paused));
      t.ok(`-d -t ${LAB.VIP}:80 -r ${RS[0]}:80`);
      const [stalled] = await c.resume([id], 3000);
      assert.equal(stalled?.ev, 'stalled', `deleted: dropped (${JSON.stringify(stalled)})`);
      t.ok(`-a -t ${LAB.VIP}:80 -r ${RS[0]}:80 ${f()} -w 1`);
      assert.equal(t.conns()[RS[0]!]?.active, 1, 'revived with its established connection');
      const [end] = await c.take((e) => e['id'] === id && e['ev'] === 'done', 1, 90_000);
      assert.equal(end?.['ok'], true, `the connection recovered (TCP retransmits) and completed: ${JSON.stringify(end)}`);
      await closeAndSettle(c);
    });

    test('a server switched to masquerading (-e ... -m) while a connection streams: that connection keeps its method and completes', async () => {
      t.setRules(rulesFor('rr', [0, 1, 2].map((i) => ({ i, flag: f() }))));
      const c = await holdClient({ thenBytes: 30e6, sources: [source(18)] });
      const old = await c.open(3);
      assertAllAnswered(old, 3);
      const id = old.conns.find((x) => x.server === 'rs1')!.id;
      const paused = await c.finish([id], 1e6);
      assert.equal(paused[0]?.ev, 'paused', JSON.stringify(paused));
      t.ok(`-e -t ${LAB.VIP}:80 -r ${RS[0]}:80 -m -w 1`);
      assert.equal(t.conns()[RS[0]!]?.method, 'Masq');
      const [end] = await c.resume([id], 10_000);
      assert.ok(end?.ev === 'done' && end.ok, `the ${method} connection completed byte-exact: ${JSON.stringify(end)}`);
      await closeAndSettle(c);
    });

    test('a server deleted while its connections stream: their packets are dropped (expire_nodest_conn=0), new connections go to the others', async () => {
      t.setRules(rulesFor('rr', [0, 1, 2].map((i) => ({ i, flag: f() }))));
      const c = await holdClient({ thenBytes: 40e6, sources: [source(19)] });
      const old = await c.open(30);
      assertAllAnswered(old, 30);
      const onRs1 = old.conns.filter((x) => x.server === 'rs1').map((x) => x.id).slice(0, 3);
      const onRs2 = old.conns.filter((x) => x.server === 'rs2').map((x) => x.id).slice(0, 1);
      const paused = await c.finish([...onRs1, ...onRs2], 1e6);
      assert.ok(paused.every((p) => p.ev === 'paused'), JSON.stringify(paused));
      const before = await t.db.dump();
      t.ok(`-d -t ${LAB.VIP}:80 -r ${RS[0]}:80`);
      assert.equal(t.conns()[RS[0]!], undefined, 'rs1 is no longer listed');
      const now = await c.open(30);
      assertAllAnswered(now, 30);
      assert.deepEqual(countByServer(now.conns), { rs2: 15, rs3: 15 });
      const ends = await c.resume([...onRs1, ...onRs2], 3000);
      for (const e of ends.filter((x) => onRs1.includes(x.id))) {
        assert.equal(e.ev, 'stalled', `a connection to the deleted server stalls: ${JSON.stringify(e)}`);
        assert.ok(e.bytes < 40e6);
      }
      const control = ends.find((x) => x.id === onRs2[0]);
      assert.ok(control?.ev === 'done' && control.ok, `control: a connection to rs2, resumed alike, completes: ${JSON.stringify(control)}`);
      const dump = await t.db.dump();
      const drops = dumpCounter(dump, 'drop_dest_unavailable') - dumpCounter(before, 'drop_dest_unavailable');
      assert.ok(drops > 0, `the client's packets to the deleted server were dropped and counted: ${drops}`);
      await c.close();
    });
  });
}
