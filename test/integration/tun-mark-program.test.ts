/**
 * The TUN's mark-noting program (bpf/tun_mark.bpf.c) run by the kernel (BPF_PROG_TEST_RUN, the
 * _l2 variant: a test run hands a tc program an Ethernet frame) with skb->mark set in the
 * context, and its notes read back through the mmap'd map by the engine's reader
 * (datapath/tun/mark-notes.ts): the TypeScript index and check match the C ones, unmarked
 * packets and other protocols leave no note, a note is taken once. And the steering program
 * (bpf/steer.bpf.c) with a fwmark service's entry: a persistent one keys a client's marked
 * packets to any port, and its servers' replies, on the client network.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testRun } from '../../src/datapath/tun/bpf.js';
import { closeFd } from '../../src/datapath/tun/fastpath.js';
import { loadObject } from '../../src/datapath/tun/libbpf.js';
import { type MarkNotes } from '../../src/datapath/tun/mark-notes.js';
import { mapMarkNotes } from '../../src/datapath/tun/tun-mark.js';
import { SteeringMap, steeringSpec } from '../../src/datapath/tun/steering.js';
import { fwmarkKey } from '../../src/core/service.js';
import { ipv4 } from '../../src/wire/build.js';
import { parseIPv4 as ip } from '../../src/wire/addr.js';
import { needsRoot } from '../support/root.js';

const eth = Buffer.from('0200000000010200000000020800', 'hex');
/** a struct __sk_buff context with only `mark` set (offset 8) */
function ctxWithMark(mark: number): Buffer {
  const c = Buffer.alloc(192);
  c.writeUInt32LE(mark >>> 0, 8);
  return c;
}
const TCP = 6;
const UDP = 17;

describe('mark notes (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  let progFd = -1;
  let marksFd = -1;
  let notes: MarkNotes;
  before(() => {
    const o = loadObject('tun_mark.bpf.o', 'ulvs_tun_mark_l2', ['ulvs_marks']);
    progFd = o.progFd;
    marksFd = o.maps.ulvs_marks!;
    notes = mapMarkNotes(marksFd);
  });
  after(() => {
    closeFd(progFd);
    closeFd(marksFd);
  });
  const run = (pkt: Buffer, mark: number) => testRun(progFd, Buffer.concat([eth, pkt]), ctxWithMark(mark)).retval;

  test('a marked TCP or UDP packet is noted: the engine reads its mark once, by tuple', () => {
    const cases: [number, string, number, string, number, number][] = [
      [TCP, '198.51.100.2', 40000, '203.0.113.10', 80, 1],
      [TCP, '198.51.100.2', 40001, '203.0.113.10', 443, 1],
      [UDP, '198.51.100.77', 5353, '203.0.113.11', 53, 0xfffffffe],
      [TCP, '192.0.2.200', 1, '203.0.113.12', 65535, 0x80000000],
    ];
    for (const [proto, s, sp, d, dp, mark] of cases) {
      const b = ipv4({ src: s, dst: d });
      const pkt = proto === TCP ? b.tcp({ sport: sp, dport: dp, flags: 'S' }).build() : b.udp({ sport: sp, dport: dp }).build();
      assert.equal(run(pkt, mark), -1, 'TCX_NEXT: the packet goes on');
      assert.equal(notes.markOf(proto, ip(s) | 0, sp, ip(d) | 0, dp), mark >>> 0, `${s}:${sp} -> ${d}:${dp}`);
      assert.equal(notes.markOf(proto, ip(s) | 0, sp, ip(d) | 0, dp), 0, 'taken: not read twice');
      // control: another tuple in the same call reads nothing
      run(pkt, mark);
      assert.equal(notes.markOf(proto, ip(s) | 0, sp + 1, ip(d) | 0, dp), 0, 'another source port');
      assert.equal(notes.markOf(proto === TCP ? UDP : TCP, ip(s) | 0, sp, ip(d) | 0, dp), 0, 'another protocol');
      assert.equal(notes.markOf(proto, ip(s) | 0, sp, ip(d) | 0, dp), mark >>> 0);
    }
  });

  test('unmarked packets and ICMP leave no note', () => {
    const pkt = ipv4({ src: '198.51.100.3', dst: '203.0.113.10' }).tcp({ sport: 40000, dport: 80, flags: 'S' }).build();
    run(pkt, 0);
    assert.equal(notes.markOf(TCP, ip('198.51.100.3') | 0, 40000, ip('203.0.113.10') | 0, 80), 0);
    run(pkt, 3);
    assert.equal(notes.markOf(TCP, ip('198.51.100.3') | 0, 40000, ip('203.0.113.10') | 0, 80), 3, 'control: the same packet marked is noted');
    const icmp = ipv4({ src: '198.51.100.3', dst: '203.0.113.10' }).icmp({ type: 8, code: 0 }).build();
    assert.equal(run(icmp, 3), -1);
    assert.equal(notes.taken, 9, 'two reads taken per case above, one here');
  });
});

describe('steering by mark (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  const m = new SteeringMap();
  after(() => m.close());
  const hash = (k: number) => (Math.imul(k >>> 0, 0x9e3779b1) >>> 0) >>> 16;
  const seg = (proto: number, s: string, sp: number, d: string, dp: number) => {
    const b = ipv4({ src: s, dst: d });
    return proto === TCP ? b.tcp({ sport: sp, dport: dp, flags: 'S' }).build() : b.udp({ sport: sp, dport: dp }).build();
  };

  test('a persistent fwmark service keys marked requests to any port and its servers replies on the client network; a plain one on address ^ port', () => {
    const persistent = { ...fwmarkKey(1), persistent: 300, netmask: ip('255.255.255.0') };
    const plain = { ...fwmarkKey(2) };
    const rs = ip('192.0.2.11');
    const plan = m.prepare(steeringSpec([persistent, plain], [{ service: persistent, dest: { addr: rs, port: 0 } }]));
    if (plan) m.apply(plan);
    const run = (pkt: Buffer, mark: number) => testRun(m.progFd, Buffer.concat([eth, pkt]), ctxWithMark(mark)).retval >>> 0;
    const c = '198.51.100.77';
    const net = hash(ip(c) & 0xffffff00);
    for (const [p, port] of [[40000, 80], [40001, 443], [61000, 8443]] as const) {
      assert.equal(run(seg(TCP, c, p, '203.0.113.10', port), 1), net, `mark 1, port ${port}`);
      assert.equal(run(seg(TCP, '192.0.2.11', port, c, p), 0), net, `reply from the server, port ${port}`);
      assert.equal(run(seg(TCP, c, p, '203.0.113.10', port), 2), hash((ip(c) ^ p) >>> 0), 'mark 2: address ^ port');
      // control: unmarked, the VIP is no VIP of the map: keyed as a reply to the destination
      assert.notEqual(run(seg(TCP, c, p, '203.0.113.10', port), 0), net);
    }
  });
});
