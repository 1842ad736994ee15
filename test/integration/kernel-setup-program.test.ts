/**
 * Kernel connection set-up in the fast path (bpf/ulvs_ksetup.h, docs/kernel-setup.md), run by
 * the kernel itself (BPF_PROG_TEST_RUN) in a namespace of its own (test/support/ksetup-bed.ts):
 * bytes in -> bytes out for the SYN of a NAT, a DR and a TUN service (checksums by the slow
 * reference), the flow entries it creates (KF bits), the slot it takes (zeroed, the SYN not
 * counted), the one KREPORT_NEW record in the owner worker's ring (every field), the segment
 * path of a KF_MADE connection (what is reported, counted, and the KF_ACK / KF_ALL bits), and
 * every failure (KDEST_USER, size 0, no worker, ring full, no slot, no route, race) as TCX_NEXT,
 * the packet untouched, its counter, nothing left behind.
 *
 * Controls: a SYN to a VIP:port not in ulvs_ksvcs leaves everything as it was (so a program that
 * scheduled every SYN fails); the race case is repeated without the conflicting entry and then
 * is made (so it is the entry that made it fail); the failures each leave the free-slot count
 * and the flow map as they were, which a program that leaked a slot or an entry fails; the
 * golden NAT case starts from a slot whose counters were dirtied (so one that did not zero fails).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testRun } from '../../src/datapath/tun/bpf.js';
import { queueOf } from '../../src/datapath/tun/steering.js';
import { kernelSlotsInUse } from '../../src/datapath/tun/kernel-setup-maps.js';
import { writeKey, writeValue } from '../../src/datapath/tun/flow-entry.js';
import { FLOW_DIR, FLOW_KEY, FLOW_VALUE, KREPORT_KIND, KSCHED, KSETUP_COUNTER as KS, KSETUP_LIMITS, TUN_TYPE } from '../../src/datapath/tun/layouts.gen.js';
import { ipv4 } from '../../src/wire/build.js';
import { packetChecksumsOk, slowSum } from '../support/slow-checksum.js';
import { needsRoot } from '../support/root.js';
import { CLIENT_MAC, IN_MAC, ip4, KsetupBed, mac, ripMac, RIPS } from '../support/ksetup-bed.js';

const VIP = '203.0.113.10', CLIENT = '198.51.100.2';
const TCX_NEXT = -1, REDIRECT = 7;
const SPEC = { vips: [], inbound: [], outbound: [] };
const owner = (cport: number, vport: number) => queueOf(SPEC, 2, 6, ip4(CLIENT), cport, ip4(VIP), vport);
const REGION = KSETUP_LIMITS.KTAB_REGION;

describe('fast-path program: kernel connection set-up (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  const bed = new KsetupBed('hkpk');
  const A = 'hkpka', B = 'hkpkb';

  before(() => {
    bed.enter({ slots: 8, kernelSlots: 200, workers: 2, ringBytes: 4096 });
    const nat = { rip: RIPS[0]!, port: 8080, dir: FLOW_DIR.FLOW_REQUEST };
    bed.putService({ vip: VIP, port: 80, base: 0, size: 256, region: 0, sched: KSCHED.KSCHED_SH });
    bed.putTable(0, Array(256).fill(nat));
    bed.putService({ vip: VIP, port: 81, base: 2 * REGION, size: 1, region: 1, sched: KSCHED.KSCHED_SEQ });
    bed.putTable(2 * REGION, [{ rip: RIPS[1]!, port: 0, dir: FLOW_DIR.FLOW_DR, rport: 81 }]);
    bed.putService({ vip: VIP, port: 82, base: 4 * REGION, size: 1, region: 2, sched: KSCHED.KSCHED_SEQ });
    bed.putTable(4 * REGION, [{ rip: RIPS[2]!, port: 0, dir: FLOW_DIR.FLOW_TUN, tunType: TUN_TYPE.TUN_IPIP, rport: 82 }]);
    bed.putService({ vip: VIP, port: 83, base: 6 * REGION, size: 1, region: 3, sched: KSCHED.KSCHED_SEQ });
    bed.putTable(6 * REGION, [{ rip: RIPS[3]!, port: 8080, dir: KSETUP_LIMITS.KDEST_USER }]);
    bed.putService({ vip: VIP, port: 84, base: 8 * REGION, size: 0, region: 4, sched: KSCHED.KSCHED_SEQ });
    bed.putService({ vip: VIP, port: 85, base: 10 * REGION, size: 1, region: 5, sched: KSCHED.KSCHED_SEQ });
    bed.putTable(10 * REGION, [{ rip: '192.0.2.99', port: 8080, dir: FLOW_DIR.FLOW_REQUEST }]); // no neighbour
  });
  after(() => bed.leave());

  const frame = (dst: Buffer, src: Buffer, ip: Buffer) => Buffer.concat([dst, src, Buffer.from([8, 0]), ip]);
  const send = (dev: string, ip: Buffer, src = dev === A ? mac(CLIENT_MAC) : mac(ripMac(0))) => {
    const ctx = Buffer.alloc(44);
    ctx.writeUInt32LE(bed.ifindex[dev]!, 36);
    ctx.writeUInt32LE(bed.ifindex[dev]!, 40);
    const f = frame(dev === A ? mac(IN_MAC) : bed.macOf[B]!, src, ip);
    return { f, ...testRun(bed.prog, f, ctx) };
  };
  const request = (cport: number, vport: number, flags: string, payload = '', ttl = 64, dst = VIP) =>
    ipv4({ src: CLIENT, dst, ttl, id: 0x1234 }).tcp({ sport: cport, dport: vport, flags, seq: 1000, ack: flags.includes('A') ? 5000 : 0, window: 64240 }).payload(payload).build();
  const reply = (cport: number, flags: string, payload = '', src = RIPS[0]!, sport = 8080, ttl = 64) =>
    ipv4({ src, dst: CLIENT, ttl, id: 0x4321 }).tcp({ sport, dport: cport, flags, seq: 5000, ack: 1001, window: 65160 }).payload(payload).build();
  const freeSlots = () => {
    const all: number[] = [];
    for (let s = bed.popSlot(); s !== null; s = bed.popSlot()) all.push(s);
    for (const s of all) bed.pushSlot(s);
    return all.length;
  };
  const delta = (before: number[], after: number[]) => after.map((x, i) => x - before[i]!);
  const only = (i: number, n = 1) => Array.from({ length: KS.KS_COUNTERS }, (_, j) => (j === i ? n : 0));

  test('golden: a SYN to a NAT service is scheduled, both entries made, the slot taken and zeroed, one KREPORT_NEW in the owner ring', () => {
    bed.setSlot(8, [5, 6, 7, 8, 9]); // the first free kernel slot (the queue is FIFO from slot 8): dirty
    const s0 = bed.stats(), free0 = freeSlots();
    const t0 = Number(process.hrtime.bigint());
    const r = send(A, request(40000, 80, 'S'));
    const t1 = Number(process.hrtime.bigint());
    assert.equal(r.retval, REDIRECT);
    const want = frame(mac(ripMac(0)), bed.macOf[B]!, ipv4({ src: CLIENT, dst: RIPS[0]!, ttl: 63, id: 0x1234 }).tcp({ sport: 40000, dport: 8080, flags: 'S', seq: 1000, window: 64240 }).build());
    assert.equal(r.out.toString('hex'), want.toString('hex'));
    assert.deepEqual(packetChecksumsOk(r.out.subarray(14)), { ip: true, l4: true }, 'checksums by the slow reference');
    assert.deepEqual(bed.entry(CLIENT, VIP, 40000, 80), { addr: RIPS[0], port: 8080, dir: FLOW_DIR.FLOW_REQUEST, tunType: 0, slot: 8, seqDelta: 0, kflags: 3 }, 'request entry: KF_MADE | KF_ACK');
    assert.deepEqual(bed.entry(RIPS[0]!, CLIENT, 8080, 40000), { addr: VIP, port: 80, dir: FLOW_DIR.FLOW_REPLY, tunType: 0, slot: 8, seqDelta: 0, kflags: 1 }, 'reply entry: KF_MADE');
    assert.deepEqual(bed.slot(8), [0, 0, 0, 0, 0], 'zeroed, the SYN not counted');
    assert.equal(freeSlots(), free0 - 1, 'one slot taken');
    const w = owner(40000, 80);
    const recs = bed.drain(w);
    assert.deepEqual(bed.drain(1 - w), [], 'nothing in the other worker ring');
    assert.equal(recs.length, 1);
    const { ns, ...rest } = recs[0]!;
    assert.deepEqual(rest, { caddr: ip4(CLIENT) | 0, vaddr: ip4(VIP) | 0, raddr: ip4(RIPS[0]!) | 0, cport: 40000, vport: 80, rport: 8080, proto: 6, kind: KREPORT_KIND.KREPORT_NEW, tcp_flags: 0x02, reply: 0, dir: FLOW_DIR.FLOW_REQUEST, slot: 8, ip_len: 40, gso_segs: 1 });
    assert.ok(ns >= t0 - 1e6 && ns <= t1 + 1e6, 'ns: bpf_ktime_get_ns of the run');
    assert.deepEqual(delta(s0, bed.stats()), only(KS.KS_MADE));
  });

  test('control: a SYN to a VIP:port not in ulvs_ksvcs goes on (TCX_NEXT) untouched: no entry, no record, no counter', () => {
    const s0 = bed.stats(), free0 = freeSlots();
    const r = send(A, request(40000, 86, 'S'));
    assert.equal(r.retval, TCX_NEXT);
    assert.equal(r.out.toString('hex'), r.f.toString('hex'));
    assert.equal(bed.entry(CLIENT, VIP, 40000, 86), null);
    assert.deepEqual([bed.drain(0), bed.drain(1)], [[], []]);
    assert.deepEqual(delta(s0, bed.stats()), only(0, 0));
    assert.equal(freeSlots(), free0);
  });

  test('a SYN with a corrupt IPv4 header checksum is not set up: TCX_NEXT untouched, no counter; the same SYN intact is made (control)', () => {
    const s0 = bed.stats();
    const bad = request(40020, 80, 'S');
    bad.writeUInt16BE(bad.readUInt16BE(10) ^ 0x0101, 10);
    const r = send(A, bad);
    assert.equal(r.retval, TCX_NEXT);
    assert.equal(r.out.toString('hex'), r.f.toString('hex'));
    assert.equal(bed.entry(CLIENT, VIP, 40020, 80), null);
    assert.deepEqual(delta(s0, bed.stats()), only(0, 0));
    assert.equal(send(A, request(40020, 80, 'S')).retval, REDIRECT);
    assert.equal(bed.drain(owner(40020, 80)).length, 1);
  });

  const segment = (name: string, dev: string, ip: Buffer, o: { reported: boolean; counted: [number, number]; flags: number; isReply: boolean }) =>
    test(`segment of a KF_MADE connection: ${name}`, () => {
      const s0 = bed.stats(), slot0 = bed.slot(8);
      const r = send(dev, ip);
      assert.equal(r.retval, REDIRECT, 'forwarded');
      assert.deepEqual(packetChecksumsOk(r.out.subarray(14)), { ip: true, l4: true });
      if (o.isReply) assert.equal(r.out.subarray(14 + 12, 14 + 16).join('.'), VIP, 'reply: source := VIP');
      else assert.equal(r.out.subarray(14 + 16, 14 + 20).join('.'), RIPS[0], 'request: destination := RIP');
      const w = owner(40000, 80);
      const recs = bed.drain(w);
      assert.deepEqual(bed.drain(1 - w), []);
      const s = bed.slot(8);
      assert.deepEqual([s[0]! - slot0[0]!, s[1]! - slot0[1]!], o.counted, 'packets counted in the slot by direction');
      if (!o.reported) {
        assert.deepEqual(recs, []);
        assert.deepEqual(delta(s0, bed.stats()), only(0, 0));
        return;
      }
      assert.equal(recs.length, 1);
      const { ns: _ns, ...rest } = recs[0]!;
      assert.deepEqual(rest, { caddr: ip4(CLIENT) | 0, vaddr: ip4(VIP) | 0, raddr: ip4(RIPS[0]!) | 0, cport: 40000, vport: 80, rport: 8080, proto: 6, kind: KREPORT_KIND.KREPORT_SEGMENT, tcp_flags: o.flags, reply: o.isReply ? 1 : 0, dir: FLOW_DIR.FLOW_REQUEST, slot: 8, ip_len: ip.length, gso_segs: 1 });
      assert.deepEqual(delta(s0, bed.stats()), only(KS.KS_SEGMENTS));
    });

  segment('the SYN-ACK (reply, SYN): reported, not counted', B, reply(40000, 'SA'), { reported: true, counted: [0, 0], flags: 0x12, isReply: true });
  segment('a retransmitted SYN: reported as a segment, not made again', A, request(40000, 80, 'S'), { reported: true, counted: [0, 0], flags: 0x02, isReply: false });
  test('KF_ACK still set before the handshake ACK', () => assert.equal(bed.entry(CLIENT, VIP, 40000, 80)!.kflags, 3));
  segment('the handshake ACK (KF_ACK): reported, not counted', A, request(40000, 80, 'A'), { reported: true, counted: [0, 0], flags: 0x10, isReply: false });
  test('KF_ACK cleared after the ACK', () => assert.equal(bed.entry(CLIENT, VIP, 40000, 80)!.kflags, 1));
  segment('request data: forwarded and counted, not reported', A, request(40000, 80, 'PA', 'GET / HTTP/1.1\r\n\r\n'), { reported: false, counted: [1, 0], flags: 0, isReply: false });
  segment('reply data: forwarded and counted, not reported', B, reply(40000, 'PA', 'HTTP/1.1 200 OK\r\n\r\n'), { reported: false, counted: [0, 1], flags: 0, isReply: true });
  segment('a FIN (request): reported, not counted', A, request(40000, 80, 'FA'), { reported: true, counted: [0, 0], flags: 0x11, isReply: false });
  test('the FIN set KF_ALL on both entries', () => {
    assert.equal(bed.entry(CLIENT, VIP, 40000, 80)!.kflags, 1 | 4);
    assert.equal(bed.entry(RIPS[0]!, CLIENT, 8080, 40000)!.kflags, 1 | 4);
  });
  segment('after the FIN a plain reply ACK is reported (KF_ALL)', B, reply(40000, 'A'), { reported: true, counted: [0, 0], flags: 0x10, isReply: true });

  test('golden DR: the SYN goes to the real server unchanged but for TTL - 1 and the MACs; the request entry only', () => {
    const s0 = bed.stats();
    const r = send(A, request(40001, 81, 'S'));
    assert.equal(r.retval, REDIRECT);
    assert.equal(r.out.toString('hex'), frame(mac(ripMac(1)), bed.macOf[B]!, request(40001, 81, 'S', '', 63)).toString('hex'));
    assert.deepEqual(packetChecksumsOk(r.out.subarray(14)), { ip: true, l4: true });
    const e = bed.entry(CLIENT, VIP, 40001, 81)!;
    assert.deepEqual({ ...e, slot: 0 }, { addr: RIPS[1], port: 0, dir: FLOW_DIR.FLOW_DR, tunType: 0, slot: 0, seqDelta: 0, kflags: 3 });
    assert.equal(bed.entry(RIPS[1]!, CLIENT, 81, 40001), null, 'no reply entry');
    const [rec] = bed.drain(owner(40001, 81));
    assert.deepEqual([rec!.raddr, rec!.rport, rec!.dir, rec!.kind, rec!.slot], [ip4(RIPS[1]!) | 0, 81, FLOW_DIR.FLOW_DR, KREPORT_KIND.KREPORT_NEW, e.slot]);
    assert.deepEqual(delta(s0, bed.stats()), only(KS.KS_MADE));
  });

  test('golden TUN (IPIP): the SYN, TTL - 1, inside an outer IPv4 header to the real server', () => {
    const r = send(A, request(40002, 82, 'S'));
    assert.equal(r.retval, REDIRECT);
    const outer = r.out.subarray(14, 34);
    assert.equal(r.out.subarray(0, 12).toString('hex'), Buffer.concat([mac(ripMac(2)), bed.macOf[B]!]).toString('hex'));
    assert.deepEqual([outer[0], outer[9], outer[8], outer.subarray(12, 16).join('.'), outer.subarray(16, 20).join('.'), outer.readUInt16BE(2)], [0x45, 4, 63, '192.0.2.1', RIPS[2], 20 + 40]);
    assert.equal(slowSum(outer), 0xffff, 'outer header checksum');
    assert.equal(r.out.subarray(34).toString('hex'), request(40002, 82, 'S', '', 63).toString('hex'), 'the inner packet');
    const e = bed.entry(CLIENT, VIP, 40002, 82)!;
    assert.deepEqual([e.addr, e.dir, e.tunType, e.kflags], [RIPS[2], FLOW_DIR.FLOW_TUN, TUN_TYPE.TUN_IPIP, 3]);
    const [rec] = bed.drain(owner(40002, 82));
    assert.deepEqual([rec!.raddr, rec!.rport, rec!.dir], [ip4(RIPS[2]!) | 0, 82, FLOW_DIR.FLOW_TUN]);
  });

  /** A failure: TCX_NEXT, the frame untouched, only counter `which`, no entry, no record, no slot gone. */
  const fails = (name: string, which: number, cport: number, vport: number, setup = () => {}, undo = () => {}) =>
    test(`failure: ${name} -> TCX_NEXT and ${Object.entries(KS).find(([, v]) => v === which)![0]}, nothing left behind`, () => {
      setup();
      try {
        const s0 = bed.stats(), free0 = freeSlots();
        const r = send(A, request(cport, vport, 'S'));
        assert.equal(r.retval, TCX_NEXT);
        assert.equal(r.out.toString('hex'), r.f.toString('hex'), 'untouched');
        assert.deepEqual(delta(s0, bed.stats()), only(which));
        assert.equal(bed.entry(CLIENT, VIP, cport, vport), null, 'no request entry');
        assert.deepEqual([bed.drain(0), bed.drain(1)], [[], []], 'no record');
        assert.equal(freeSlots(), free0, 'no slot lost');
      } finally {
        undo();
      }
    });

  fails('the table says KDEST_USER', KS.KS_USER, 40003, 83);
  fails('the table is empty (size 0)', KS.KS_USER, 40003, 84);
  fails('no route to the real server (unresolved neighbour)', KS.KS_NO_ROUTE, 40003, 85);
  fails('set-up off (kconf.workers 0)', KS.KS_NO_WORKER, 40003, 80, () => bed.setWorkers(0), () => bed.setWorkers(2));
  let held: number[] = [];
  fails('no free slot', KS.KS_NO_SLOT, 40003, 80, () => {
    for (let s = bed.popSlot(); s !== null; s = bed.popSlot()) held.push(s);
  }, () => {
    for (const s of held) bed.pushSlot(s);
    held = [];
  });
  fails('the reply tuple has an entry already (another CPU was first)', KS.KS_RACE, 40010, 80, () => {
    bed.flows.update(...tupleOf(RIPS[0]!, CLIENT, 8080, 40010));
  });
  test('control of the race: without that entry the same SYN is made', () => {
    assert.notEqual(bed.entry(RIPS[0]!, CLIENT, 8080, 40010), null, 'the conflicting entry is still there');
    bed.deleteEntry(RIPS[0]!, CLIENT, 8080, 40010);
    assert.equal(send(A, request(40010, 80, 'S')).retval, REDIRECT);
    assert.equal(bed.drain(owner(40010, 80)).length, 1);
  });

  test('failure: the owner ring full -> TCX_NEXT and KS_RING_FULL; draining makes room again', () => {
    const s0 = bed.stats();
    let made = 0, full = 0;
    for (let p = 41000; full === 0 && p < 41200; p++) {
      const r = send(A, request(p, 80, 'S'));
      if (r.retval === REDIRECT) made++;
      else {
        full++;
        assert.equal(r.retval, TCX_NEXT);
        assert.equal(r.out.toString('hex'), r.f.toString('hex'));
        assert.equal(bed.entry(CLIENT, VIP, p, 80), null);
      }
    }
    const d = delta(s0, bed.stats());
    assert.equal(full, 1, 'a 4 KiB ring fills up');
    assert.deepEqual(d, only(KS.KS_MADE, made).map((x, i) => (i === KS.KS_RING_FULL ? 1 : x)));
    const recs = bed.drain(0).length + bed.drain(1).length;
    assert.equal(recs, made, 'every made SYN has its record');
    assert.ok(made > 50, `at least 50 records of 56 bytes fit (${made})`);
  });

  test('liveness: under alive_ms a SYN whose owner worker has not beaten within it goes on untouched (KS_STALE), nothing made; a fresh beat: made (control)', () => {
    bed.setAliveMs(200);
    try {
      const p = 42000, w = owner(p, 80);
      const s0 = bed.stats(), free0 = freeSlots();
      const refused = (why: string) => {
        const r = send(A, request(p, 80, 'S'));
        assert.equal(r.retval, TCX_NEXT, why);
        assert.equal(r.out.toString('hex'), r.f.toString('hex'), `${why}: untouched`);
        assert.equal(bed.entry(CLIENT, VIP, p, 80), null, `${why}: no entry`);
      };
      bed.beat(w, 0n);
      refused('never beaten');
      bed.beat(w, process.hrtime.bigint() - 300_000_000n);
      refused('the last beat 300 ms old');
      bed.beat(w, process.hrtime.bigint() + 10_000_000_000n);
      refused('a beat 10 s ahead (not this clock)');
      bed.beat(w, 0n);
      bed.beat(1 - w);
      refused("the other worker's beat does not count");
      assert.deepEqual(bed.drain(w), [], 'no record');
      assert.equal(freeSlots(), free0, 'no slot taken');
      assert.deepEqual(delta(s0, bed.stats()), only(KS.KS_STALE, 4));
      bed.beat(w);
      const r = send(A, request(p, 80, 'S'));
      assert.equal(r.retval, REDIRECT, 'beaten just now: made');
      assert.equal(bed.drain(w).length, 1);
      assert.deepEqual(delta(s0, bed.stats()), only(KS.KS_STALE, 4).map((x, i) => (i === KS.KS_MADE ? 1 : x)));
    } finally {
      bed.setAliveMs(0);
    }
  });

  test('every kernel slot is either free or named by an entry (what a restart keeps out of the queue: kernelSlotsInUse)', () => {
    const used = kernelSlotsInUse(bed.maps.flowsFd, bed.maps.kernel.firstSlot, bed.maps.kernel.slots);
    assert.ok(used.has(8) && used.size > 50, `the golden connection's slot and the ring test's (${used.size})`);
    assert.equal(used.size + freeSlots(), bed.maps.kernel.slots, 'used + free = the kernel range');
    assert.ok(![...used].some((x) => x < 8 || x >= 208), 'only the kernel range');
  });
});

function tupleOf(saddr: string, daddr: string, sport: number, dport: number): [Buffer, Buffer] {
  const k = Buffer.alloc(FLOW_KEY.size), v = Buffer.alloc(FLOW_VALUE.size);
  writeKey(k, 0, ip4(saddr), ip4(daddr), sport, dport, 6);
  writeValue(v, 0, ip4(VIP), 80, FLOW_DIR.FLOW_REPLY, 3); // one of ulvsd's slots
  return [k, v];
}
