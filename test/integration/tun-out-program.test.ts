/**
 * Golden packets for the TUN's way-out program (bpf/tun_out.bpf.c) on path MTU: a direct-routing
 * or tunnelled packet too big for the route to its real server, and ICMP errors about DR and
 * TUN connections, run by the kernel itself (BPF_PROG_TEST_RUN) inside a namespace with the
 * routes and neighbours a director would have: bytes in -> verdict, bytes out, counters.
 *
 * BPF_PROG_TEST_RUN hands a tc program an Ethernet frame, the TUN an IPv4 packet without one:
 * the tests run ulvs_tun_out_l2, the same code (tun_out.bpf.c's tun_out) for a frame offset of
 * 14, whose output frame keeps the input's Ethernet header (bpf_redirect_neigh, not run here,
 * writes the real one). Checksums are checked by the slow reference (slow-checksum.ts).
 *
 * Namespace h2-tunout-<pid>: h2c 198.51.100.1/24 (towards the client, MTU 1500), h2r
 * 192.0.2.1/24 (towards the real servers, MTU 1280), h2t (stands for the TUN: the ingress).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, closeSync } from 'node:fs';
import { ipv4 } from '../../src/wire/build.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { MapOps, testRun } from '../../src/datapath/tun/bpf.js';
import { closeFd, FLOW_KEY_SIZE, FLOW_VALUE_SIZE } from '../../src/datapath/tun/fastpath.js';
import { loadObject } from '../../src/datapath/tun/libbpf.js';
import { writeKey, writeValue } from '../../src/datapath/tun/flow-entry.js';
import { FLOW_DIR, TUN_OUT_COUNTER } from '../../src/datapath/tun/layouts.gen.js';
import { run } from '../../src/lab/shell.js';
import { packetChecksumsOk, slowChecksum } from '../support/slow-checksum.js';
import { needsRoot } from '../support/root.js';
import { libc } from '../../src/datapath/tun/syscalls.js';

const setns = libc.func('int setns(int fd, int nstype)') as (fd: number, type: number) => number;
const CLONE_NEWNET = 0x40000000;
const NS = `h2-tunout-${process.pid}`;
const CLIENT = '198.51.100.2', VIP = '203.0.113.10', RIP = '192.0.2.11', ROUTER = '198.51.100.254';
const CLIENT_SIDE = '198.51.100.1';
const TC_ACT_SHOT = 2, TC_ACT_REDIRECT = 7, TCX_NEXT = -1;
const ETH = Buffer.from('0200000000010200000000020800', 'hex');
const C = TUN_OUT_COUNTER;
type CounterName = Exclude<keyof typeof C, 'TUN_OUT_COUNTERS'>;

/** quoted bytes at most: the IPv4 header and 512 more (tun_out.bpf.c QUOTE_MAX) */
const QUOTE_MAX = 532;

describe('TUN way-out program: path MTU and ICMP errors for DR and TUN (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  let home = -1;
  let prog = -1;
  let flowsFd = -1;
  let statsFd = -1;
  let flows: MapOps;
  let stats: MapOps;
  let tunIfindex = 0;

  before(() => {
    run(['ip', 'netns', 'add', NS]);
    const ip = (...a: string[]) => run(['ip', '-n', NS, ...a]);
    ip('link', 'add', 'h2c', 'type', 'veth', 'peer', 'name', 'h2c1');
    ip('link', 'add', 'h2r', 'mtu', '1280', 'type', 'veth', 'peer', 'name', 'h2r1', 'mtu', '1280');
    ip('link', 'add', 'h2t', 'type', 'veth', 'peer', 'name', 'h2t1');
    ip('addr', 'add', `${CLIENT_SIDE}/24`, 'dev', 'h2c');
    ip('addr', 'add', '192.0.2.1/24', 'dev', 'h2r');
    for (const d of ['lo', 'h2c', 'h2c1', 'h2r', 'h2r1', 'h2t', 'h2t1']) ip('link', 'set', d, 'up');
    run(['ip', 'netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    ip('neigh', 'replace', RIP, 'lladdr', '02:00:00:00:00:0b', 'dev', 'h2r', 'nud', 'permanent');
    ip('neigh', 'replace', CLIENT, 'lladdr', '02:00:00:00:00:02', 'dev', 'h2c', 'nud', 'permanent');
    tunIfindex = (JSON.parse(ip('-j', 'link', 'show', 'h2t')) as { ifindex: number }[])[0]!.ifindex;
    home = openSync('/proc/self/ns/net', 'r');
    const target = openSync(`/run/netns/${NS}`, 'r');
    try {
      assert.equal(setns(target, CLONE_NEWNET), 0, 'setns into the test namespace');
    } finally {
      closeSync(target);
    }
    const o = loadObject('tun_out.bpf.o', 'ulvs_tun_out_l2', ['ulvs_flows', 'ulvs_tun_stats'], { maxEntries: { ulvs_flows: 32 } });
    prog = o.progFd;
    flowsFd = o.maps.ulvs_flows!;
    statsFd = o.maps.ulvs_tun_stats!;
    flows = new MapOps(flowsFd);
    stats = new MapOps(statsFd);
    const flow = (sport: number, proto: number, dir: number) => {
      const k = Buffer.alloc(FLOW_KEY_SIZE);
      const v = Buffer.alloc(FLOW_VALUE_SIZE);
      writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), sport, 80, proto);
      writeValue(v, 0, parseIPv4(RIP), dir === FLOW_DIR.FLOW_REQUEST ? 8080 : 0, dir, 0);
      flows.update(k, v);
    };
    flow(40020, 6, FLOW_DIR.FLOW_DR_ROUTE);
    flow(40021, 17, FLOW_DIR.FLOW_DR);
    flow(40030, 6, FLOW_DIR.FLOW_TUN_ROUTE);
    flow(40031, 6, FLOW_DIR.FLOW_TUN);
    flow(40040, 6, FLOW_DIR.FLOW_REQUEST);
  });
  after(() => {
    for (const fd of [prog, flowsFd, statsFd]) if (fd >= 0) closeFd(fd);
    if (home >= 0) {
      setns(home, CLONE_NEWNET);
      closeSync(home);
    }
    run(['ip', 'netns', 'del', NS]);
  });

  const counters = (): Record<CounterName, number> => {
    const k = Buffer.alloc(4);
    const v = Buffer.alloc(8);
    const out = {} as Record<CounterName, number>;
    for (const [name, i] of Object.entries(C)) {
      if (name === 'TUN_OUT_COUNTERS') continue;
      k.writeUInt32LE(i);
      out[name as CounterName] = stats.lookup(k, v) ? Number(v.readBigUInt64LE()) : 0;
    }
    return out;
  };
  /** the counters that changed across f(), by how much */
  const delta = <T>(f: () => T): [T, Partial<Record<CounterName, number>>] => {
    const a = counters();
    const r = f();
    const b = counters();
    const d: Partial<Record<CounterName, number>> = {};
    for (const n of Object.keys(a) as CounterName[]) if (b[n] !== a[n]) d[n] = b[n] - a[n];
    return [r, d];
  };
  /** run the program on ETH + ip as if written into the TUN; gso: the skb's gso_size */
  const runOut = (ip: Buffer, gso = 0) => {
    const ctx = Buffer.alloc(192);
    ctx.writeUInt32LE(tunIfindex, 36); // ingress_ifindex
    ctx.writeUInt32LE(tunIfindex, 40); // ifindex
    if (gso) {
      ctx.writeUInt32LE(Math.ceil((ip.length - 40) / gso), 164); // gso_segs
      ctx.writeUInt32LE(gso, 176); // gso_size
    }
    return testRun(prog, Buffer.concat([ETH, ip]), ctx);
  };
  const tcp = (sport: number, size: number, o: { df?: boolean; tos?: number } = {}) =>
    ipv4({ src: CLIENT, dst: VIP, ttl: 64, tos: o.tos ?? 0, flagsFrag: o.df === false ? 0 : 0x4000, id: 0x4242 })
      .tcp({ sport, dport: 80, flags: 'A', seq: 0x01020304, ack: 0x0a0b0c0d })
      .payload(Buffer.alloc(size - 40, 0x5a).map((_, i) => (i * 7) & 0xff))
      .build();
  const udp = (sport: number, size: number) =>
    ipv4({ src: CLIENT, dst: VIP, ttl: 64 }).udp({ sport, dport: 80 }).payload(Buffer.alloc(size - 28).map((_, i) => i & 0xff)).build();

  /**
   * Checks an output frame against the ICMP "fragmentation needed" that must replace `orig`:
   * Ethernet kept, IPv4 director (client side) -> client, TTL 64, TOS 0xc0 | orig's TOS bits,
   * no DF, protocol 1; ICMP 3/4 with `mtu`; the quote is orig's first bytes (at most 532) but
   * for its transport checksum field, which holds the value a checksum completion would write
   * there (slow reference); both checksums right.
   */
  const assertFragNeeded = (out: Buffer, orig: Buffer, mtu: number, l4csumAt: number) => {
    const quoteLen = Math.min(orig.length, QUOTE_MAX);
    assert.equal(out.subarray(0, 14).toString('hex'), ETH.toString('hex'), 'Ethernet header of the frame kept');
    const ip = out.subarray(14);
    assert.equal(ip.length, 28 + quoteLen, 'IPv4 + ICMP headers + the quote');
    assert.equal(ip[0], 0x45);
    assert.equal(ip[1], 0xc0 | (orig[1]! & 0x1e), 'TOS: internetwork control, the original TOS bits');
    assert.equal(ip.readUInt16BE(2), 28 + quoteLen, 'total length');
    assert.equal(ip.readUInt16BE(6), 0, 'no DF, no fragment');
    assert.equal(ip[8], 64, 'TTL 64');
    assert.equal(ip[9], 1, 'ICMP');
    assert.equal(ip.subarray(12, 16).toString('hex'), Buffer.from(CLIENT_SIDE.split('.').map(Number)).toString('hex'), 'source: the director\'s address on the route to the client');
    assert.equal(ip.subarray(16, 20).toString('hex'), orig.subarray(12, 16).toString('hex'), 'destination: the client');
    assert.deepEqual([ip[20], ip[21], ip.readUInt16BE(24), ip.readUInt16BE(26)], [3, 4, 0, mtu], 'type 3 code 4, next-hop MTU');
    assert.deepEqual(packetChecksumsOk(ip), { ip: true, l4: true }, 'IPv4 and ICMP checksums (slow reference)');
    const quote = ip.subarray(28);
    const want = Buffer.from(orig.subarray(0, quoteLen));
    const at = 20 + l4csumAt;
    assert.equal(Buffer.concat([quote.subarray(0, at), quote.subarray(at + 2)]).toString('hex'), Buffer.concat([want.subarray(0, at), want.subarray(at + 2)]).toString('hex'), 'the quote is the original packet\'s first bytes');
    // a device completing a CHECKSUM_PARTIAL checksum from the quoted transport header on
    // would store slowChecksum(those bytes) in the field: the value there already (0 == 0xffff)
    const field = quote.readUInt16BE(at);
    const completed = slowChecksum(quote.subarray(20));
    assert.ok(completed === field || completed + field === 0xffff, `quoted checksum field ${field.toString(16)} is the completion's fixed point (${completed.toString(16)})`);
  };

  test('DR, DF, 1500 bytes over a 1280-byte route: ICMP frag-needed (MTU 1280) to the client, counted', () => {
    const orig = tcp(40020, 1500, { tos: 0x12 });
    const [r, d] = delta(() => runOut(orig));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assertFragNeeded(r.out, orig, 1280, 16);
    assert.deepEqual(d, { TUN_OUT_TOO_BIG: 1, TUN_OUT_FRAG_NEEDED: 1 });
  });

  test('DR, UDP with DF, 1300 bytes: frag-needed (1280), the UDP checksum field is the fixed point', () => {
    const orig = udp(40021, 1300);
    const [r, d] = delta(() => runOut(orig));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assertFragNeeded(r.out, orig, 1280, 6);
    assert.deepEqual(d, { TUN_OUT_TOO_BIG: 1, TUN_OUT_FRAG_NEEDED: 1 });
  });

  test('DR, a packet that fits (1280) goes to the real server unchanged but TTL - 1 (control)', () => {
    const orig = tcp(40020, 1280);
    const [r, d] = delta(() => runOut(orig));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    const want = Buffer.from(orig);
    want[8] = 63;
    want.writeUInt16BE(0, 10);
    want.writeUInt16BE(slowChecksum(want.subarray(0, 20)), 10);
    assert.equal(r.out.subarray(14).toString('hex'), want.toString('hex'));
    assert.deepEqual(d, {});
  });

  test('TUN, DF: 1261 bytes + 20 > 1280: frag-needed with the tunnel MTU (1260); 1260 is encapsulated', () => {
    for (const sport of [40030, 40031]) {
      const orig = tcp(sport, 1261);
      const [r, d] = delta(() => runOut(orig));
      assert.equal(r.retval, TC_ACT_REDIRECT);
      assertFragNeeded(r.out, orig, 1260, 16);
      assert.deepEqual(d, { TUN_OUT_TOO_BIG: 1, TUN_OUT_FRAG_NEEDED: 1 });
    }
    const fits = tcp(40030, 1260);
    const [r, d] = delta(() => runOut(fits));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(r.out.length, 14 + 20 + 1260, 'outer header + the packet');
    assert.equal(r.out[14 + 9], 4, 'IPIP');
    assert.deepEqual(d, { TUN_OUT_ENCAP: 1 });
  });

  test('without DF: dropped and counted, no ICMP (DR and TUN)', () => {
    for (const sport of [40020, 40030]) {
      const [r, d] = delta(() => runOut(tcp(sport, 1500, { df: false })));
      assert.equal(r.retval, TC_ACT_SHOT);
      assert.deepEqual(d, { TUN_OUT_TOO_BIG: 1, TUN_OUT_TOO_BIG_NO_DF: 1 });
    }
  });

  test('GSO super-packet: segments of 1448 (1500 on the wire) do not fit 1280: frag-needed; segments of 1200 pass', () => {
    const orig = tcp(40020, 3000); // BPF_PROG_TEST_RUN takes at most a page
    const [r, d] = delta(() => runOut(orig, 1448));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assertFragNeeded(r.out, orig, 1280, 16);
    assert.deepEqual(d, { TUN_OUT_TOO_BIG: 1, TUN_OUT_FRAG_NEEDED: 1 });
    const [ok, d2] = delta(() => runOut(orig, 1200));
    assert.equal(ok.retval, TC_ACT_REDIRECT);
    assert.equal(ok.out.length, 14 + orig.length, 'the super-packet goes on whole (its 1240-byte segments fit)');
    assert.equal(ok.out[14 + 8], 63);
    assert.deepEqual(d2, {});
  });

  // ICMP errors: a router near the client tells the VIP the reply path's MTU (quoting the real
  // server's reply VIP:80 -> client:port)
  const icmpError = (sport: number, proto: number, o: { type?: number; size?: number; quoteSrc?: string } = {}) => {
    const reply = (proto === 6 ? ipv4({ src: o.quoteSrc ?? VIP, dst: CLIENT, ttl: 60 }).tcp({ sport: 80, dport: sport, flags: 'A' }) : ipv4({ src: o.quoteSrc ?? VIP, dst: CLIENT, ttl: 60 }).udp({ sport: 80, dport: sport }))
      .payload(Buffer.alloc(1400, 1))
      .build();
    const quote = reply.subarray(0, (o.size ?? 576) - 28);
    return ipv4({ src: ROUTER, dst: VIP, ttl: 63, flagsFrag: 0 }).icmp({ type: o.type ?? 3, code: o.type === 11 ? 0 : 4, rest: o.type === 11 ? 0 : 1280, body: quote }).build();
  };

  test('ICMP error about a DR connection: to the real server, unchanged but TTL - 1 (TCP and UDP; types 3, 4, 11, 12)', () => {
    for (const [sport, proto, type] of [[40020, 6, 3], [40021, 17, 3], [40020, 6, 11], [40020, 6, 4], [40020, 6, 12]] as const) {
      const e = icmpError(sport, proto, { type });
      const [r, d] = delta(() => runOut(e));
      assert.equal(r.retval, TC_ACT_REDIRECT, `type ${type}`);
      const want = Buffer.from(e);
      want[8] = 62;
      want.writeUInt16BE(0, 10);
      want.writeUInt16BE(slowChecksum(want.subarray(0, 20)), 10);
      assert.equal(r.out.subarray(14).toString('hex'), want.toString('hex'));
      assert.deepEqual(packetChecksumsOk(r.out.subarray(14)), { ip: true, l4: true });
      assert.deepEqual(d, { TUN_OUT_ICMP_TO_DR: 1 });
    }
  });

  test('ICMP error about a tunnelled connection: encapsulated to the real server (outer 192.0.2.1 -> RIP)', () => {
    for (const sport of [40030, 40031]) {
      const e = icmpError(sport, 6);
      const [r, d] = delta(() => runOut(e));
      assert.equal(r.retval, TC_ACT_REDIRECT);
      const o = r.out.subarray(14, 34);
      assert.equal(o[0], 0x45);
      assert.equal(o.readUInt16BE(2), 20 + e.length);
      assert.equal(o[8], 62, 'outer TTL: the inner one after the decrement');
      assert.equal(o[9], 4, 'IPIP');
      assert.equal(o.subarray(12, 20).toString('hex'), 'c0000201c000020b', '192.0.2.1 -> RIP');
      assert.equal(slowChecksum(o), 0, 'outer checksum');
      const inner = Buffer.from(e);
      inner[8] = 62;
      inner.writeUInt16BE(0, 10);
      inner.writeUInt16BE(slowChecksum(inner.subarray(0, 20)), 10);
      assert.equal(r.out.subarray(34).toString('hex'), inner.toString('hex'));
      assert.deepEqual(d, { TUN_OUT_ICMP_TO_TUN: 1 });
    }
  });

  test('ICMP is never answered with an ICMP error: a too-big ICMP error for a DR server is dropped, counted', () => {
    const e = icmpError(40020, 6, { size: 1400 });
    const [r, d] = delta(() => runOut(Buffer.from(ipv4({ src: ROUTER, dst: VIP, ttl: 63, flagsFrag: 0x4000 }).icmp({ type: 3, code: 4, rest: 1280, body: e.subarray(28) }).build())));
    assert.equal(r.retval, TC_ACT_SHOT);
    assert.deepEqual(d, { TUN_OUT_TOO_BIG: 1, TUN_OUT_TOO_BIG_ICMP: 1 });
  });

  test('not ours: an error about an unknown tuple, about a NAT connection, a quote not from the VIP, an echo request: routed by destination', () => {
    for (const p of [icmpError(40099, 6), icmpError(40040, 6), icmpError(40020, 6, { quoteSrc: '203.0.113.11' }), ipv4({ src: ROUTER, dst: VIP }).icmp({ type: 8, code: 0 }).build()]) {
      const [r, d] = delta(() => runOut(p));
      assert.equal(r.retval, TCX_NEXT, 'no route to the VIP here: the stack gets it');
      assert.deepEqual(d, {});
    }
  });

  test('rate limit: a burst of too-big packets gets at most the budget (50 per CPU, 1 per ms) answered, the rest counted', () => {
    const orig = tcp(40020, 1500);
    const t0 = performance.now();
    const [, d] = delta(() => {
      for (let i = 0; i < 600; i++) runOut(orig);
    });
    const ms = performance.now() - t0;
    assert.equal(d.TUN_OUT_TOO_BIG, 600);
    assert.equal((d.TUN_OUT_FRAG_NEEDED ?? 0) + (d.TUN_OUT_ICMP_RATE_LIMITED ?? 0), 600);
    // two CPUs at most here, each with its own budget: 2 * 50 banked + one per ms elapsed each
    assert.ok((d.TUN_OUT_FRAG_NEEDED ?? 0) <= 2 * (50 + Math.ceil(ms) + 1), JSON.stringify({ d, ms }));
    assert.ok((d.TUN_OUT_ICMP_RATE_LIMITED ?? 0) > 0 || ms > 240, JSON.stringify({ d, ms }));
  });
});
