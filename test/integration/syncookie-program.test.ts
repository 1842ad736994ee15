/**
 * SYN cookies in the fast path's program (bpf/fastpath.bpf.c with bpf/ulvs_syncookie.h), run by
 * the kernel itself (BPF_PROG_TEST_RUN) inside a namespace of its own: a pure SYN to a service in
 * ulvs_syncookie_svcs comes back as the SYN-ACK (endpoints swapped, MSS option, checksums right by
 * the slow reference), redirected out of the interface it came in on; the client's ACK carrying
 * that cookie goes on marked with TCP_VALIDATED_BIT; a forged mark is cleared. Controls: the same
 * SYN to a service not in the map passes untouched, and an ACK with a wrong cookie passes
 * unmarked (so a program that marked every ACK, or answered every SYN, fails here).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSync, closeSync } from 'node:fs';
import { ipv4 } from '../../src/wire/build.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { MapOps, fdById, mapInfo, progInfo, testRun } from '../../src/datapath/tun/bpf.js';
import { loadFastPath, closeFd, type FastPathMaps } from '../../src/datapath/tun/fastpath.js';
import { FAST_COUNTER } from '../../src/datapath/tun/layouts.gen.js';
import { writeSyncookieKey, SYNCOOKIE_KEY_SIZE, SYNCOOKIE_VALUE_SIZE, TCP_VALIDATED_BIT } from '../../src/datapath/tun/syncookie-map.js';
import { run } from '../../src/lab/shell.js';
import { packetChecksumsOk } from '../support/slow-checksum.js';
import { needsRoot } from '../support/root.js';
import { libc } from '../../src/datapath/tun/syscalls.js';

const setns = libc.func('int setns(int fd, int nstype)') as (fd: number, type: number) => number;
const CLONE_NEWNET = 0x40000000;
const NS = `qsprog${process.pid}`;
const CLIENT = '198.51.100.2', VIP = '203.0.113.10';
const CLIENT_MAC = '02:00:00:00:00:02', IN_MAC = '02:00:00:00:01:01';
const mac = (s: string) => Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
const TCX_NEXT = -1, TC_ACT_SHOT = 2, TC_ACT_REDIRECT = 7;
/** MSS 1460, SACK permitted, timestamps, NOP, window scale 7: what Linux sends */
const SYN_OPTS = Uint8Array.from([2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7]);

describe('fast-path program: SYN cookies (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  let home = -1;
  let maps: FastPathMaps;
  let prog = -1;
  let svcs: MapOps;
  let stats: MapOps;
  let ifindex = 0;

  before(() => {
    run(['ip', 'netns', 'add', NS]);
    const ip = (...a: string[]) => run(['ip', '-n', NS, ...a]);
    ip('link', 'add', 'qsa', 'type', 'veth', 'peer', 'name', 'qsb');
    ip('link', 'set', 'qsa', 'address', IN_MAC);
    ip('addr', 'add', '198.51.100.1/24', 'dev', 'qsa');
    for (const d of ['lo', 'qsa', 'qsb']) ip('link', 'set', d, 'up');
    home = openSync('/proc/self/ns/net', 'r');
    const target = openSync(`/run/netns/${NS}`, 'r');
    try {
      assert.equal(setns(target, CLONE_NEWNET), 0, 'setns into the test namespace');
    } finally {
      closeSync(target);
    }
    ifindex = (JSON.parse(run(['ip', '-n', NS, '-j', 'link', 'show', 'qsa'])) as { ifindex: number }[])[0]!.ifindex;
    ({ maps, progFd: prog } = loadFastPath(8));
    svcs = new MapOps(maps.syncookieFd);
    for (const id of progInfo(prog).mapIds) {
      const m = fdById('map', id);
      if (m !== null && mapInfo(m).name === 'ulvs_fast_stats') stats = new MapOps(m);
      else if (m !== null) closeFd(m);
    }
    assert.ok(stats, "the fast path's counters");
    const k = Buffer.alloc(SYNCOOKIE_KEY_SIZE), v = Buffer.alloc(SYNCOOKIE_VALUE_SIZE);
    writeSyncookieKey(k, 0, parseIPv4(VIP), 80);
    v.writeUInt32LE(1, 0);
    svcs.update(k, v);
  });
  after(() => {
    for (const fd of [prog, maps?.flowsFd ?? -1, maps?.slotsFd ?? -1, maps?.syncookieFd ?? -1]) if (fd >= 0) closeFd(fd);
    if (home >= 0) {
      setns(home, CLONE_NEWNET);
      closeSync(home);
    }
    run(['ip', 'netns', 'del', NS]);
  });

  const frame = (ip: Buffer) => Buffer.concat([mac(IN_MAC), mac(CLIENT_MAC), Buffer.from([8, 0]), ip]);
  const runOn = (f: Buffer) => {
    const ctx = Buffer.alloc(44);
    ctx.writeUInt32LE(ifindex, 36); // ingress_ifindex
    ctx.writeUInt32LE(ifindex, 40); // ifindex
    return testRun(prog, f, ctx);
  };
  const count = (name: keyof typeof FAST_COUNTER) => {
    const k = Buffer.alloc(4), v = Buffer.alloc(8);
    k.writeUInt32LE(FAST_COUNTER[name]);
    return stats.lookup(k, v) ? Number(v.readBigUInt64LE(0)) : 0;
  };
  const syn = (dport = 80, opts: Uint8Array | null = SYN_OPTS) => ipv4({ src: CLIENT, dst: VIP, ttl: 61 }).tcp({ sport: 40000, dport, flags: 'S', seq: 0x11223344, window: 64240, ...(opts ? { options: opts } : {}) }).build();

  /** the SYN-ACK for `syn`: returns its cookie after checking every byte but the cookie's */
  const answer = (input: Buffer, mss: number): number => {
    const sent = count('FAST_SYNCOOKIE_SENT');
    const r = runOn(frame(input));
    assert.equal(r.retval, TC_ACT_REDIRECT);
    assert.equal(count('FAST_SYNCOOKIE_SENT') - sent, 1);
    assert.equal(r.out.length, 14 + 44, 'IPv4 20 + TCP 24 (the MSS option alone)');
    assert.equal(r.out.subarray(0, 14).toString('hex'), Buffer.concat([mac(CLIENT_MAC), mac(IN_MAC), Buffer.from([8, 0])]).toString('hex'), 'Ethernet addresses swapped');
    const out = r.out.subarray(14);
    const cookie = out.readUInt32BE(24);
    const want = ipv4({ src: VIP, dst: CLIENT, ttl: 64, id: 0, flagsFrag: 0x4000 }).tcp({ sport: 80, dport: 40000, flags: 'SA', seq: cookie, ack: 0x11223345, window: 65535, options: Uint8Array.from([2, 4, mss >> 8, mss & 255]) }).build();
    assert.equal(out.toString('hex'), want.toString('hex'));
    assert.deepEqual(packetChecksumsOk(out), { ip: true, l4: true });
    return cookie;
  };

  test('a pure SYN (Linux options) is answered in place: SYN-ACK, ack = seq + 1, MSS 1460 alone, checksums right, redirected; counted', () => {
    answer(syn(), 1460);
  });

  test('a SYN without options gets the MSS the kernel assumes (536)', () => {
    answer(syn(80, null), 536);
  });

  test('the ACK with the cookie goes on marked (checksum right); one with a wrong cookie unmarked (control)', () => {
    const cookie = answer(syn(), 1460);
    const ack = (a: number) => ipv4({ src: CLIENT, dst: VIP, ttl: 61 }).tcp({ sport: 40000, dport: 80, flags: 'A', seq: 0x11223345, ack: a }).build();
    const valid = count('FAST_SYNCOOKIE_VALID'), invalid = count('FAST_SYNCOOKIE_INVALID');
    const r = runOn(frame(ack((cookie + 1) >>> 0)));
    assert.equal(r.retval, TCX_NEXT);
    const out = r.out.subarray(14);
    assert.equal(out[32]! & TCP_VALIDATED_BIT, TCP_VALIDATED_BIT, 'marked');
    const expect = ack((cookie + 1) >>> 0);
    expect[32] = expect[32]! | TCP_VALIDATED_BIT;
    assert.deepEqual(packetChecksumsOk(out), { ip: true, l4: true });
    assert.equal(out.subarray(0, 32).toString('hex') + out.subarray(33).subarray(0, 3).toString('hex'), expect.subarray(0, 32).toString('hex') + expect.subarray(33).subarray(0, 3).toString('hex'));
    assert.equal(count('FAST_SYNCOOKIE_VALID') - valid, 1);
    // control: a cookie that was never issued
    const bad = runOn(frame(ack((cookie + 2) >>> 0)));
    assert.equal(bad.retval, TCX_NEXT);
    assert.equal(bad.out[14 + 32]! & TCP_VALIDATED_BIT, 0, 'not marked');
    assert.equal(bad.out.subarray(14).toString('hex'), ack((cookie + 2) >>> 0).toString('hex'));
    assert.equal(count('FAST_SYNCOOKIE_INVALID') - invalid, 1);
  });

  test('a client-set TCP_VALIDATED_BIT is cleared (checksum right) from any segment; counted', () => {
    const forged = ipv4({ src: CLIENT, dst: VIP, ttl: 61 }).tcp({ sport: 40001, dport: 80, flags: 'A', seq: 5, ack: 77 }).payload('GET / HTTP/1.0\r\n\r\n').build();
    const clean = Buffer.from(forged);
    forged[32] = forged[32]! | TCP_VALIDATED_BIT;
    // the forged segment's own checksum made right (recomputeTcp), so only the bit differs
    const before = count('FAST_TCP_RES_CLEARED');
    const withSum = recomputeTcp(forged);
    const r = runOn(frame(withSum));
    assert.equal(r.retval, TCX_NEXT, 'no flow entry, no cookie service port match for a wrong cookie: on to the capture');
    assert.equal(r.out.subarray(14).toString('hex'), clean.toString('hex'), 'the bit cleared, the checksum back to the clean one');
    assert.equal(count('FAST_TCP_RES_CLEARED') - before, 1);
  });

  test('control: the same SYN to a port not in the map passes untouched (TCX_NEXT), nothing sent', () => {
    const sent = count('FAST_SYNCOOKIE_SENT');
    const f = frame(syn(81));
    const r = runOn(f);
    assert.equal(r.retval, TCX_NEXT);
    assert.equal(r.out.toString('hex'), f.toString('hex'));
    assert.equal(count('FAST_SYNCOOKIE_SENT'), sent);
  });

  test('a SYN whose IPv4 header checksum is wrong is not answered: passed on untouched (the engine drops and counts it); the same SYN with it right is answered (control)', () => {
    const sent = count('FAST_SYNCOOKIE_SENT');
    const bad = syn(80);
    bad.writeUInt16BE(bad.readUInt16BE(10) ^ 0x0101, 10); // the IP header checksum broken
    const f = frame(bad);
    const r = runOn(f);
    assert.equal(r.retval, TCX_NEXT);
    assert.equal(r.out.toString('hex'), f.toString('hex'));
    assert.equal(count('FAST_SYNCOOKIE_SENT'), sent, 'not answered');
    answer(syn(80), 1460); // control
  });

  test('a SYN with payload (TCP Fast Open) is dropped, counted: never answered, never up to the TUN', () => {
    const refused = count('FAST_SYNCOOKIE_REFUSED');
    const r = runOn(frame(ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40002, dport: 80, flags: 'S', options: Uint8Array.from([2, 4, 5, 0xb4]) }).payload('data').build()));
    assert.equal(r.retval, TC_ACT_SHOT);
    assert.equal(count('FAST_SYNCOOKIE_REFUSED') - refused, 1);
  });
});

/** The IPv4 TCP segment with its TCP checksum computed afresh (for a hand-edited test input). */
function recomputeTcp(p: Buffer): Buffer {
  const out = Buffer.from(p);
  out.writeUInt16BE(0, 36);
  let sum = 0;
  const seg = out.subarray(20);
  for (let i = 12; i < 20; i += 2) sum += out.readUInt16BE(i);
  sum += 6 + seg.length;
  for (let i = 0; i < seg.length; i += 2) sum += (seg[i]! << 8) | (seg[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  out.writeUInt16BE(~sum & 0xffff, 36);
  return out;
}
