/**
 * Direct routing (-g) and IPIP tunnelling (-i), each case for both methods (issue 12), real
 * servers prepared with `ulvs rs-setup`, replies through a reply router (dr-tun-bed.ts):
 *
 *   - VIP on the director's lo: 200 MB each way by SHA-256, almost all in the kernel fast path,
 *     no reply packet through ulvs (one-way.ts);
 *   - a mixed service, one masquerading server (-m, gateway: the director) and two DR/TUN
 *     servers: all three answer; the NAT server's replies come back through ulvs (OutPkts and
 *     OutBytes counted, source rewritten to the VIP, or the client's TCP would not accept them)
 *     and never cross the reply router; the DR/TUN servers' replies cross the router (counted
 *     there by nftables, source VIP) and never ulvs (OutPkts 0);
 *   - VIP on the director's outside interface (pubbr) instead of lo: the same service works;
 *   - VIP added to the director after the rules are in place, then removed, with traffic
 *     running across both changes. What must happen at each step:
 *       0. VIP only routed to the director: requests are captured by tc, forwarded, answered;
 *       1. VIP added on lo: ulvsd notices (log); service traffic is still captured by tc
 *          before the local stack, so new connections are answered by the real servers, and
 *          connections established before (keep-alive streams, a paused download) go on; a
 *          port without a service now reaches the local stack, which refuses it (the control
 *          that shows a connection delivered locally would fail, not be answered by rsN);
 *       2. VIP removed: ulvsd notices; the same as step 0; the paused download completes
 *          byte-exact and no stream lost or changed its connection.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { needsRoot } from '../support/root.js';
import { DrTunBed, FORWARD_NAME, RS, rulesFor, V, type Method } from '../support/dr-tun-bed.js';
import { countByServer, HeldConns } from '../support/held-conns.js';
import { assertOneWayTransfer } from '../support/one-way.js';
import { tcpConnect } from '../support/probes.js';
import { run } from '../../src/lab/shell.js';
import { LAB } from '../../src/lab/testbed.js';

const methods: Method[] = ['dr', 'tun'];
const label = (m: Method) => (m === 'dr' ? 'direct routing (-g)' : 'IPIP tunnelling (-i)');

/** Requests from client 0, each a new connection: all answered, the client's address seen, rr in turn. */
function assertRequestsInTurn(t: DrTunBed, n: number): void {
  const got = t.db.client(['--requests', String(n), '--timeout', '5000']);
  assert.equal(got.filter((x) => x['ok']).length, n, JSON.stringify(got.filter((x) => !x['ok'])));
  for (const x of got) assert.ok(String(x['client']).startsWith(`${LAB.client(0)}:`), `client address intact: ${x['client']}`);
  const by: Record<string, number> = {};
  for (const x of got) by[String(x['server'])] = (by[String(x['server'])] ?? 0) + 1;
  assert.deepEqual(by, { rs1: n / 3, rs2: n / 3, rs3: n / 3 });
}

/** nftables counters in the reply router's forward hook, in bytes (the servers send TSO
 *  super-packets, which the router forwards whole): from the VIP (DR/TUN replies) and from rs1's address (NAT replies, if they went astray). */
function routerCounters(t: DrTunBed): { read(): { fromVip: number; fromRs1: number }; remove(): void } {
  const nft = (script: string) => run(['ip', 'netns', 'exec', t.router, 'nft', '-f', '-'], script);
  nft(`table ip h3replies {\n chain seen {\n  type filter hook forward priority 0;\n  ip saddr ${V} tcp sport 80 counter\n  ip saddr ${RS[0]} counter\n }\n}\n`);
  return {
    read() {
      const n = [...run(['ip', 'netns', 'exec', t.router, 'nft', 'list', 'table', 'ip', 'h3replies']).matchAll(/bytes (\d+)/g)].map((m) => Number(m[1]));
      return { fromVip: n[0] ?? 0, fromRs1: n[1] ?? 0 };
    },
    remove: () => nft('delete table ip h3replies\n'),
  };
}

for (const method of methods) {
  describe(`${label(method)}, VIP on the director's lo: 200 MB each way; a mixed service (NAT + ${method.toUpperCase()})`, { skip: needsRoot }, () => {
    let t: DrTunBed;
    before(async () => {
      t = await DrTunBed.start({ method, vip: 'lo', natServers: [0] });
    });
    after(async () => {
      await t?.stop();
    });

    test('200 MB each way arrive intact, almost all in the kernel fast path, no reply through ulvs', async (ctx) => {
      t.setRules(rulesFor('rr', [1, 2].map((i) => ({ i, flag: t.flag }))));
      await assertOneWayTransfer(t.db, (a) => t.adm(a), `${V}:80`, ctx);
    });

    test('mixed service: all three answer; NAT replies through ulvs (source VIP), DR/TUN replies through the router only', async () => {
      t.setRules(rulesFor('rr', [{ i: 0, flag: '-m' }, { i: 1, flag: t.flag }, { i: 2, flag: t.flag }]));
      const listed = t.conns();
      assert.deepEqual([RS[0], RS[1], RS[2]].map((a) => listed[a!]?.method), ['Masq', FORWARD_NAME[method], FORWARD_NAME[method]]);
      const router = routerCounters(t);
      const c = await new HeldConns(t.bed.clients[0]!, { thenBytes: 200_000 }).ready();
      try {
        const r = await c.open(30);
        assert.deepEqual(r.failed, []);
        assert.deepEqual(countByServer(r.conns), { rs1: 10, rs2: 10, rs3: 10 });
        for (const x of r.conns) assert.equal(x.client, x.local, `${x.server} saw the client's address and port`);
        const ends = await c.finish(r.conns.map((x) => x.id));
        assert.equal(ends.filter((e) => e.ok).length, 30, JSON.stringify(ends.filter((e) => !e.ok).slice(0, 3)));
        const st = t.stats();
        assert.ok(st[RS[0]!]!.outPkts > 0 && st[RS[0]!]!.outBytes > 10 * 200_000, `NAT replies counted by ulvs: ${JSON.stringify(st)}`);
        assert.equal(st[RS[1]!]!.outPkts + st[RS[2]!]!.outPkts, 0, `no DR/TUN reply through ulvs: ${JSON.stringify(st)}`);
        assert.ok(st[RS[1]!]!.inPkts > 0 && st[RS[2]!]!.inPkts > 0);
        const seen = router.read();
        assert.ok(seen.fromVip > 20 * 200_000, `DR/TUN replies (source VIP) crossed the router: ${JSON.stringify(seen)}`);
        assert.equal(seen.fromRs1, 0, 'the NAT server answers through the director, never the router');
      } finally {
        router.remove();
        await c.close();
      }
    });
  });

  describe(`${label(method)}, VIP on the director's outside interface`, { skip: needsRoot }, () => {
    let t: DrTunBed;
    before(async () => {
      t = await DrTunBed.start({ method, vip: 'pubbr' });
    });
    after(async () => {
      await t?.stop();
    });

    test('requests answered in turn by the three servers, 60 held at once, 50 MB each way in the fast path', async (ctx) => {
      assert.match(run(['ip', '-n', t.bed.director, '-4', '-o', 'addr', 'show', 'dev', 'pubbr']), new RegExp(`inet ${V.replace(/\./g, '\\.')}/32`));
      assertRequestsInTurn(t, 9);
      const c = await new HeldConns(t.bed.clients[0]!).ready();
      try {
        const r = await c.open(60);
        assert.deepEqual(r.failed, []);
        assert.deepEqual(countByServer(r.conns), { rs1: 20, rs2: 20, rs3: 20 });
      } finally {
        await c.close();
      }
      await assertOneWayTransfer(t.db, (a) => t.adm(a), `${V}:80`, ctx, 50e6);
    });
  });

  describe(`${label(method)}: the VIP added to the director after the rules, then removed, with traffic`, { skip: needsRoot }, () => {
    let t: DrTunBed;
    before(async () => {
      t = await DrTunBed.start({ method, vip: 'routed' });
    });
    after(async () => {
      await t?.stop();
    });

    test('connections before, across and after both changes are served; established ones survive them', async () => {
      const c = t.bed.clients[0]!;
      const dir = t.bed.director;
      // step 0: the VIP is only routed here
      assert.doesNotMatch(run(['ip', '-n', dir, '-o', 'addr']), new RegExp(`inet ${V.replace(/\./g, '\\.')}/`));
      assertRequestsInTurn(t, 3);
      const streamsMs = 20_000;
      const streamsEnd = Date.now() + streamsMs;
      const streams = t.db.clientAsync(['--streams', '4', '--duration', String(streamsMs), '--timeout', '10000']);
      const held = await new HeldConns(c, { thenBytes: 30e6 }).ready();
      try {
        const r = await held.open(3);
        assert.deepEqual(r.failed, []);
        const ids = r.conns.map((x) => x.id);
        const paused = await held.finish(ids, 1e6);
        assert.ok(paused.every((p) => p.ev === 'paused'), JSON.stringify(paused));
        // step 1: the VIP becomes a local address of the director
        t.bed.ip(dir, ['addr', 'add', `${V}/32`, 'dev', 'lo']);
        await t.db.logged(/VIP 203\.0\.113\.10 is a local address/, 8000);
        assertRequestsInTurn(t, 6);
        assert.equal(tcpConnect(c, V, 81), 'refused', 'control: a port without a service now reaches the local stack, which refuses it');
        // step 2: removed again
        t.bed.ip(dir, ['addr', 'del', `${V}/32`, 'dev', 'lo']);
        await t.db.logged(/VIP 203\.0\.113\.10 is no longer a local address/, 8000);
        assertRequestsInTurn(t, 6);
        assert.ok(Date.now() < streamsEnd, 'both changes happened while the streams ran (too slow a machine otherwise)');
        const ends = await held.resume(ids, 10_000);
        for (const e of ends) assert.ok(e.ev === 'done' && e.ok, `a download paused across both changes completes byte-exact: ${JSON.stringify(e)}`);
      } finally {
        await held.close();
      }
      const [s] = await streams;
      assert.equal(s?.['ok'], true, `keep-alive streams across both changes: ${JSON.stringify(s)}`);
      assert.equal(s?.['failures'], 0);
      assert.equal(s?.['changedSocket'], 0, 'every stream kept its one connection');
      assert.ok(Number(s?.['requests']) > 20, JSON.stringify(s));
      assert.ok(t.db.ulvsd!.exitCode === null, 'ulvsd still runs');
    });
  });
}
