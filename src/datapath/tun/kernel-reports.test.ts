/**
 * The worker's application of kernel set-up reports (kernel-reports.ts) to a real engine, with
 * a fake flow map and free queue: a NEW opens a connection (counted, nothing deleted, nothing
 * pushed); an orphan's two entries are deleted (the exact request and reply keys) before its
 * slot is pushed; a slot the worker may not give back is not pushed; a segment applies or is
 * counted unknown; records of an unknown kind or method are counted. Controls: the same NEW
 * for an existing service is not an orphan (first test), and a slot held by a connection is
 * not pushed by a later orphan naming it (kernel_bad_slots).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT, director, ip, key, RS1, TCP, VIP } from '../../../test/support/bed.js';
import { OffloadReport, type OffloadPort } from '../../core/offload.js';
import { TcpFlag } from '../../wire/tcp.js';
import { FLOW_KEY_SIZE } from './fastpath.js';
import { writeKey } from './flow-entry.js';
import { KernelReports, KReportKind, type KReport } from './kernel-reports.js';
import { FLOW_DIR } from './layouts.gen.js';

const KBASE = 64;
const KCOUNT = 8;

/** held kernel slots, as the Offloader keeps them */
class Port implements OffloadPort {
  held = new Set<number>();
  offer = () => false;
  withdraw(_c: number, out: OffloadReport): void {
    out.clear();
  }
  route(): void {}
  unroute(): void {}
  kernelSlotFree = (slot: number) => slot >= KBASE && slot < KBASE + KCOUNT && !this.held.has(slot);
  adoptKernel(_c: number, slot: number): void {
    this.held.add(slot);
  }
}

function setup() {
  const port = new Port();
  const d = director({ offload: { port: () => port, after: 1000 } });
  const K = key(TCP, VIP, 80);
  d.addService({ ...K, scheduler: 'rr' });
  d.addDest(K, { addr: ip(RS1), port: 8080 });
  const deleted: string[] = [];
  const pushed: number[] = [];
  const kr = new KernelReports({
    engine: d.kernel,
    flows: { delete: (k: Buffer) => (deleted.push(k.toString('hex')), true) },
    freeQueue: { push: (v: Buffer) => (pushed.push(v.readUInt32LE(0)), 0) },
    slotBase: KBASE,
    slotCount: KCOUNT,
    slotFree: (s) => port.kernelSlotFree(s),
    clockOffsetMs: 0,
  });
  return { d, port, kr, deleted, pushed };
}

const rec = (o: Partial<KReport>): KReport => ({ kind: KReportKind.NEW, caddr: ip(CLIENT), vaddr: ip(VIP), raddr: ip(RS1), cport: 40000, vport: 80, rport: 8080, proto: TCP, tcp_flags: TcpFlag.SYN, reply: 0, dir: FLOW_DIR.FLOW_REQUEST, slot: KBASE + 1, ip_len: 60, gso_segs: 1, ns: 0, ...o });
const keyHex = (saddr: string, daddr: string, sport: number, dport: number) => {
  const b = Buffer.alloc(FLOW_KEY_SIZE);
  writeKey(b, 0, ip(saddr), ip(daddr), sport, dport, TCP);
  return b.toString('hex');
};

test('a NEW opens the connection; its segments apply; nothing deleted or pushed', () => {
  const { d, kr, deleted, pushed } = setup();
  kr.apply(rec({}), 1000);
  assert.equal(d.conns.count, 1);
  assert.equal(d.connections(1000)[0]!.state, 'SYN_RECV');
  kr.apply(rec({ kind: KReportKind.SEGMENT, reply: 1, tcp_flags: TcpFlag.SYN | TcpFlag.ACK, ip_len: 60 }), 1001);
  kr.apply(rec({ kind: KReportKind.SEGMENT, tcp_flags: TcpFlag.ACK, ip_len: 52 }), 1002);
  assert.equal(d.connections(1002)[0]!.state, 'ESTABLISHED');
  kr.apply(rec({ kind: KReportKind.SEGMENT, cport: 40001, tcp_flags: TcpFlag.FIN | TcpFlag.ACK }), 1003);
  assert.deepEqual(kr.counters, { ...kr.counters, kernel_opened: 1, kernel_segments: 2, kernel_unknown_segments: 1, kernel_orphans: 0 });
  assert.deepEqual([deleted, pushed], [[], []]);
  assert.deepEqual(d.snapshot().totals.counters, [1, 2, 1, 112, 60]);
});

test('an orphan (no such service): request and reply entries deleted, then the slot pushed', () => {
  const { d, kr, deleted, pushed } = setup();
  kr.apply(rec({ vport: 81, slot: KBASE + 2 }), 1000);
  assert.equal(d.conns.count, 0);
  assert.deepEqual(deleted, [keyHex(CLIENT, VIP, 40000, 81), keyHex(RS1, CLIENT, 8080, 40000)]);
  assert.deepEqual(pushed, [KBASE + 2]);
  assert.equal(kr.counters.kernel_orphans, 1);
});

test('an orphan naming a slot the worker may not give back: entries deleted, nothing pushed', () => {
  const { kr, deleted, pushed } = setup();
  kr.apply(rec({ slot: KBASE + 3 }), 1000); // held by the new connection
  kr.apply(rec({ vport: 81, slot: KBASE + 3 }), 1000); // control: a report naming the held slot
  kr.apply(rec({ vport: 81, slot: 3 }), 1000); // outside the kernel's range
  assert.equal(deleted.length, 4);
  assert.deepEqual(pushed, []);
  assert.equal(kr.counters.kernel_bad_slots, 2);
  assert.equal(kr.counters.kernel_opened, 1);
});

test('a tuple the engine holds live (reported new twice) is a conflict: entries deleted, slot back', () => {
  const { d, kr, pushed } = setup();
  kr.apply(rec({ slot: KBASE + 4 }), 1000);
  kr.apply(rec({ slot: KBASE + 5 }), 1001); // the same tuple again
  assert.equal(d.conns.count, 1);
  assert.equal(kr.counters.kernel_conflicts, 1);
  assert.deepEqual(pushed, [KBASE + 5]);
});

test('unknown kind and unknown method are counted; the NEW of an unknown method is an orphan', () => {
  const { d, kr, pushed } = setup();
  kr.apply(rec({ kind: 9 }), 1000);
  kr.apply(rec({ dir: FLOW_DIR.FLOW_REPLY, slot: KBASE + 6 }), 1000);
  assert.equal(d.conns.count, 0);
  assert.equal(kr.counters.kernel_bad_records, 2);
  assert.deepEqual(pushed, [KBASE + 6]);
});

test("the record's time: kernel ns on the engine clock, never after the caller's now", () => {
  const { d, kr } = setup();
  kr.apply(rec({ ns: 500e6 }), 1000); // forwarded at 500 ms: the 60 s SYN_RECV timer runs from then
  assert.equal(d.connections(1000)[0]!.expiresInMs, 60_000 - 500);
  kr.apply(rec({ cport: 40002, slot: KBASE + 7, ns: 5000e6 }), 1000); // a clock ahead: clamped to now
  assert.equal(d.connections(1000).find((c) => c.cport === 40002)!.expiresInMs, 60_000);
});
