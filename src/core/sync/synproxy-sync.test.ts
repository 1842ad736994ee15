/**
 * A SYN-cookie connection through connection sync (synproxy-seq.ts): the master announces its
 * delta as IPVS_OPT_SEQ_DATA (OUT_SEQ; out_seq 0, D, D), a backup that applies it translates the
 * connection's packets byte for byte as the master does. Controls: a backup without the records
 * does not forward them; the same record with out_seq in the kernel FTP helper's shape (delta !=
 * previous_delta) is kept as opaque data and announced on unchanged, not used to translate.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { director, ip, key, RS1, TCP, VIP } from '../../../test/support/bed.js';
import { capture } from '../../../test/support/sync-bed.js';
import { cli, COOKIE, cookieConn, DELTA, fromRs, ISN, send, SISN } from '../../../test/support/cookie-conn.js';
import { KFlag } from '../../wire/ipvs-sync/constants.js';
import { SyncDecoder } from '../../wire/ipvs-sync/decode.js';
import { SyncReason } from '../../wire/ipvs-sync/reasons.js';
import type { Director } from '../director.js';
import { Verdict } from '../verdict.js';

function engine(): Director {
  const d = director({ sysctl: { synCookies: 1 } });
  d.addService({ ...key(TCP, VIP, 80), scheduler: 'rr' });
  d.addDest(key(TCP, VIP, 80), { addr: ip(RS1), port: 8080 });
  return d;
}

/** The master's datagrams after a cookie connection and 5 requests (announced at the 3rd). */
function announced(): { m: Director; datagrams: Buffer[] } {
  const m = engine();
  const cap = capture();
  m.sync.startMaster({ syncid: 1, maxlen: 1472 }, cap.sink);
  cookieConn(m);
  for (let i = 0; i < 5; i++) send(m, cli('A', ISN + 1, COOKIE + 1));
  m.sync.flush();
  return { m, datagrams: cap.datagrams };
}

/** The sequence data of every record: [flags & SEQ_MASK, in_seq x3, out_seq x3]. */
function seqData(datagrams: Buffer[]): number[][] {
  const out: number[][] = [];
  for (const g of datagrams)
    new SyncDecoder().decode(g, 0, g.length, 0, (r) => (out.push(r.hasSeq ? [r.connFlags & KFlag.SEQ_MASK, r.inSeqInit, r.inSeqDelta, r.inSeqPrevDelta, r.outSeqInit, r.outSeqDelta, r.outSeqPrevDelta] : []), true));
  return out;
}

/** Offset of the first record's out_seq delta in a v1 datagram (8-byte header, 36-byte record
 *  fixed part, then the option's type and length and in_seq's 12 bytes, out_seq's init_seq). */
const OUT_DELTA = 8 + 36 + 2 + 12 + 4;

test('the master announces a cookie connection with OUT_SEQ, out_seq {0, delta, delta}', () => {
  const { datagrams } = announced();
  const seq = seqData(datagrams);
  assert.ok(seq.length >= 1);
  for (const s of seq) assert.deepEqual(s, [KFlag.OUT_SEQ, 0, 0, 0, 0, DELTA >>> 0, DELTA >>> 0]);
  assert.equal(datagrams[0]!.readUInt32BE(OUT_DELTA), DELTA >>> 0, 'where the test below changes it');
});

test('a backup that applied the records translates as the master; controls: without them, and with another shape of sequence data', () => {
  const { m, datagrams } = announced();
  const b = engine();
  for (const g of datagrams) assert.equal(b.sync.receive(g, 0, g.length, 1, 2000), SyncReason.Ok);
  const reply = fromRs('PA', SISN + 1, ISN + 1, 40000, 'hello');
  const req = cli('PA', ISN + 1, COOKIE + 6, 40000, 'world');
  const outM = send(m, reply);
  assert.equal(outM.readUInt32BE(24), (COOKIE + 1) >>> 0);
  assert.deepEqual(send(b, reply, 2001), outM, 'the reply: seq + delta');
  assert.deepEqual(send(b, req, 2002), send(m, req), 'the request: ack - delta');

  const fresh = engine();
  assert.notEqual(fresh.process(Buffer.from(req), 0, req.length, 2002, 0), Verdict.Forward, 'control: no records, no connection');

  const ftp = datagrams.map((g) => Buffer.from(g));
  ftp[0]!.writeUInt32BE(((DELTA + 1) | 0) >>> 0, OUT_DELTA); // delta != previous_delta: FTP's shape
  const o = engine();
  const cap = capture();
  for (const g of ftp) assert.equal(o.sync.receive(g, 0, g.length, 1, 2000), SyncReason.Ok);
  assert.equal(send(o, reply, 2001).readUInt32BE(24), SISN + 1, 'control: not a SYN-cookie delta, nothing translated');
  o.sync.startMaster({ syncid: 1, maxlen: 1472 }, cap.sink);
  for (let i = 0; i < 5; i++) send(o, cli('A', ISN + 1, COOKIE + 1), 2003);
  o.sync.flush();
  assert.deepEqual(seqData(cap.datagrams)[0], [KFlag.OUT_SEQ, 0, 0, 0, 0, (DELTA + 1) >>> 0, DELTA >>> 0], 'announced on as received');
});
