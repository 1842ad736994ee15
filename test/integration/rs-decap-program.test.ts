/**
 * Golden packets for the real server's decapsulation program (bpf/rs_decap.bpf.c, loaded as
 * `ulvs rs-setup tun` loads it), run by the kernel (BPF_PROG_TEST_RUN): input frame -> return
 * value, output frame and counters. The test run's device is the loopback device (no ctx
 * given), whose MAC is 00:00:00:00:00:00: a frame to that MAC is PACKET_HOST, any other
 * unicast MAC is PACKET_OTHERHOST.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../src/wire/build.js';
import { testRun } from '../../src/datapath/tun/bpf.js';
import { closeFd } from '../../src/datapath/tun/fastpath.js';
import { loadDecap, readDecap, type DecapCounters } from '../../src/rs/decap.js';
import { needsRoot } from '../support/root.js';

const VIP = '203.0.113.10', OTHER = '203.0.113.99', CLIENT = '198.51.100.2', DIRECTOR = '192.0.2.1', RIP = '192.0.2.11';
const GUE_PORT = 6080;
const TCX_NEXT = -1, TC_ACT_SHOT = 2;
const HOST_MAC = Buffer.alloc(6), PEER_MAC = Buffer.from('020000000001', 'hex'), OTHER_MAC = Buffer.from('020000000099', 'hex');

const frame = (ip: Buffer, dst = HOST_MAC) => Buffer.concat([dst, PEER_MAC, Buffer.from([0x08, 0x00]), ip]);
const inner = (dst = VIP) => ipv4({ src: CLIENT, dst, ttl: 63 }).udp({ sport: 40000, dport: 7 }).payload('hello through the tunnel').build();
const ipip = (payload: Buffer, o: { flagsFrag?: number; protocol?: number } = {}) => ipv4({ src: DIRECTOR, dst: RIP, ttl: 64, ...o }).raw(4).payload(payload).build();
/** IPVS's GUE: UDP to the port, 4-byte header version 0, C 0, hlen 0, proto/ctype 4, flags 0 */
const gue = (payload: Buffer, port = GUE_PORT, ctype = 4, first = 0) =>
  ipv4({ src: DIRECTOR, dst: RIP, ttl: 64 }).udp({ sport: 50000, dport: port, noChecksum: true }).payload(Buffer.concat([Buffer.from([first, ctype, 0, 0]), payload])).build();
/** IPVS's GRE without checksum: 4-byte header, flags and version 0, protocol 0x0800 (or as given) */
const gre = (payload: Buffer, flags = 0, proto = 0x0800) => {
  const h = Buffer.alloc(4);
  h.writeUInt16BE(flags, 0);
  h.writeUInt16BE(proto, 2);
  return ipv4({ src: DIRECTOR, dst: RIP, ttl: 64 }).raw(47).payload(Buffer.concat([h, payload])).build();
};

describe('real-server decapsulation program (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  let prog = -1, id = 0;
  before(() => {
    ({ progFd: prog, progId: id } = loadDecap([VIP, '203.0.113.11'], GUE_PORT, true));
  });
  after(() => {
    if (prog >= 0) closeFd(prog);
  });
  const counters = (): DecapCounters => readDecap(id)!.counters;
  const delta = (a: DecapCounters, b: DecapCounters) => ({ decapsulated: b.decapsulated - a.decapsulated, malformed: b.malformed - a.malformed, notVip: b.notVip - a.notVip, unhandled: b.unhandled - a.unhandled });
  const expectRun = (input: Buffer, retval: number, out: Buffer, change: Partial<DecapCounters>) => {
    const before = counters();
    const r = testRun(prog, input);
    assert.equal(r.retval, retval, 'return value');
    assert.equal(r.out.toString('hex'), out.toString('hex'));
    assert.deepEqual(delta(before, counters()), { decapsulated: 0, malformed: 0, notVip: 0, unhandled: 0, ...change });
  };

  test('the VIPs, the GUE port and GRE on are in its maps', () => {
    const s = readDecap(id)!;
    assert.deepEqual(s.vips.sort(), [VIP, '203.0.113.11']);
    assert.equal(s.guePort, GUE_PORT);
    assert.equal(s.gre, true);
  });

  test('IPIP to a VIP -> exactly the inner packet in the same Ethernet header; counted', () => {
    expectRun(frame(ipip(inner())), TCX_NEXT, frame(inner()), { decapsulated: 1 });
  });

  test('GUE (IPVS header, configured port) to a VIP -> exactly the inner packet; counted', () => {
    expectRun(frame(gue(inner())), TCX_NEXT, frame(inner()), { decapsulated: 1 });
  });

  test('GRE (IPVS header: no flags, protocol 0x0800) to a VIP -> exactly the inner packet; counted', () => {
    expectRun(frame(gre(inner())), TCX_NEXT, frame(inner()), { decapsulated: 1 });
  });

  test('a TCP segment inside GRE, Ethernet padding after the packet stays after it', () => {
    const seg = ipv4({ src: CLIENT, dst: VIP, ttl: 63 }).tcp({ sport: 40000, dport: 80, flags: 'A' }).payload('x').build();
    expectRun(frame(Buffer.concat([gre(seg), Buffer.alloc(6)])), TCX_NEXT, frame(Buffer.concat([seg, Buffer.alloc(6)])), { decapsulated: 1 });
  });

  test('a TCP SYN inside IPIP, Ethernet padding after the packet stays after it', () => {
    const syn = ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40000, dport: 80, flags: 'S' }).build();
    expectRun(frame(Buffer.concat([ipip(syn), Buffer.alloc(6)])), TCX_NEXT, frame(Buffer.concat([syn, Buffer.alloc(6)])), { decapsulated: 1 });
  });

  // passed untouched: TCX_NEXT, the frame as it came
  const untouched: [string, () => Buffer, Partial<DecapCounters>][] = [
    ['a plain packet to the VIP (not IPIP)', () => frame(inner()), {}],
    ['IPIP whose inner destination is not a VIP (counted)', () => frame(ipip(inner(OTHER))), { notVip: 1 }],
    ['GUE whose inner destination is not a VIP (counted)', () => frame(gue(inner(OTHER))), { notVip: 1 }],
    ['IPIP in a frame for another MAC (PACKET_OTHERHOST)', () => frame(ipip(inner()), OTHER_MAC), {}],
    ['IPIP in an outer fragment (MF)', () => frame(ipip(inner(), { flagsFrag: 0x2000 })), {}],
    ['UDP to another port than the GUE port', () => frame(gue(inner(), GUE_PORT + 1)), {}],
    ['GUE carrying IPv6 (ctype 41): not decapsulated here (counted)', () => frame(gue(inner(), GUE_PORT, 41)), { unhandled: 1 }],
    ['GUE with C set or options (hlen 1): not decapsulated here (counted)', () => frame(gue(inner(), GUE_PORT, 4, 0x81)), { unhandled: 1 }],
    ['GRE whose inner destination is not a VIP (counted)', () => frame(gre(inner(OTHER))), { notVip: 1 }],
    ['GRE with a checksum (C bit, --tun-csum): not decapsulated here (counted)', () => frame(gre(Buffer.concat([Buffer.alloc(4), inner()]), 0x8000)), { unhandled: 1 }],
    ['GRE with a key (K bit) (counted)', () => frame(gre(Buffer.concat([Buffer.alloc(4), inner()]), 0x2000)), { unhandled: 1 }],
    ['GRE with a sequence number (S bit) (counted)', () => frame(gre(Buffer.concat([Buffer.alloc(4), inner()]), 0x1000)), { unhandled: 1 }],
    ['GRE version 1 (PPTP) (counted)', () => frame(gre(inner(), 0x0001)), { unhandled: 1 }],
    ['GRE carrying another protocol (0x86dd) (counted)', () => frame(gre(inner(), 0, 0x86dd)), { unhandled: 1 }],
    ['GRE in a frame for another MAC (PACKET_OTHERHOST)', () => frame(gre(inner()), OTHER_MAC), {}],
    // (a frame cut inside the outer header cannot be run: BPF_PROG_TEST_RUN refuses an IPv4
    // frame shorter than Ethernet + 20 bytes with EINVAL; the program passes such a frame on)
    ['IPIP with outer IP options (IPVS sends none)', () => frame(ipv4({ src: DIRECTOR, dst: RIP, options: Uint8Array.of(1, 1, 1, 0) }).raw(4).payload(inner()).build()), {}],
    ['an ARP frame', () => Buffer.concat([HOST_MAC, PEER_MAC, Buffer.from([0x08, 0x06]), Buffer.alloc(28)]), {}],
  ];
  for (const [name, make, change] of untouched)
    test(`untouched: ${name}`, () => {
      const f = make();
      expectRun(f, TCX_NEXT, f, change);
    });

  // dropped and counted as malformed: tunnel packets for this host whose headers do not fit
  const malformed: [string, () => Buffer][] = [
    ['IPIP that is only the outer header (total length 20)', () => frame(ipv4({ src: DIRECTOR, dst: RIP }).raw(4).build())],
    ['IPIP whose inner packet is cut short (outer total length 30)', () => frame(ipv4({ src: DIRECTOR, dst: RIP }).raw(4).payload(Buffer.alloc(10)).build())],
    ['IPIP with a wrong outer header checksum', () => {
      const p = ipip(inner());
      p.writeUInt16BE(p.readUInt16BE(10) ^ 0x0101, 10);
      return frame(p);
    }],
    ['IPIP whose outer total length exceeds the frame', () => frame(ipip(inner()).subarray(0, 50))],
    ['GRE that is only the outer and GRE headers (total length 24)', () => frame(ipv4({ src: DIRECTOR, dst: RIP }).raw(47).payload(Buffer.from([0, 0, 8, 0])).build())],
    ['GRE whose inner header is not IPv4', () => {
      const i = inner();
      i[0] = 0x65;
      return frame(gre(i));
    }],
    ['IPIP whose inner header is not IPv4', () => {
      const i = inner();
      i[0] = 0x65;
      return frame(ipip(i));
    }],
  ];
  for (const [name, make] of malformed)
    test(`dropped as malformed: ${name}`, () => {
      const f = make();
      const before = counters();
      const r = testRun(prog, f);
      assert.equal(r.retval, TC_ACT_SHOT);
      assert.deepEqual(delta(before, counters()), { decapsulated: 0, malformed: 1, notVip: 0, unhandled: 0 });
    });

  test('control: loaded without GRE (rs-setup tun --tun-type ipip or gue), GRE passes untouched and uncounted', () => {
    const off = loadDecap([VIP], GUE_PORT);
    try {
      assert.equal(readDecap(off.progId)!.gre, false);
      const f = frame(gre(inner()));
      const r = testRun(off.progFd, f);
      assert.equal(r.retval, TCX_NEXT);
      assert.equal(r.out.toString('hex'), f.toString('hex'));
      assert.deepEqual(readDecap(off.progId)!.counters, { decapsulated: 0, malformed: 0, notVip: 0, unhandled: 0 });
    } finally {
      closeFd(off.progFd);
    }
  });
});
