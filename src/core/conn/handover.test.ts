/**
 * Connections handed from one engine to the next (handover.ts): every field survives the round
 * trip, the next engine forwards a mid-stream segment of a handed-over connection exactly as the
 * first one would have (same bytes out), where a fresh engine drops it (the control), the
 * accounting and template links are rebuilt, a record whose server is gone is skipped and
 * counted, and an offloaded connection's slot goes to the port's adopt().
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../wire/build.js';
import { CLIENT, CLIENT2, director, ip, key, RS1, RS2, TCP, VIP } from '../../../test/support/bed.js';
import type { Director } from '../director.js';
import { OffloadReport, type OffloadPort } from '../offload.js';
import { Outcome, Verdict } from '../verdict.js';
import { checkRecords, HANDOVER_RECORD_SIZE, REC } from './handover.js';

const tcp = (src: string, sport: number, dst: string, dport: number, flags: string, payload = '') => ipv4({ src, dst }).tcp({ sport, dport, flags, ...(payload ? { payload: Buffer.from(payload) } : {}) }).build();
const send = (d: Director, pkt: Buffer, now: number) => {
  const b = Buffer.from(pkt);
  return { v: d.process(b, 0, b.length, now, 0), out: b };
};

function engine(o: { persistent?: boolean; port?: OffloadPort } = {}): Director {
  const d = director(o.port ? { offload: { port: () => o.port!, after: 2 } } : {});
  d.addService({ ...key(TCP, VIP, 80), scheduler: 'rr', ...(o.persistent ? { persistent: 300 } : {}) });
  d.addDest(key(TCP, VIP, 80), { addr: ip(RS1), port: 8080 });
  d.addDest(key(TCP, VIP, 80), { addr: ip(RS2), port: 8080 });
  return d;
}

/** client `c`:port opens a connection and reaches ESTABLISHED; returns the real server it got */
function open(d: Director, c: string, port: number, now: number): string {
  const syn = send(d, tcp(c, port, VIP, 80, 'S'), now);
  const rs = `${syn.out[16]}.${syn.out[17]}.${syn.out[18]}.${syn.out[19]}`;
  send(d, tcp(rs, 8080, c, port, 'SA'), now);
  send(d, tcp(c, port, VIP, 80, 'A'), now);
  return rs;
}

test('round trip: same entries, states, servers, timers; a mid-stream segment is forwarded byte for byte as before; a fresh engine drops it', () => {
  const a = engine();
  const t0 = 1_000_000;
  const rs1 = open(a, CLIENT, 40000, t0);
  const rs2 = open(a, CLIENT2, 40001, t0);
  send(a, tcp(CLIENT2, 40001, VIP, 80, 'F'), t0); // one connection in another state
  const x = a.exportConns(t0 + 500);
  assert.equal(x.count, 2);
  assert.equal(x.buf.length, 2 * HANDOVER_RECORD_SIZE);
  assert.equal(checkRecords(x.buf, x.count), null);

  const b = engine();
  const t1 = 5_000; // another process: another clock
  const r = b.importConns(x.buf, x.count, t1);
  assert.deepEqual(r, { imported: 2, noDest: 0, tableFull: 0, duplicate: 0, adopted: 0 });
  const before = a.connections(t0 + 500).map((c) => ({ ...c, expiresInMs: Math.round(c.expiresInMs / 1000) }));
  const after = b.connections(t1).map((c) => ({ ...c, expiresInMs: Math.round(c.expiresInMs / 1000) }));
  assert.deepEqual(after, before, 'the same entries, states and remaining times (to the second)');
  const sa = a.snapshot().services[0]!.dests;
  const sb = b.snapshot().services[0]!.dests;
  assert.deepEqual(sb.map((d) => [d.activeConns, d.inactConns]), sa.map((d) => [d.activeConns, d.inactConns]), 'active/inactive counts rebuilt');
  assert.notEqual(rs1, rs2);

  const seg = tcp(CLIENT, 40000, VIP, 80, 'PA', 'hello');
  const fa = send(a, seg, t0 + 600);
  const fb = send(b, seg, t1 + 100);
  assert.equal(fb.v, Verdict.Forward);
  assert.deepEqual(fb.out, fa.out, 'rewritten identically by both engines');
  const reply = tcp(rs1, 8080, CLIENT, 40000, 'PA', 'world');
  assert.deepEqual(send(b, reply, t1 + 101).out, send(a, reply, t0 + 601).out, 'the reply too');

  const fresh = engine();
  assert.notEqual(send(fresh, seg, t1).v, Verdict.Forward, 'control: without the hand-over the segment finds no connection');
  assert.equal(fresh.lastOutcome, Outcome.PassNoConn);
});

test('a record whose real server is gone is skipped and counted; duplicates are not imported twice', () => {
  const a = engine();
  open(a, CLIENT, 40000, 1000);
  open(a, CLIENT2, 40000, 1000);
  const x = a.exportConns(1000);
  const b = director();
  b.addService({ ...key(TCP, VIP, 80), scheduler: 'rr' });
  b.addDest(key(TCP, VIP, 80), { addr: ip(RS1), port: 8080 }); // RS2 deleted meanwhile
  const r = b.importConns(x.buf, x.count, 0);
  assert.equal(r.imported, 1);
  assert.equal(r.noDest, 1);
  assert.equal(b.importConns(x.buf, x.count, 0).duplicate, 1);
});

test('persistence templates come first and their links are rebuilt', () => {
  const a = engine({ persistent: true });
  open(a, CLIENT, 40000, 1000);
  open(a, CLIENT, 40001, 1000);
  const x = a.exportConns(1000);
  assert.equal(x.count, 3);
  assert.equal(x.buf.readInt32LE(REC.template), -1);
  assert.equal(x.buf.readInt32LE(HANDOVER_RECORD_SIZE + REC.template), 0);
  const b = engine({ persistent: true });
  b.importConns(x.buf, x.count, 0);
  assert.equal(b.conns.templates, 1);
  assert.equal(b.snapshot().services[0]!.dests.reduce((s, d) => s + d.persistConns, 0), 1);
  // a third connection of the client goes to the same server, by the imported template
  const rsA = open(a, CLIENT, 40002, 1001);
  assert.equal(open(b, CLIENT, 40002, 1), rsA);
});

test('an offloaded connection exports its slot and reported counts; the next engine hands them to adopt()', () => {
  const calls: string[] = [];
  const port: OffloadPort = {
    offer: () => true,
    withdraw: (_c, out: OffloadReport) => void out.clear(),
    route: () => {},
    unroute: () => {},
    slotOf: (_c, rep) => (rep.set([10, 1000, 9, 900]), 77),
    adopt: (c, slot, rep) => (calls.push(`${c} ${slot} ${[...rep].join(',')}`), true),
  };
  const a = engine({ port });
  open(a, CLIENT, 40000, 1000);
  send(a, tcp(CLIENT, 40000, VIP, 80, 'A'), 1000);
  send(a, tcp(CLIENT, 40000, VIP, 80, 'A'), 1000); // offered after 2 in ESTABLISHED
  const x = a.exportConns(1000);
  assert.equal(x.buf.readInt32LE(REC.slot), 77);
  const b = engine({ port });
  assert.equal(b.importConns(x.buf, x.count, 0).adopted, 1);
  assert.deepEqual(calls, ['0 77 10,1000,9,900']);
  assert.ok(b.connections(0).length === 1);
});

test('checkRecords refuses what cannot be an entry', () => {
  const a = engine();
  open(a, CLIENT, 40000, 1000);
  const x = a.exportConns(1000);
  const bad = (f: (b: Buffer) => void) => {
    const b = Buffer.from(x.buf);
    f(b);
    return checkRecords(b, 1)?.reason;
  };
  assert.match(bad((b) => (b[REC.proto] = 1))!, /protocol 1/);
  assert.match(bad((b) => (b[REC.state] = 200))!, /state 200/);
  assert.match(bad((b) => b.writeUInt16LE(0x80, REC.flags))!, /flags/);
  assert.match(bad((b) => b.writeInt32LE(0, REC.template))!, /template link/);
  assert.match(bad((b) => b.writeDoubleLE(NaN, REC.reported))!, /reported/);
  assert.equal(checkRecords(x.buf.subarray(0, 10), 1)?.reason, 'truncated');
});
