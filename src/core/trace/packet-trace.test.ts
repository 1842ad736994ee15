/**
 * The trace recorder on a real engine: what it records for a client's SYN (new connection,
 * NONE -> SYN_RECV, header before and after the rewrite), the server's SYN-ACK (a reply, its
 * source rewritten back), a drop (its outcome), nothing for a filter that does not match
 * (control), the budget, and records lost when the ring is full (never overwritten).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../wire/build.js';
import { CLIENT, CLIENT2, director, ip, key, RS1, TCP, VIP } from '../../../test/support/bed.js';
import { Outcome, Verdict } from '../verdict.js';
import { compileFilter } from './trace-filter.js';
import { Kind, Note, PacketTrace, Rec, REC, TRACE_RING } from './packet-trace.js';

function bed() {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080 });
  const tr = new PacketTrace();
  const send = (pkt: Buffer, now = 0) => {
    const b = Buffer.from(pkt);
    if (tr.on) tr.before(d, b, 0, b.length);
    const v = d.process(b, 0, b.length, now, 0);
    if (tr.on) tr.after(d, b, 0, v, now);
    return v;
  };
  return { d, tr, send };
}
const syn = (src: string, sport: number) => ipv4({ src, dst: VIP }).tcp({ sport, dport: 80, flags: 'S' }).build();
const synAck = (dst: string, dport: number) => ipv4({ src: RS1, dst }).tcp({ sport: 8080, dport, flags: 'SA' }).build();

test('a SYN and its SYN-ACK: new connection NONE -> SYN_RECV, headers before and after each rewrite', () => {
  const { tr, send } = bed();
  tr.start(compileFilter({ client: { addr: ip(CLIENT) } }), 100);
  assert.equal(send(syn(CLIENT, 40000)), Verdict.Forward);
  assert.equal(send(synAck(CLIENT, 40000)), Verdict.Forward);
  const { records: r, lost } = tr.drain();
  assert.equal(r.length, 2 * REC);
  assert.equal(lost, 0);
  assert.deepEqual([r[Rec.kind], r[Rec.bSaddr], r[Rec.bDaddr], r[Rec.bPorts]], [Kind.Packet, ip(CLIENT) | 0, ip(VIP) | 0, (40000 << 16) | 80]);
  assert.deepEqual([r[Rec.aSaddr], r[Rec.aDaddr], r[Rec.aPorts]], [ip(CLIENT) | 0, ip(RS1) | 0, (40000 << 16) | 8080], 'the destination rewritten to the real server');
  assert.deepEqual([r[Rec.outcome], r[Rec.notes], r[Rec.stateBefore], r[Rec.stateAfter]], [Outcome.ForwardIn, Note.Created, 0, 3], 'NONE -> SYN_RECV');
  assert.equal((r[Rec.bMeta]! >>> 8) & 0xff, 0x02, 'SYN flag');
  const o = REC;
  assert.deepEqual([r[o + Rec.bSaddr], r[o + Rec.aSaddr], r[o + Rec.aPorts]], [ip(RS1) | 0, ip(VIP) | 0, (80 << 16) | 40000], 'the reply source rewritten back to VIP:80');
  assert.deepEqual([r[o + Rec.outcome], r[o + Rec.notes], r[o + Rec.stateBefore]], [Outcome.ForwardOut, 0, 3], 'state before: what the trace saw last');
});

test('a filter that matches neither the connection nor the header records nothing (control); a drop records its outcome', () => {
  const { tr, send } = bed();
  tr.start(compileFilter({ client: { addr: ip(CLIENT2) } }), 100);
  send(syn(CLIENT, 40001));
  send(synAck(CLIENT, 40001));
  assert.equal(tr.drain().records.length, 0);
  tr.start(compileFilter({ service: { addr: ip(VIP), port: 80 } }), 100);
  const bad = Buffer.from(syn(CLIENT, 40002));
  bad[10] ^= 0xff; // IP header checksum broken
  assert.equal(send(bad), Verdict.Drop);
  const { records: r } = tr.drain();
  assert.deepEqual([r.length, r[Rec.verdict], r[Rec.outcome], r[Rec.conn]], [REC, Verdict.Drop, Outcome.DropBadIpChecksum, -1]);
});

test('the budget ends the trace; a full ring counts records lost and keeps the first ones', () => {
  const { tr, send } = bed();
  tr.start(compileFilter({ client: { addr: ip(CLIENT) } }), 3);
  for (let p = 0; p < 5; p++) send(syn(CLIENT, 41000 + p));
  assert.equal(tr.drain().records.length, 3 * REC);
  assert.equal(tr.on, false, 'off once the budget is spent');
  tr.start(compileFilter({ service: { addr: ip(VIP) } }), TRACE_RING + 10);
  for (let p = 0; p < TRACE_RING + 5; p++) send(syn(CLIENT, 1024 + p));
  const full = tr.drain();
  assert.deepEqual([full.records.length / REC, full.lost], [TRACE_RING, 5]);
  assert.equal(full.records[Rec.bPorts]! >>> 16, 1024, 'the oldest kept');
  send(syn(CLIENT, 9));
  assert.equal(tr.drain().records.length, REC, 'room again after the drain');
});
