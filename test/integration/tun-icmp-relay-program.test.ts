/**
 * Golden packets for the fast path's relay of ICMP errors about the director's own tunnel
 * packets (bpf/ulvs_tun_icmp.h, in bpf/fastpath.bpf.c), run by BPF_PROG_TEST_RUN in a
 * namespace with a director's routes and neighbours:
 *
 *   client 198.51.100.2 (permanent neighbour) -- fpa 198.51.100.1/24 | fpb 192.0.2.1/24 -- router 192.0.2.9
 *   real servers: 192.0.2.11 on-link, 192.0.2.192/26 via the router
 *
 * A router's error (router -> 192.0.2.1, quoting our outer packet 192.0.2.1 -> RIP of the
 * tunnel type, which carries the client's packet client -> VIP) enters fpb in a frame to fpb's
 * own MAC. Input bytes -> return value, output bytes, counters. The expected output is built
 * independently (src/wire/build.ts): ICMP from the VIP to the client, TTL 64, TOS as icmp_send,
 * no DF, the router's type/code/rest (frag-needed: the MTU minus 20 IPIP, 32 GUE, 24 GRE),
 * quoting the inner packet as the router quoted it; only the IP id (random) is taken from the
 * output. Both checksums are verified by the slow reference (test/support/slow-checksum.ts).
 * Controls: wrong real server, no flow, wrong GUE port, a truncated quote, an inner packet
 * without DF, an error not about our packet: each leaves the packet unchanged (TCX_NEXT) and
 * counts where the contract says (or nowhere).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { ipv4 } from '../../src/wire/build.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { fdById, mapInfo, MapOps, progInfo, testRun } from '../../src/datapath/tun/bpf.js';
import { closeFd, FLOW_KEY_SIZE, FLOW_VALUE_SIZE, loadFastPath, type FastPathMaps } from '../../src/datapath/tun/fastpath.js';
import { writeKey, writeValue } from '../../src/datapath/tun/flow-entry.js';
import { FAST_COUNTER, FLOW_DIR, TUN_TYPE } from '../../src/datapath/tun/layouts.gen.js';
import { run } from '../../src/lab/shell.js';
import { libc } from '../../src/datapath/tun/syscalls.js';
import { packetChecksumsOk, slowSum } from '../support/slow-checksum.js';
import { needsRoot } from '../support/root.js';

const setns = libc.func('int setns(int fd, int nstype)') as (fd: number, type: number) => number;
const CLONE_NEWNET = 0x40000000;
const NS = `h9icmp${process.pid}`;
const CLIENT = '198.51.100.2', VIP = '203.0.113.10', RIP = '192.0.2.11', FAR = '192.0.2.200', ROUTER = '192.0.2.9', DIP = '192.0.2.1';
const CLIENT_MAC = '020000000002', ROUTER_MAC = '020000000009';
const GUE_PORT = 6080;
const TCX_NEXT = -1, TC_ACT_REDIRECT = 7, TC_ACT_SHOT = 2;
const hex = (s: string) => Buffer.from(s, 'hex');
type Counter = Exclude<keyof typeof FAST_COUNTER, 'FAST_COUNTERS'>;
const COUNTERS = Object.keys(FAST_COUNTER).filter((k) => k !== 'FAST_COUNTERS') as Counter[];

/** The client's request as it reached the director (1400 bytes, DF unless told). */
const inner = (sport: number, o: { df?: boolean; tos?: number } = {}) =>
  ipv4({ src: CLIENT, dst: VIP, ttl: 63, tos: o.tos ?? 0x28, flagsFrag: o.df === false ? 0 : 0x4000, id: 0x4321 })
    .tcp({ sport, dport: 80, flags: 'A', seq: 7000, ack: 9000 })
    .payload(Buffer.alloc(1360, 0x61))
    .build();

/** Our outer packet (as tun_encap writes it) carrying `inn` to `rip`. */
function outer(type: 'ipip' | 'gue' | 'gre', rip: string, inn: Buffer, port = GUE_PORT): Buffer {
  const o = { src: DIP, dst: rip, ttl: inn[8]!, tos: inn[1]!, id: 0x0bad, flagsFrag: inn.readUInt16BE(6) & 0x4000 };
  if (type === 'gue') return ipv4(o).udp({ sport: 40001, dport: port, noChecksum: true }).payload(Buffer.concat([hex('00040000'), inn])).build();
  if (type === 'gre') return ipv4(o).raw(47).payload(Buffer.concat([hex('00000800'), inn])).build();
  return ipv4(o).raw(4).payload(inn).build();
}

/** The router's error about `out`, quoting its first `quote` bytes (a Linux router: 548). */
const routerError = (out: Buffer, type: number, code: number, rest: number, quote = 548, dst = DIP) =>
  ipv4({ src: ROUTER, dst, ttl: 64, tos: 0xc0, flagsFrag: 0, id: 0x77 }).icmp({ type, code, rest, body: out.subarray(0, quote) }).build();

describe('ICMP errors about the director\'s tunnel packets: relayed to the client by the fast path (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  let home = -1;
  let maps: FastPathMaps;
  let fast = -1;
  let flows: MapOps, stats: MapOps;
  const ifindex: Record<string, number> = {};
  let fpbMac = Buffer.alloc(6);

  before(() => {
    run(['ip', 'netns', 'add', NS]);
    const ip = (...a: string[]) => run(['ip', '-n', NS, ...a]);
    ip('link', 'add', 'fpa', 'type', 'veth', 'peer', 'name', 'fpb');
    ip('addr', 'add', '198.51.100.1/24', 'dev', 'fpa');
    ip('addr', 'add', `${DIP}/24`, 'dev', 'fpb');
    for (const d of ['lo', 'fpa', 'fpb']) ip('link', 'set', d, 'up');
    run(['ip', 'netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']); // a director forwards
    ip('neigh', 'replace', CLIENT, 'lladdr', CLIENT_MAC.replace(/(..)(?!$)/g, '$1:'), 'dev', 'fpa', 'nud', 'permanent');
    ip('neigh', 'replace', ROUTER, 'lladdr', ROUTER_MAC.replace(/(..)(?!$)/g, '$1:'), 'dev', 'fpb', 'nud', 'permanent');
    ip('route', 'add', '192.0.2.192/26', 'via', ROUTER);
    for (const d of ['fpa', 'fpb']) {
      const j = JSON.parse(run(['ip', '-n', NS, '-j', 'link', 'show', d])) as { ifindex: number; address: string }[];
      ifindex[d] = j[0]!.ifindex;
      if (d === 'fpb') fpbMac = Buffer.from(j[0]!.address.replace(/:/g, ''), 'hex');
    }
    // BPF_PROG_TEST_RUN takes the ifindex (and the routes) of this thread's namespace
    home = openSync('/proc/self/ns/net', 'r');
    const target = openSync(`/run/netns/${NS}`, 'r');
    try {
      assert.equal(setns(target, CLONE_NEWNET), 0, 'setns into the test namespace');
    } finally {
      closeSync(target);
    }
    ({ maps, progFd: fast } = loadFastPath(64));
    flows = new MapOps(maps.flowsFd);
    for (const id of progInfo(fast).mapIds) {
      const m = fdById('map', id);
      if (m !== null && mapInfo(m).name === 'ulvs_fast_stats') stats = new MapOps(m);
      else if (m !== null) closeFd(m);
    }
    assert.ok(stats, 'the fast path\'s counters');
  });
  after(() => {
    for (const fd of [fast, maps?.flowsFd ?? -1, maps?.slotsFd ?? -1]) if (fd >= 0) closeFd(fd);
    if (home >= 0) {
      setns(home, CLONE_NEWNET);
      closeSync(home);
    }
    run(['ip', 'netns', 'del', NS]);
  });

  /** client:sport -> VIP:80 goes to rip in a `type` tunnel (FLOW_TUN or FLOW_TUN_ROUTE). */
  const tunFlow = (sport: number, rip: string, type: number, port: number, dir: number = FLOW_DIR.FLOW_TUN) => {
    const k = Buffer.alloc(FLOW_KEY_SIZE), v = Buffer.alloc(FLOW_VALUE_SIZE);
    writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), sport, 80, 6);
    writeValue(v, 0, parseIPv4(rip), port, dir, dir === FLOW_DIR.FLOW_TUN ? 3 : 0, type);
    flows.update(k, v);
  };
  /** The fast path at fpb's ingress, the frame to fpb's own MAC (PACKET_HOST) from the router. */
  const runFast = (ip: Buffer) => {
    const ctx = Buffer.alloc(44);
    ctx.writeUInt32LE(ifindex['fpb']!, 36); // ingress_ifindex
    ctx.writeUInt32LE(ifindex['fpb']!, 40); // ifindex
    return testRun(fast, Buffer.concat([fpbMac, hex(ROUTER_MAC), hex('0800'), ip]), ctx);
  };
  const counters = (): Record<Counter, number> => {
    const out = {} as Record<Counter, number>;
    const k = Buffer.alloc(4), v = Buffer.alloc(8);
    for (const c of COUNTERS) {
      k.writeUInt32LE(FAST_COUNTER[c]);
      out[c] = stats.lookup(k, v) ? Number(v.readBigUInt64LE(0)) : 0;
    }
    return out;
  };
  /** Counter changes across `f` (only the nonzero ones). */
  const delta = <T>(f: () => T): [T, Partial<Record<Counter, number>>] => {
    const a = counters();
    const r = f();
    const b = counters();
    const d: Partial<Record<Counter, number>> = {};
    for (const c of COUNTERS) if (b[c] !== a[c]) d[c] = b[c] - a[c];
    return [r, d];
  };
  /** What the client must receive: ICMP VIP -> client quoting `quote` (id from the output). */
  const expected = (got: Buffer, inn: Buffer, type: number, code: number, rest: number, quote: Buffer) =>
    ipv4({ src: VIP, dst: CLIENT, ttl: 64, tos: (inn[1]! & 0x1e) | 0xc0, flagsFrag: 0, id: got.readUInt16BE(4) }).icmp({ type, code, rest, body: quote }).build();
  /** The input unchanged, TCX_NEXT. */
  const untouched = (r: { retval: number; out: Buffer }, err: Buffer) => {
    assert.equal(r.retval, TCX_NEXT);
    assert.equal(r.out.subarray(14).toString('hex'), err.toString('hex'), 'the packet is not changed');
  };

  const types = [
    ['ipip', TUN_TYPE.TUN_IPIP, 0, 20, 0],
    ['gue', TUN_TYPE.TUN_GUE, GUE_PORT, 32, 12],
    ['gre', TUN_TYPE.TUN_GRE, 0, 24, 4],
  ] as const;
  let sport = 42000;
  for (const [name, type, port, overhead, hdr] of types)
    for (const [dir, dirName] of [[FLOW_DIR.FLOW_TUN, 'FLOW_TUN'], [FLOW_DIR.FLOW_TUN_ROUTE, 'FLOW_TUN_ROUTE']] as const)
      test(`${name.toUpperCase()} (${dirName}): frag-needed 1280 about our outer packet -> frag-needed ${1280 - overhead} from the VIP to the client, quoting the inner packet; counted`, () => {
        const sp = sport++;
        tunFlow(sp, FAR, type, port, dir);
        const inn = inner(sp);
        const out = outer(name, FAR, inn);
        const err = routerError(out, 3, 4, 1280);
        const [r, d] = delta(() => runFast(err));
        assert.equal(r.retval, TC_ACT_REDIRECT);
        const got = r.out.subarray(14);
        const quote = out.subarray(20 + hdr, 548);
        assert.equal(got.toString('hex'), expected(got, inn, 3, 4, 1280 - overhead, quote).toString('hex'));
        assert.equal(quote.subarray(0, 20).toString('hex'), inn.subarray(0, 20).toString('hex'), 'the quote starts with the inner header');
        assert.equal(slowSum(got.subarray(0, 20)), 0xffff, 'IPv4 checksum (slow reference)');
        assert.deepEqual(packetChecksumsOk(got), { ip: true, l4: true }, 'ICMP checksum (slow reference)');
        assert.deepEqual(d, { FAST_ICMP_FRAG_NEEDED: 1 });
      });

  test('time exceeded (type 11) and port unreachable (type 3 code 3) about our GRE and IPIP packets: relayed with the router\'s type, code and rest', () => {
    for (const [name, type, hdr, icmpType, code] of [['gre', TUN_TYPE.TUN_GRE, 4, 11, 0], ['ipip', TUN_TYPE.TUN_IPIP, 0, 3, 3]] as const) {
      const sp = sport++;
      tunFlow(sp, RIP, type, 0);
      const inn = inner(sp, { tos: 0xb9 });
      const out = outer(name, RIP, inn);
      const [r, d] = delta(() => runFast(routerError(out, icmpType, code, 0, 200)));
      assert.equal(r.retval, TC_ACT_REDIRECT);
      const got = r.out.subarray(14);
      assert.equal(got.toString('hex'), expected(got, inn, icmpType, code, 0, out.subarray(20 + hdr, 200)).toString('hex'));
      assert.deepEqual(packetChecksumsOk(got), { ip: true, l4: true });
      assert.deepEqual(d, { FAST_ICMP_RELAYED: 1 });
    }
  });

  test('a frame with link-layer padding: the relayed packet ends at the error\'s IP length', () => {
    const sp = sport++;
    tunFlow(sp, RIP, TUN_TYPE.TUN_IPIP, 0);
    const inn = inner(sp);
    const out = outer('ipip', RIP, inn);
    const err = routerError(out, 3, 4, 1400, 48); // the outer header + the inner 20 + 8
    const r = runFast(Buffer.concat([err, Buffer.alloc(10)]));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    const got = r.out.subarray(14);
    assert.equal(got.toString('hex'), expected(got, inn, 3, 4, 1380, inn.subarray(0, 28)).toString('hex'));
  });

  test('controls: wrong real server, no flow, wrong GUE port, DR entry -> left to the host (TCX_NEXT, unchanged), FAST_ICMP_NO_FLOW', () => {
    const sp = sport++;
    tunFlow(sp, RIP, TUN_TYPE.TUN_IPIP, 0);
    const wrongRip = routerError(outer('ipip', FAR, inner(sp)), 3, 4, 1280);
    let [r, d] = delta(() => runFast(wrongRip));
    untouched(r, wrongRip);
    assert.deepEqual(d, { FAST_ICMP_NO_FLOW: 1 });
    const wrongType = routerError(outer('gre', RIP, inner(sp)), 3, 4, 1280);
    [r, d] = delta(() => runFast(wrongType));
    untouched(r, wrongType);
    assert.deepEqual(d, { FAST_ICMP_NO_FLOW: 1 }, 'the entry says IPIP, the quote is GRE');
    const noFlow = routerError(outer('ipip', RIP, inner(sport++)), 3, 4, 1280);
    [r, d] = delta(() => runFast(noFlow));
    untouched(r, noFlow);
    assert.deepEqual(d, { FAST_ICMP_NO_FLOW: 1 });
    const gp = sport++;
    tunFlow(gp, RIP, TUN_TYPE.TUN_GUE, GUE_PORT);
    const wrongPort = routerError(outer('gue', RIP, inner(gp), GUE_PORT + 1), 3, 4, 1280);
    [r, d] = delta(() => runFast(wrongPort));
    untouched(r, wrongPort);
    assert.deepEqual(d, { FAST_ICMP_NO_FLOW: 1 });
    const dp = sport++;
    tunFlow(dp, RIP, 0, 0, FLOW_DIR.FLOW_DR);
    const dr = routerError(outer('ipip', RIP, inner(dp)), 3, 4, 1280);
    [r, d] = delta(() => runFast(dr));
    untouched(r, dr);
    assert.deepEqual(d, { FAST_ICMP_NO_FLOW: 1 });
  });

  test('controls: a quote too short for the inner header + 8 bytes -> FAST_ICMP_UNREADABLE; too short for the GUE header -> not ours (uncounted)', () => {
    const sp = sport++;
    tunFlow(sp, RIP, TUN_TYPE.TUN_IPIP, 0);
    const out = outer('ipip', RIP, inner(sp));
    const rfc792 = routerError(out, 3, 4, 1280, 28); // outer header + 8 bytes: what RFC 792 promises
    let [r, d] = delta(() => runFast(rfc792));
    untouched(r, rfc792);
    assert.deepEqual(d, { FAST_ICMP_UNREADABLE: 1 });
    const oneShort = routerError(out, 3, 4, 1280, 47);
    [r, d] = delta(() => runFast(oneShort));
    untouched(r, oneShort);
    assert.deepEqual(d, { FAST_ICMP_UNREADABLE: 1 });
    const gp = sport++;
    tunFlow(gp, RIP, TUN_TYPE.TUN_GUE, GUE_PORT);
    const gueShort = routerError(outer('gue', RIP, inner(gp)), 3, 4, 1280, 28);
    [r, d] = delta(() => runFast(gueShort));
    untouched(r, gueShort);
    assert.deepEqual(d, {});
  });

  test('controls: frag-needed about an inner packet without DF, or with an MTU too small for the overhead -> FAST_ICMP_NOT_RELAYED, left to the host', () => {
    const sp = sport++;
    tunFlow(sp, RIP, TUN_TYPE.TUN_GRE, 0);
    const noDf = routerError(outer('gre', RIP, inner(sp, { df: false })), 3, 4, 1280);
    let [r, d] = delta(() => runFast(noDf));
    untouched(r, noDf);
    assert.deepEqual(d, { FAST_ICMP_NOT_RELAYED: 1 });
    const tiny = routerError(outer('gre', RIP, inner(sp)), 3, 4, 68 + 24 - 1);
    [r, d] = delta(() => runFast(tiny));
    untouched(r, tiny);
    assert.deepEqual(d, { FAST_ICMP_NOT_RELAYED: 1 });
  });

  test('controls: errors not about our tunnel packets are left alone and uncounted (another destination, quoted source not ours, echo request, source quench)', () => {
    const sp = sport++;
    tunFlow(sp, RIP, TUN_TYPE.TUN_IPIP, 0);
    const out = outer('ipip', RIP, inner(sp));
    for (const err of [
      routerError(out, 3, 4, 1280, 548, '192.0.2.2'), // to someone else: the quoted source is not the destination
      ipv4({ src: ROUTER, dst: DIP, ttl: 64, flagsFrag: 0 }).icmp({ type: 8, code: 0, rest: 0x10001, body: out.subarray(0, 100) }).build(),
      routerError(out, 4, 0, 0),
      routerError(out, 12, 0, 0),
    ]) {
      const [r, d] = delta(() => runFast(err));
      untouched(r, err);
      assert.deepEqual(d, {});
    }
  });

  test('budget: errors beyond 50 at once plus 1 a millisecond per CPU are dropped (TC_ACT_SHOT) and counted', () => {
    const sp = sport++;
    tunFlow(sp, RIP, TUN_TYPE.TUN_IPIP, 0);
    const err = routerError(outer('ipip', RIP, inner(sp)), 3, 4, 1280);
    const n = 2000;
    const t0 = process.hrtime.bigint();
    const [rets, d] = delta(() => Array.from({ length: n }, () => runFast(err).retval));
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    const sent = rets.filter((x) => x === TC_ACT_REDIRECT).length;
    assert.equal(sent + rets.filter((x) => x === TC_ACT_SHOT).length, n);
    assert.equal(d.FAST_ICMP_FRAG_NEEDED ?? 0, sent);
    assert.equal(d.FAST_ICMP_RATE_LIMITED ?? 0, n - sent);
    // the bound holds however slowly the loop ran: each CPU banks 50 and earns 1 a millisecond
    const cpus = Number(run(['nproc']).trim());
    assert.ok(sent <= cpus * (50 + Math.ceil(ms) + 1), `${sent} sent in ${ms.toFixed(1)} ms on ${cpus} CPUs`);
    assert.ok(sent >= 1);
  });
});
