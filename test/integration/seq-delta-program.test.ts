/**
 * The fast path's sequence translation for connections opened by a SYN cookie (struct
 * flow_value seq_delta, bpf/ulvs_maps.h; bpf/fastpath.bpf.c translate_seq), run by the kernel
 * itself (BPF_PROG_TEST_RUN) in a namespace of its own: bytes in -> bytes out. A reply's seq +=
 * delta, a request's ack -= delta (mod 2^32, wrap-around both ways), the NAT rewrite and TTL - 1
 * as for any flow, checksums right by the slow reference (test/support/slow-checksum.ts).
 *
 * Controls: an entry with delta 0 leaves seq and ack as they came (so a program that translated
 * every flow fails), and each golden output differs from what the same packet gives through the
 * delta-0 entry of the same addresses (so a program that ignored seq_delta fails the table). A
 * segment with TCP options (a SACK) of a translated flow goes to ulvsd untouched, while the same
 * segment of an untranslated flow is forwarded (so the check is about the delta, not options).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, closeSync } from 'node:fs';
import { ipv4 } from '../../src/wire/build.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { MapOps, testRun } from '../../src/datapath/tun/bpf.js';
import { loadFastPath, closeFd, FLOW_KEY_SIZE, FLOW_VALUE_SIZE, SLOT_SIZE, type FastPathMaps } from '../../src/datapath/tun/fastpath.js';
import { writeKey, writeValue } from '../../src/datapath/tun/flow-entry.js';
import { FLOW_DIR } from '../../src/datapath/tun/layouts.gen.js';
import { run } from '../../src/lab/shell.js';
import { packetChecksumsOk } from '../support/slow-checksum.js';
import { needsRoot } from '../support/root.js';
import { libc } from '../../src/datapath/tun/syscalls.js';

const setns = libc.func('int setns(int fd, int nstype)') as (fd: number, type: number) => number;
const CLONE_NEWNET = 0x40000000;
const NS = `hq-sd${process.pid}`;
const CLIENT = '198.51.100.2', VIP = '203.0.113.10', RIP = '192.0.2.11';
const CLIENT_MAC = '02:00:00:00:00:02', RIP_MAC = '02:00:00:00:00:0b', IN_MAC = '02:00:00:00:01:01';
const mac = (s: string) => Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
const TCX_NEXT = -1, TC_ACT_REDIRECT = 7;
/** SACK: kind 5, length 10, one block; two NOPs before it, as Linux aligns it */
const SACK = Uint8Array.from([1, 1, 5, 10, 0, 0, 0x10, 0, 0, 0, 0x20, 0]);
const GET = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';
const BODY = 'y'.repeat(700);

/** client port -> the entry's delta (uint32); one slot per port */
const DELTAS: Record<number, number> = {
  41000: 0x10000000, // plain
  41001: 0x00000020, // request: ack below the delta wraps under 0; reply: seq near 2^32 wraps past it
  41002: 0xf0000000, // a "negative" delta (int32 -2^28): request ack grows, reply seq shrinks
  41003: 0, // control: nothing translated
};
const slotOf = (cport: number) => cport - 41000 + 1;

interface Case { name: string; cport: number; request: boolean; flags: string; seq: number; ack: number; payload: string; seqOut: number; ackOut: number }
const CASES: Case[] = [
  { name: 'request, ack -= delta', cport: 41000, request: true, flags: 'PA', seq: 0x01020304, ack: 0x12345678, payload: GET, seqOut: 0x01020304, ackOut: 0x02345678 },
  { name: 'reply, seq += delta', cport: 41000, request: false, flags: 'PA', seq: 0x20000000, ack: 0x01020320, payload: BODY, seqOut: 0x30000000, ackOut: 0x01020320 },
  { name: 'request, ack below the delta: wraps under 0', cport: 41001, request: true, flags: 'A', seq: 7, ack: 0x00000010, payload: '', seqOut: 7, ackOut: 0xfffffff0 },
  { name: 'reply, seq + delta past 2^32: wraps', cport: 41001, request: false, flags: 'PA', seq: 0xfffffff0, ack: 8, payload: BODY, seqOut: 0x00000010, ackOut: 8 },
  { name: 'request, delta 0xf0000000 (int32 negative)', cport: 41002, request: true, flags: 'PA', seq: 99, ack: 0x20000001, payload: GET, seqOut: 99, ackOut: 0x30000001 },
  { name: 'reply, delta 0xf0000000', cport: 41002, request: false, flags: 'A', seq: 0x20000001, ack: 100, payload: '', seqOut: 0x10000001, ackOut: 100 },
  { name: 'request without ACK: ack left alone', cport: 41000, request: true, flags: 'P', seq: 5, ack: 0x12345678, payload: 'z', seqOut: 5, ackOut: 0x12345678 },
  { name: 'control, delta 0: request unchanged', cport: 41003, request: true, flags: 'PA', seq: 0x01020304, ack: 0x12345678, payload: GET, seqOut: 0x01020304, ackOut: 0x12345678 },
  { name: 'control, delta 0: reply unchanged', cport: 41003, request: false, flags: 'PA', seq: 0xfffffff0, ack: 8, payload: BODY, seqOut: 0xfffffff0, ackOut: 8 },
];

/** A segment as the director receives it (request: client -> VIP:80, reply: RIP:8080 -> client). */
function input(c: Case, seq = c.seq, ack = c.ack, options?: Uint8Array): Buffer {
  const ip = c.request ? ipv4({ src: CLIENT, dst: VIP, ttl: 64, id: 0x1234 }) : ipv4({ src: RIP, dst: CLIENT, ttl: 64, id: 0x4321 });
  const tcp = c.request ? { sport: c.cport, dport: 80 } : { sport: 8080, dport: c.cport };
  return ip.tcp({ ...tcp, flags: c.flags, seq, ack, window: 501, ...(options ? { options } : {}) }).payload(c.payload).build();
}
/** The segment as the director sends it: NAT rewrite, TTL 63, the given seq and ack. */
function output(c: Case): Buffer {
  const ip = c.request ? ipv4({ src: CLIENT, dst: RIP, ttl: 63, id: 0x1234 }) : ipv4({ src: VIP, dst: CLIENT, ttl: 63, id: 0x4321 });
  const tcp = c.request ? { sport: c.cport, dport: 8080 } : { sport: 80, dport: c.cport };
  return ip.tcp({ ...tcp, flags: c.flags, seq: c.seqOut, ack: c.ackOut, window: 501 }).payload(c.payload).build();
}

describe('fast-path program: SYN-cookie sequence translation (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  let home = -1;
  let maps: FastPathMaps | undefined;
  let prog = -1;
  let slots: MapOps;
  const ifindex: Record<string, number> = {};
  const macOf: Record<string, Buffer> = {};

  before(() => {
    run(['ip', 'netns', 'add', NS]);
    const ip = (...a: string[]) => run(['ip', '-n', NS, ...a]);
    ip('link', 'add', 'hqa', 'type', 'veth', 'peer', 'name', 'hqb');
    ip('link', 'set', 'hqa', 'address', IN_MAC);
    ip('addr', 'add', '198.51.100.1/24', 'dev', 'hqa');
    ip('addr', 'add', '192.0.2.1/24', 'dev', 'hqb');
    for (const d of ['lo', 'hqa', 'hqb']) ip('link', 'set', d, 'up');
    run(['ip', 'netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    ip('neigh', 'replace', RIP, 'lladdr', RIP_MAC, 'dev', 'hqb', 'nud', 'permanent');
    ip('neigh', 'replace', CLIENT, 'lladdr', CLIENT_MAC, 'dev', 'hqa', 'nud', 'permanent');
    home = openSync('/proc/self/ns/net', 'r');
    const target = openSync(`/run/netns/${NS}`, 'r');
    try {
      assert.equal(setns(target, CLONE_NEWNET), 0, 'setns into the test namespace');
    } finally {
      closeSync(target);
    }
    for (const d of ['hqa', 'hqb']) {
      const j = JSON.parse(run(['ip', '-n', NS, '-j', 'link', 'show', d])) as { ifindex: number; address: string }[];
      ifindex[d] = j[0]!.ifindex;
      macOf[d] = mac(j[0]!.address);
    }
    ({ maps, progFd: prog } = loadFastPath(8));
    const flows = new MapOps(maps.flowsFd);
    slots = new MapOps(maps.slotsFd);
    const k = Buffer.alloc(FLOW_KEY_SIZE), v = Buffer.alloc(FLOW_VALUE_SIZE);
    for (const [p, delta] of Object.entries(DELTAS)) {
      const cport = Number(p);
      writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), cport, 80, 6);
      writeValue(v, 0, parseIPv4(RIP), 8080, FLOW_DIR.FLOW_REQUEST, slotOf(cport), 0, delta);
      flows.update(k, v);
      writeKey(k, 0, parseIPv4(RIP), parseIPv4(CLIENT), 8080, cport, 6);
      writeValue(v, 0, parseIPv4(VIP), 80, FLOW_DIR.FLOW_REPLY, slotOf(cport), 0, delta);
      flows.update(k, v);
    }
  });
  after(() => {
    if (prog >= 0) closeFd(prog);
    if (maps) for (const fd of [maps.flowsFd, maps.slotsFd, maps.syncookieFd]) closeFd(fd);
    if (home >= 0) {
      setns(home, CLONE_NEWNET);
      closeSync(home);
    }
    run(['ip', 'netns', 'del', NS]);
  });

  const frame = (dst: Buffer, src: Buffer, ip: Buffer) => Buffer.concat([dst, src, Buffer.from([8, 0]), ip]);
  const send = (request: boolean, ip: Buffer) => {
    const dev = request ? 'hqa' : 'hqb';
    const ctx = Buffer.alloc(44);
    ctx.writeUInt32LE(ifindex[dev]!, 36); // ingress_ifindex
    ctx.writeUInt32LE(ifindex[dev]!, 40); // ifindex
    const f = request ? frame(mac(IN_MAC), mac(CLIENT_MAC), ip) : frame(macOf['hqb']!, mac(RIP_MAC), ip);
    return { f, ...testRun(prog, f, ctx) };
  };
  const packets = (slot: number) => {
    const key = Buffer.alloc(4);
    key.writeUInt32LE(slot);
    const v = Buffer.alloc(SLOT_SIZE);
    slots.lookup(key, v);
    return Number(v.readBigUInt64LE(0)) + Number(v.readBigUInt64LE(8));
  };

  for (const c of CASES) {
    test(`golden: ${c.name}`, () => {
      const before = packets(slotOf(c.cport));
      const r = send(c.request, input(c));
      assert.equal(r.retval, TC_ACT_REDIRECT);
      const want = c.request ? frame(mac(RIP_MAC), macOf['hqb']!, output(c)) : frame(mac(CLIENT_MAC), macOf['hqa']!, output(c));
      assert.equal(r.out.toString('hex'), want.toString('hex'));
      assert.deepEqual(packetChecksumsOk(r.out.subarray(14)), { ip: true, l4: true }, 'checksums by the slow reference');
      assert.equal(r.out.readUInt32BE(14 + 20 + 4), c.seqOut >>> 0, 'seq');
      assert.equal(r.out.readUInt32BE(14 + 20 + 8), c.ackOut >>> 0, 'ack');
      assert.equal(packets(slotOf(c.cport)) - before, 1, 'counted in its slot');
      if (DELTAS[c.cport] !== 0 && c.flags.includes('A')) {
        // control: the same segment through the delta-0 entry keeps its numbers
        const same = send(c.request, input({ ...c, cport: 41003 }));
        assert.equal(same.retval, TC_ACT_REDIRECT);
        assert.equal(same.out.readUInt32BE(14 + 20 + (c.request ? 8 : 4)), c.request ? c.ack : c.seq);
        assert.notEqual(same.out.readUInt32BE(14 + 20 + (c.request ? 8 : 4)), c.request ? c.ackOut : c.seqOut);
      }
    });
  }

  for (const request of [true, false]) {
    test(`a ${request ? 'request' : 'reply'} with a SACK option of a translated flow goes to ulvsd untouched; of an untranslated one it is forwarded`, () => {
      const c = CASES.find((x) => x.request === request && x.cport === 41000 && x.flags === 'PA')!;
      const before = packets(slotOf(41000));
      const r = send(request, input(c, c.seq, c.ack, SACK));
      assert.equal(r.retval, TCX_NEXT);
      assert.equal(r.out.toString('hex'), r.f.toString('hex'), 'untouched');
      assert.equal(packets(slotOf(41000)), before, 'not counted');
      const ctl = send(request, input({ ...c, cport: 41003 }, c.seq, c.ack, SACK));
      assert.equal(ctl.retval, TC_ACT_REDIRECT, 'options are no reason by themselves');
      assert.deepEqual(packetChecksumsOk(ctl.out.subarray(14)), { ip: true, l4: true });
    });
  }
});
