/**
 * Golden packets for the kernel fast path's program (bpf/fastpath.bpf.c, loaded as ulvsd loads it), run by the
 * kernel itself (BPF_PROG_TEST_RUN) inside a namespace that has the routes and neighbours a
 * director would: input frame -> return value and output frame. The rewrites are the golden
 * packets the engine's tests use too (test/support/golden-cases.ts); checksums are verified by
 * the slow reference. The counters the program keeps are read back from the slot map.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, closeSync } from 'node:fs';
import { ipv4 } from '../../src/wire/build.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { MapOps, testRun } from '../../src/datapath/tun/bpf.js';
import { loadFastPath, closeFd, FLOW_KEY_SIZE, FLOW_VALUE_SIZE, SLOT_SIZE, type FastPathMaps } from '../../src/datapath/tun/fastpath.js';
import { Offloader, writeKey, writeValue } from '../../src/datapath/tun/offloader.js';
import { ConnFlag, ConnTable, FWD_SHIFT } from '../../src/core/conn-table.js';
import { FLOW_DIR, FLOW_VALUE } from '../../src/datapath/tun/layouts.gen.js';
import { OffloadReport } from '../../src/core/offload.js';
import { run } from '../../src/lab/shell.js';
import { packetChecksumsOk } from '../support/slow-checksum.js';
import { FLOW, FLOW_CASES } from '../support/golden-cases.js';
import { needsRoot } from '../support/root.js';
import { libc } from '../../src/datapath/tun/syscalls.js';

const setns = libc.func('int setns(int fd, int nstype)') as (fd: number, type: number) => number;
const CLONE_NEWNET = 0x40000000;
const NS = `ulvsfp${process.pid}`;
const { client: CLIENT, vip: VIP, rip: RIP } = FLOW;
const GHOST = '192.0.2.99';
const CLIENT_MAC = '02:00:00:00:00:02', RIP_MAC = '02:00:00:00:00:0b', IN_MAC = '02:00:00:00:01:01';
const mac = (s: string) => Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
const TCX_NEXT = -1, TC_ACT_OK = 0, TC_ACT_REDIRECT = 7;

describe('fast-path program (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  let home = -1;
  let maps: FastPathMaps;
  let prog = -1;
  let flows: MapOps;
  let slots: MapOps;
  const ifindex: Record<string, number> = {};
  const macOf: Record<string, Buffer> = {};

  before(() => {
    run(['ip', 'netns', 'add', NS]);
    const ip = (...a: string[]) => run(['ip', '-n', NS, ...a]);
    ip('link', 'add', 'fpa', 'type', 'veth', 'peer', 'name', 'fpb');
    // frames to the director carry its MAC: the kernel marks them PACKET_HOST (eth_type_trans)
    ip('link', 'set', 'fpa', 'address', IN_MAC);
    ip('addr', 'add', '198.51.100.1/24', 'dev', 'fpa');
    ip('addr', 'add', '192.0.2.1/24', 'dev', 'fpb');
    for (const d of ['lo', 'fpa', 'fpb']) ip('link', 'set', d, 'up');
    run(['ip', 'netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    ip('neigh', 'replace', RIP, 'lladdr', RIP_MAC, 'dev', 'fpb', 'nud', 'permanent');
    ip('neigh', 'replace', CLIENT, 'lladdr', CLIENT_MAC, 'dev', 'fpa', 'nud', 'permanent');
    home = openSync('/proc/self/ns/net', 'r');
    const target = openSync(`/run/netns/${NS}`, 'r');
    try {
      assert.equal(setns(target, CLONE_NEWNET), 0, 'setns into the test namespace');
    } finally {
      closeSync(target);
    }
    for (const d of ['fpa', 'fpb']) {
      const j = JSON.parse(run(['ip', '-n', NS, '-j', 'link', 'show', d])) as { ifindex: number; address: string }[];
      ifindex[d] = j[0]!.ifindex;
      macOf[d] = mac(j[0]!.address);
    }
    ({ maps, progFd: prog } = loadFastPath(8));
    flows = new MapOps(maps.flowsFd);
    slots = new MapOps(maps.slotsFd);
    // connection in slot 3: client:40000 -> VIP:80 is served by RIP:8080 (TCP and UDP alike)
    const k = Buffer.alloc(FLOW_KEY_SIZE);
    const v = Buffer.alloc(FLOW_VALUE_SIZE);
    for (const proto of [6, 17]) {
      writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), 40000, 80, proto);
      writeValue(v, 0, parseIPv4(RIP), 8080, 0, 3);
      flows.update(k, v);
      writeKey(k, 0, parseIPv4(RIP), parseIPv4(CLIENT), 8080, 40000, proto);
      writeValue(v, 0, parseIPv4(VIP), 80, 1, 3);
      flows.update(k, v);
    }
    // a connection whose real server has no neighbour entry: the kernel's slow path must resolve it
    writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), 40001, 80, 6);
    writeValue(v, 0, parseIPv4(GHOST), 8080, 0, 4);
    flows.update(k, v);
  });
  after(() => {
    if (prog >= 0) closeFd(prog);
    if (maps) for (const fd of [maps.flowsFd, maps.slotsFd]) closeFd(fd);
    if (home >= 0) {
      setns(home, CLONE_NEWNET);
      closeSync(home);
    }
    run(['ip', 'netns', 'del', NS]);
  });

  const frame = (dst: Buffer, src: Buffer, ip: Buffer, ethertype = 0x0800) => {
    const h = Buffer.alloc(14);
    dst.copy(h, 0);
    src.copy(h, 6);
    h.writeUInt16BE(ethertype, 12);
    return Buffer.concat([h, ip]);
  };
  const runOn = (dev: string, f: Buffer) => {
    const ctx = Buffer.alloc(44);
    ctx.writeUInt32LE(ifindex[dev]!, 36); // ingress_ifindex
    ctx.writeUInt32LE(ifindex[dev]!, 40); // ifindex
    return testRun(prog, f, ctx);
  };
  const slot = (i: number) => {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(i);
    const v = Buffer.alloc(SLOT_SIZE);
    slots.lookup(key, v);
    return { pktsIn: Number(v.readBigUInt64LE(0)), pktsOut: Number(v.readBigUInt64LE(8)), bytesIn: Number(v.readBigUInt64LE(16)), bytesOut: Number(v.readBigUInt64LE(24)), last: v.readBigUInt64LE(32) };
  };

  // The golden packets of an established connection, shared with the engine's golden tests
  // (test/support/golden-cases.ts): the program's output is the engine's, with TTL - 1, in a
  // frame with the route's Ethernet addresses, out of the route's interface.
  for (const c of FLOW_CASES) {
    test(`golden: ${c.name}; TTL - 1, Ethernet addresses of the route; redirected, counted`, () => {
      const request = c.dir === 'request';
      const before = slot(3);
      const f = request ? frame(mac(IN_MAC), mac(CLIENT_MAC), c.input) : frame(macOf['fpb']!, mac(RIP_MAC), c.input);
      const r = runOn(request ? 'fpa' : 'fpb', f);
      assert.equal(r.retval, TC_ACT_REDIRECT);
      const want = request ? frame(mac(RIP_MAC), macOf['fpb']!, c.output(63)) : frame(mac(CLIENT_MAC), macOf['fpa']!, c.output(63));
      assert.equal(r.out.toString('hex'), want.toString('hex'));
      assert.deepEqual(packetChecksumsOk(r.out.subarray(14)), { ip: true, l4: true });
      const after = slot(3);
      const [pk, by, otherPk] = request ? (['pktsIn', 'bytesIn', 'pktsOut'] as const) : (['pktsOut', 'bytesOut', 'pktsIn'] as const);
      assert.equal(after[pk] - before[pk], 1);
      assert.equal(after[by] - before[by], c.input.length, 'IP bytes, as IPVS counts them');
      assert.equal(after[otherPk], before[otherPk]);
      assert.ok(after.last > 0n, 'time of the last packet recorded');
    });
  }

  test('UDP: a zero checksum ("none") stays zero (the engine writes a full one instead: not a shared case)', () => {
    const none = ipv4({ src: CLIENT, dst: VIP, ttl: 30 }).udp({ sport: 40000, dport: 80, noChecksum: true }).payload('query').build();
    const r = runOn('fpa', frame(mac(IN_MAC), mac(CLIENT_MAC), none));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(r.out.readUInt16BE(14 + 20 + 6), 0);
    assert.equal(r.out.subarray(14).toString('hex'), ipv4({ src: CLIENT, dst: RIP, ttl: 29 }).udp({ sport: 40000, dport: 8080, noChecksum: true }).payload('query').build().toString('hex'));
  });

  test('a frame for another host\'s MAC (PACKET_OTHERHOST, e.g. flooded by a bridge) is left alone: TC_ACT_OK, which skips the tc capture too; nothing counted', () => {
    const ip = ipv4({ src: CLIENT, dst: VIP, ttl: 64 }).tcp({ sport: 40000, dport: 80, flags: 'A' }).payload('x').build();
    const before = slot(3);
    const other = frame(mac('02:00:00:00:01:02'), mac(CLIENT_MAC), ip);
    const r = runOn('fpa', other);
    assert.equal(r.retval, TC_ACT_OK);
    assert.equal(r.out.toString('hex'), other.toString('hex'));
    assert.deepEqual(slot(3), before);
    // control: the same packet to the director's own MAC is the connection's and is forwarded
    assert.equal(runOn('fpa', frame(mac(IN_MAC), mac(CLIENT_MAC), ip)).retval, TC_ACT_REDIRECT);
  });

  // Everything the engine must see, or the kernel's own path must handle, passes untouched.
  const untouched: [string, string, () => Buffer][] = [
    ['SYN (scheduling, state)', 'fpa', () => ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40000, dport: 80, flags: 'S' }).build()],
    ['FIN (state)', 'fpa', () => ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40000, dport: 80, flags: 'FA' }).build()],
    ['RST (state)', 'fpb', () => ipv4({ src: RIP, dst: CLIENT }).tcp({ sport: 8080, dport: 40000, flags: 'R' }).build()],
    ['IP options', 'fpa', () => ipv4({ src: CLIENT, dst: VIP, options: Uint8Array.of(1, 1, 1, 0) }).tcp({ sport: 40000, dport: 80, flags: 'A' }).build()],
    ['a fragment', 'fpa', () => ipv4({ src: CLIENT, dst: VIP, flagsFrag: 0x2000 }).udp({ sport: 40000, dport: 80 }).payload('x'.repeat(20)).build()],
    ['TTL 1 (the kernel sends time-exceeded)', 'fpa', () => ipv4({ src: CLIENT, dst: VIP, ttl: 1 }).tcp({ sport: 40000, dport: 80, flags: 'A' }).build()],
    ['no flow entry', 'fpa', () => ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40002, dport: 80, flags: 'A' }).build()],
    ['neighbour not resolved', 'fpa', () => ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40001, dport: 80, flags: 'A' }).build()],
    ['ICMP', 'fpa', () => ipv4({ src: CLIENT, dst: VIP }).icmp({ type: 8, code: 0 }).build()],
    ['truncated TCP header', 'fpa', () => ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40000, dport: 80, flags: 'A' }).build().subarray(0, 30)],
  ];
  for (const [name, dev, build] of untouched) {
    test(`passes on untouched: ${name}`, () => {
      const before = [slot(3), slot(4)];
      const f = frame(dev === 'fpa' ? mac(IN_MAC) : macOf[dev]!, mac(CLIENT_MAC), build());
      const r = runOn(dev, f);
      assert.equal(r.retval, TCX_NEXT);
      assert.equal(r.out.toString('hex'), f.toString('hex'));
      assert.deepEqual([slot(3), slot(4)], before, 'nothing counted');
    });
  }

  test('passes on untouched: not IPv4 (ARP)', () => {
    const f = frame(Buffer.alloc(6, 0xff), mac(CLIENT_MAC), Buffer.alloc(28), 0x0806);
    const r = runOn('fpa', f);
    assert.equal(r.retval, TCX_NEXT);
    assert.equal(r.out.toString('hex'), f.toString('hex'));
  });

  // Direct routing: the request leaves as it came but for TTL - 1, to the real server's MAC.
  const drFlow = (sport: number, rip: string, dir: number, slotNo: number) => {
    const k = Buffer.alloc(FLOW_KEY_SIZE);
    const v = Buffer.alloc(FLOW_VALUE_SIZE);
    writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), sport, 80, 6);
    writeValue(v, 0, parseIPv4(rip), 0, dir, slotNo);
    flows.update(k, v);
  };
  const drPacket = (sport: number, ttl = 64) => ipv4({ src: CLIENT, dst: VIP, ttl }).tcp({ sport, dport: 80, flags: 'A' }).payload('direct').build();

  test('direct routing (FLOW_DR): IP header unchanged but TTL - 1, to the real server\'s MAC; counted as a request', () => {
    drFlow(40020, RIP, FLOW_DIR.FLOW_DR, 7);
    const before = slot(7);
    const r = runOn('fpa', frame(mac(IN_MAC), mac(CLIENT_MAC), drPacket(40020)));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(r.out.toString('hex'), frame(mac(RIP_MAC), macOf['fpb']!, drPacket(40020, 63)).toString('hex'));
    assert.deepEqual(packetChecksumsOk(r.out.subarray(14)), { ip: true, l4: true });
    assert.equal(slot(7).pktsIn - before.pktsIn, 1);
    assert.equal(slot(7).pktsOut, before.pktsOut);
  });

  test('direct routing passes on untouched: FLOW_DR_ROUTE (the engine\'s), an unresolved or off-link real server', () => {
    drFlow(40021, RIP, FLOW_DIR.FLOW_DR_ROUTE, 0);
    drFlow(40022, GHOST, FLOW_DIR.FLOW_DR, 7);
    run(['ip', '-n', NS, 'route', 'add', '192.0.2.128/25', 'via', RIP]);
    drFlow(40023, '192.0.2.200', FLOW_DIR.FLOW_DR, 7);
    try {
      for (const sport of [40021, 40022, 40023]) {
        const before = slot(7);
        const f = frame(mac(IN_MAC), mac(CLIENT_MAC), drPacket(sport));
        const r = runOn('fpa', f);
        assert.equal(r.retval, TCX_NEXT, `port ${sport}`);
        assert.equal(r.out.toString('hex'), f.toString('hex'));
        assert.deepEqual(slot(7), before);
      }
    } finally {
      run(['ip', '-n', NS, 'route', 'del', '192.0.2.128/25']);
    }
  });

  // IP-in-IP tunnelling: the request, TTL - 1, inside an outer header (fpb's address -> RIP).
  // (The flow map holds 16 entries: each test deletes its own.)
  const dropFlow = (sport: number) => {
    const k = Buffer.alloc(FLOW_KEY_SIZE);
    writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), sport, 80, 6);
    flows.delete(k);
  };
  /** the IPv4 header checksum over 20 bytes is right */
  const ipCsumOk = (h: Buffer) => {
    let sum = 0;
    for (let i = 0; i < 20; i += 2) sum += h.readUInt16BE(i);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
    return sum === 0xffff;
  };
  for (const [name, tos, flagsFrag, outerTos, outerDf] of [
    ['DF, DSCP and ECT(1) copied', 0xb9, 0x4000, 0xb9, 0x4000],
    ['ECN CE becomes ECT(0) outside (INET_ECN_encapsulate), no DF', 0x0b, 0x0000, 0x0a, 0x0000],
  ] as const) {
    test(`IPIP (FLOW_TUN): outer header fpb's address -> RIP, proto 4, TTL inner, ${name}, checksum right; inner byte-identical but TTL - 1; counted`, () => {
      drFlow(40030, RIP, FLOW_DIR.FLOW_TUN, 6);
      const before = slot(6);
      const inner = (ttl: number) => ipv4({ src: CLIENT, dst: VIP, ttl, tos, flagsFrag, id: 0x1234 }).tcp({ sport: 40030, dport: 80, flags: 'A' }).payload('tunnelled').build();
      const r = runOn('fpa', frame(mac(IN_MAC), mac(CLIENT_MAC), inner(64)));
      assert.equal(r.retval, TC_ACT_REDIRECT);
      assert.equal(r.out.subarray(0, 14).toString('hex'), frame(mac(RIP_MAC), macOf['fpb']!, Buffer.alloc(0)).toString('hex'), 'Ethernet: to RIP\'s MAC from fpb');
      const o = r.out.subarray(14, 34);
      assert.equal(o[0], 0x45);
      assert.equal(o[1], outerTos, 'TOS');
      assert.equal(o.readUInt16BE(2), 20 + inner(64).length, 'total length');
      assert.equal(o.readUInt16BE(6), outerDf, 'DF copied, no fragment');
      assert.equal(o[8], 63, 'TTL: the inner one after the decrement');
      assert.equal(o[9], 4, 'protocol IPIP');
      assert.ok(ipCsumOk(o), 'outer checksum');
      assert.equal(o.subarray(12, 16).toString('hex'), 'c0000201', 'source: fpb\'s address (the route to RIP)');
      assert.equal(o.subarray(16, 20).toString('hex'), Buffer.from(RIP.split('.').map(Number)).toString('hex'), 'destination RIP');
      assert.equal(r.out.subarray(34).toString('hex'), inner(63).toString('hex'), 'inner packet: TTL - 1 (checksum patched), the rest unchanged');
      assert.deepEqual(packetChecksumsOk(r.out.subarray(34)), { ip: true, l4: true });
      assert.equal(slot(6).pktsIn - before.pktsIn, 1);
      assert.equal(slot(6).bytesIn - before.bytesIn, inner(64).length, 'inner IP bytes, as IPVS counts them');
      dropFlow(40030);
    });
  }

  // (a real server behind a gateway: tun-encap-program.test.ts)
  test('IPIP passes on untouched: FLOW_TUN_ROUTE (the engine\'s), too big for fpb with the outer header', () => {
    drFlow(40031, RIP, FLOW_DIR.FLOW_TUN_ROUTE, 0);
    drFlow(40032, RIP, FLOW_DIR.FLOW_TUN, 6);
    try {
      for (const [sport, size] of [[40031, 0], [40032, 1500 - 40]] as const) {
        const before = slot(6);
        const f = frame(mac(IN_MAC), mac(CLIENT_MAC), ipv4({ src: CLIENT, dst: VIP, ttl: 64 }).tcp({ sport, dport: 80, flags: 'A' }).payload(Buffer.alloc(size, 7)).build());
        const r = runOn('fpa', f);
        assert.equal(r.retval, TCX_NEXT, `port ${sport}`);
        assert.equal(r.out.toString('hex'), f.toString('hex'));
        assert.deepEqual(slot(6), before);
      }
      // 20 bytes less fits
      const f = frame(mac(IN_MAC), mac(CLIENT_MAC), ipv4({ src: CLIENT, dst: VIP, ttl: 64 }).tcp({ sport: 40032, dport: 80, flags: 'A' }).payload(Buffer.alloc(1480 - 40, 7)).build());
      assert.equal(runOn('fpa', f).retval, TC_ACT_REDIRECT, '1480 + 20 fits');
    } finally {
      for (const sport of [40031, 40032]) dropFlow(sport);
    }
  });

  test('the worker side of tunnelling: FLOW_TUN_ROUTE at creation, FLOW_TUN offered, back at withdrawal', () => {
    const conns = new ConnTable({ capacity: 16, seed: 1 });
    const TUN = (2 << FWD_SHIFT) | ConnFlag.NOOUTPUT;
    const c = conns.insert(6, parseIPv4(CLIENT), 42100, parseIPv4(VIP), 80, parseIPv4(RIP), 80, 1, TUN, 100, 0);
    const off = new Offloader(conns, { flowsFd: maps.flowsFd, slotsFd: maps.slotsFd, slots: maps.slots, slotBase: 6, slotCount: 1 });
    const k = Buffer.alloc(FLOW_KEY_SIZE);
    const v = Buffer.alloc(FLOW_VALUE_SIZE);
    writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), 42100, 80, 6);
    const dir = () => (flows.lookup(k, v) ? v[FLOW_VALUE.off.dir] : -1);
    try {
      off.route(c);
      off.flush();
      assert.equal(dir(), FLOW_DIR.FLOW_TUN_ROUTE);
      assert.equal(v.readUInt32BE(0), parseIPv4(RIP) >>> 0, 'the real server');
      assert.equal(off.offer(c), true);
      off.flush();
      assert.equal(dir(), FLOW_DIR.FLOW_TUN);
      off.withdraw(c, new OffloadReport());
      off.flush();
      assert.equal(dir(), FLOW_DIR.FLOW_TUN_ROUTE);
      off.unroute(c);
      conns.remove(c);
      off.flush();
      off.flush();
      assert.equal(dir(), -1);
    } finally {
      off.close();
    }
  });

  test('the worker side of direct routing: routed at creation, offered, withdrawn back to routed, unrouted one flush late', () => {
    const conns = new ConnTable({ capacity: 16, seed: 1 });
    const DR = (3 << FWD_SHIFT) | ConnFlag.NOOUTPUT;
    const c = conns.insert(6, parseIPv4(CLIENT), 42000, parseIPv4(VIP), 80, parseIPv4(RIP), 80, 1, DR, 100, 0);
    const off = new Offloader(conns, { flowsFd: maps.flowsFd, slotsFd: maps.slotsFd, slots: maps.slots, slotBase: 7, slotCount: 1 });
    const k = Buffer.alloc(FLOW_KEY_SIZE);
    const v = Buffer.alloc(FLOW_VALUE_SIZE);
    writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), 42000, 80, 6);
    const dir = () => (flows.lookup(k, v) ? v[FLOW_VALUE.off.dir] : -1);
    try {
      off.route(c);
      off.flush();
      assert.equal(dir(), FLOW_DIR.FLOW_DR_ROUTE);
      assert.equal(v.readUInt32BE(0), parseIPv4(RIP) >>> 0, 'the real server');
      assert.equal(off.offer(c), true);
      off.flush();
      assert.equal(dir(), FLOW_DIR.FLOW_DR);
      assert.equal(v.readUInt32LE(FLOW_VALUE.off.slot), 7);
      off.withdraw(c, new OffloadReport());
      off.flush();
      assert.equal(dir(), FLOW_DIR.FLOW_DR_ROUTE, 'withdrawn: back to the way out only');
      assert.equal(off.active, 0);
      off.unroute(c);
      conns.remove(c);
      off.flush();
      assert.equal(dir(), FLOW_DIR.FLOW_DR_ROUTE, 'kept until the packets written meanwhile are gone');
      off.flush();
      assert.equal(dir(), -1, 'deleted at the next flush');
      // a new connection on the same tuple before the deferred deletion keeps its entry
      const c2 = conns.insert(6, parseIPv4(CLIENT), 42000, parseIPv4(VIP), 80, parseIPv4(RIP), 80, 1, DR, 100, 0);
      off.route(c2);
      off.flush();
      off.unroute(c2);
      conns.remove(c2);
      const c3 = conns.insert(6, parseIPv4(CLIENT), 42000, parseIPv4(VIP), 80, parseIPv4(RIP), 80, 1, DR, 100, 0);
      off.route(c3);
      off.flush();
      off.flush();
      assert.equal(dir(), FLOW_DIR.FLOW_DR_ROUTE, 'the new connection\'s entry stays');
      off.unroute(c3);
      off.flush();
      off.flush();
    } finally {
      off.close();
    }
  });

  test('the worker side (Offloader): entries written and deleted in batches, counts reported once', () => {
    const conns = new ConnTable({ capacity: 16, seed: 1 });
    const c = conns.insert(6, parseIPv4(CLIENT), 41000, parseIPv4(VIP), 80, parseIPv4(RIP), 8080, 1, 0, 100, 0);
    const c2 = conns.insert(6, parseIPv4(CLIENT), 41001, parseIPv4(VIP), 80, parseIPv4(RIP), 8080, 1, 0, 100, 0);
    const off = new Offloader(conns, { flowsFd: maps.flowsFd, slotsFd: maps.slotsFd, slots: maps.slots, slotBase: 5, slotCount: 2 });
    const k = Buffer.alloc(FLOW_KEY_SIZE);
    const v = Buffer.alloc(FLOW_VALUE_SIZE);
    const has = (sport: number) => {
      writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), sport, 80, 6);
      return flows.lookup(k, v);
    };
    try {
      assert.equal(off.offer(c), true);
      assert.equal(has(41000), false, 'queued until the flush');
      off.flush();
      assert.equal(has(41000), true);
      assert.equal(v.readUInt32LE(8), 5, 'the first slot of this worker');
      // the kernel forwards two request packets of it
      const f = frame(mac(IN_MAC), mac(CLIENT_MAC), ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 41000, dport: 80, flags: 'A' }).payload('abc').build());
      assert.equal(runOn('fpa', f).retval, TC_ACT_REDIRECT);
      assert.equal(runOn('fpa', f).retval, TC_ACT_REDIRECT);
      const got: number[][] = [];
      const t0 = performance.now();
      off.harvest({ offloadActivity: (i, r) => got.push([i, r.inPkts, r.inBytes, r.outPkts, r.outBytes, r.lastSeenMs]) });
      assert.deepEqual(got.map((x) => x.slice(0, 5)), [[c, 2, 2 * (f.length - 14), 0, 0]]);
      const last = got[0]![5]!;
      assert.ok(last <= t0 && last > t0 - 1000, `last packet on the caller's clock: ${last} vs now ${t0}`);
      const out = new OffloadReport();
      off.withdraw(c, out);
      assert.deepEqual([out.inPkts, out.inBytes, out.outPkts, out.outBytes], [0, 0, 0, 0], 'already reported');
      // offered and withdrawn between two flushes: nothing stays in the kernel
      assert.equal(off.offer(c2), true);
      off.withdraw(c2, out);
      off.flush();
      assert.equal(has(41000), false);
      assert.equal(has(41001), false);
      assert.equal(off.active, 0);
      assert.deepEqual(off.counters.update_errors + off.counters.delete_errors, 0);
      // its two slots are free again; a third connection waits for one
      assert.equal(off.offer(c), true);
      assert.equal(off.offer(c2), true);
      const c3 = conns.insert(6, parseIPv4(CLIENT), 41002, parseIPv4(VIP), 80, parseIPv4(RIP), 8080, 1, 0, 100, 0);
      assert.equal(off.offer(c3), false, 'no slot free: refused');
      off.flush();
    } finally {
      const out = new OffloadReport();
      for (const i of [c, c2]) off.withdraw(i, out);
      off.flush();
      off.close();
    }
  });
});
