/**
 * Hostile sync datagrams, each with the verdict ip_vs_process_message gives it: a message code
 * (the rest dropped, records before the fault kept) or a record code (one record left out), and
 * how many records reached the visitor. Then 200,000 random mutations of valid datagrams: the
 * decoder never throws and never hands over a record that reaches outside the datagram.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SyncDecoder } from './decode.js';
import { SyncReason, SYNC_REASON_NAMES } from './reasons.js';
import { hex, REFERENCE_VECTOR, V0_TWO, V1_FOUR, V1_IPV6 } from '../../../test/support/sync-vectors.js';
import { Prng } from '../../../test/support/prng.js';

/** A copy of b with edits applied; `size: true` rewrites the header's size to the new length. */
function edit(b: Buffer, f: (c: Buffer) => Buffer | void, fixSize = false): Buffer {
  let c: Buffer = Buffer.from(b);
  c = f(c) ?? c;
  if (fixSize) c.writeUInt16BE(c.length, 2);
  return c;
}

/** A v1 message with one IPv4 record (the §1.13 connection) followed by these option bytes. */
function withOptions(opts: string): Buffer {
  const o = hex(opts);
  const rec = Buffer.concat([REFERENCE_VECTOR.bytes.subarray(8), o]);
  rec.writeUInt16BE(rec.length, 2);
  const m = Buffer.concat([REFERENCE_VECTOR.bytes.subarray(0, 8), rec]);
  m.writeUInt16BE(m.length, 2);
  return m;
}

const SEQ = '01 18 ' + '00'.repeat(24);

interface Case {
  name: string;
  bytes: Buffer;
  own?: number;
  code: number;
  taken: number;
  skip?: number;
}

const R = SyncReason;
const CASES: Case[] = [
  { name: 'shorter than a v0 header', bytes: V1_FOUR.bytes.subarray(0, 3), code: R.DropTooShort, taken: 0 },
  { name: 'empty datagram', bytes: Buffer.alloc(0), code: R.DropTooShort, taken: 0 },
  { name: 'size field one more than the datagram', bytes: edit(V1_FOUR.bytes, (c) => void c.writeUInt16BE(191, 2)), code: R.DropSizeMismatch, taken: 0 },
  { name: 'datagram cut short (size says 190)', bytes: V1_FOUR.bytes.subarray(0, 189), code: R.DropSizeMismatch, taken: 0 },
  { name: 'another syncid', bytes: V1_FOUR.bytes, own: 9, code: R.DropSyncId, taken: 0 },
  { name: 'nr_conns counts past the end (5 of 4)', bytes: edit(V1_FOUR.bytes, (c) => void (c[4] = 5)), code: R.DropRecordTruncated, taken: 3, skip: R.SkipPeUnavailable },
  { name: 'nr_conns 255 on a one-record message', bytes: edit(REFERENCE_VECTOR.bytes, (c) => void (c[4] = 255)), code: R.DropRecordTruncated, taken: 1 },
  { name: 'record 2 length runs past the datagram', bytes: edit(V1_FOUR.bytes, (c) => void c.writeUInt16BE(0x0fff, 46)), code: R.DropRecordPastEnd, taken: 1 },
  { name: 'record 2 version nibble 1', bytes: edit(V1_FOUR.bytes, (c) => void c.writeUInt16BE(0x1024, 46)), code: R.DropRecordVersion, taken: 1 },
  { name: 'record 1 type 2 (not IPv4, no IPv6 bit)', bytes: edit(V1_FOUR.bytes, (c) => void (c[8] = 2)), code: R.DropRecordType, taken: 0 },
  { name: 'record 1 type 3 (IPv6) but only 36 bytes long', bytes: edit(V1_FOUR.bytes, (c) => void (c[8] = 3)), code: R.DropFixedPastRecord, taken: 0 },
  { name: 'record 1 length 20 (< 36)', bytes: edit(V1_FOUR.bytes, (c) => void c.writeUInt16BE(20, 10)), code: R.DropFixedPastRecord, taken: 0 },
  { name: 'record 3 length ends 1 byte into its option header', bytes: edit(V1_FOUR.bytes, (c) => void c.writeUInt16BE(37, 82)), code: R.DropOptionTruncated, taken: 2 },
  { name: 'option length 0', bytes: edit(V1_FOUR.bytes, (c) => void (c[117] = 0)), code: R.DropOptionLength, taken: 2 },
  { name: 'option data past the record (len 25)', bytes: edit(V1_FOUR.bytes, (c) => void (c[117] = 25)), code: R.DropOptionLength, taken: 2 },
  { name: 'SEQ_DATA of 23 bytes', bytes: withOptions('01 17 ' + '00'.repeat(23)), code: R.DropSeqOption, taken: 0 },
  { name: 'SEQ_DATA twice', bytes: withOptions(SEQ + SEQ), code: R.DropSeqOption, taken: 0 },
  { name: 'PE_DATA twice', bytes: withOptions('02 01 aa 02 01 bb'), code: R.DropPeDataOption, taken: 0 },
  { name: 'PE_NAME of 17 bytes', bytes: withOptions('02 01 aa 03 11 ' + '73'.repeat(17)), code: R.DropPeNameOption, taken: 0 },
  { name: 'PE_NAME twice', bytes: withOptions('03 01 73 03 01 73'), code: R.DropPeNameOption, taken: 0 },
  { name: 'unknown mandatory option 9: record left out', bytes: withOptions('09 02 0000'), code: R.Ok, taken: 0, skip: R.SkipUnknownMandatoryOption },
  { name: 'unknown mandatory option stops parsing: a bad option after it drops nothing', bytes: withOptions('09 01 00 01 00'), code: R.Ok, taken: 0, skip: R.SkipUnknownMandatoryOption },
  { name: 'unknown optional option 0x49 is stepped over', bytes: withOptions('49 03 000000'), code: R.Ok, taken: 1 },
  { name: '0x41 is SEQ_DATA with the parameter bit', bytes: withOptions('41 18 ' + '00'.repeat(24)), code: R.Ok, taken: 1 },
  { name: 'PE_NAME without PE_DATA is accepted (name ignored)', bytes: withOptions('03 03 736970'), code: R.Ok, taken: 1 },
  { name: 'PE_DATA without PE_NAME: record left out', bytes: withOptions('02 01 aa'), code: R.Ok, taken: 0, skip: R.SkipPeUnavailable },
  { name: 'unknown protocol 99: one record left out, the rest read', bytes: edit(V1_FOUR.bytes, (c) => void (c[9] = 99)), code: R.Ok, taken: 2, skip: R.SkipUnknownProtocol },
  { name: 'a template of protocol 99 is accepted (no protocol check)', bytes: edit(V1_FOUR.bytes, (c) => void (c[45] = 99)), code: R.Ok, taken: 3, skip: R.SkipPeUnavailable },
  { name: 'TCP state 11', bytes: edit(V1_FOUR.bytes, (c) => void c.writeUInt16BE(11, 16)), code: R.Ok, taken: 2, skip: R.SkipBadState },
  { name: 'template state 2', bytes: edit(V1_FOUR.bytes, (c) => void c.writeUInt16BE(2, 52)), code: R.Ok, taken: 2, skip: R.SkipBadState },
  { name: 'UDP state 1', bytes: edit(withOptions(''), (c) => void ((c[9] = 17), c.writeUInt16BE(1, 16))), code: R.Ok, taken: 0, skip: R.SkipBadState },
  { name: 'SCTP state 13 is valid to the decoder', bytes: edit(withOptions(''), (c) => void ((c[9] = 132), c.writeUInt16BE(13, 16))), code: R.Ok, taken: 1 },
  { name: 'IPv6 record with type 0xff (other bits not looked at)', bytes: edit(V1_IPV6.bytes, (c) => void (c[8] = 0xff)), code: R.Ok, taken: 1 },
  { name: 'spare != 0: read as v0, whose nr_conns (reserved byte) is 0', bytes: edit(V1_FOUR.bytes, (c) => void (c[7] = 1)), code: R.Ok, taken: 0 },
  { name: 'version 2: read as v0', bytes: edit(V1_FOUR.bytes, (c) => void (c[5] = 2)), code: R.Ok, taken: 0 },
  { name: 'bytes after the last counted record are ignored', bytes: edit(REFERENCE_VECTOR.bytes, (c) => Buffer.concat([c, Buffer.alloc(7, 0xee)]), true), code: R.Ok, taken: 1 },
  { name: 'v1 with 0 records', bytes: hex('00 01 0008 00 01 0000'), code: R.Ok, taken: 0 },
  { name: 'v0: nr_conns 3 of 2', bytes: edit(V0_TWO.bytes, (c) => void (c[0] = 3)), code: R.DropV0Truncated, taken: 2 },
  { name: 'v0: sequence block cut off', bytes: edit(V0_TWO.bytes, (c) => c.subarray(0, 60), true), code: R.DropV0SeqTruncated, taken: 1 },
  { name: 'v0: unknown protocol left out', bytes: edit(V0_TWO.bytes, (c) => void (c[5] = 99)), code: R.Ok, taken: 1, skip: R.SkipUnknownProtocol },
  { name: 'v0: TCP state 200 left out', bytes: edit(V0_TWO.bytes, (c) => void c.writeUInt16BE(200, 26)), code: R.Ok, taken: 1, skip: R.SkipBadState },
  { name: 'v0 header alone, nr_conns 1', bytes: hex('01 00 0004'), code: R.DropV0Truncated, taken: 0 },
];

for (const c of CASES) {
  test(`hostile: ${c.name} -> ${SYNC_REASON_NAMES[c.code]}, ${c.taken} taken`, () => {
    const d = new SyncDecoder();
    let seen = 0;
    const code = d.decode(c.bytes, 0, c.bytes.length, c.own ?? 0, () => (seen++, true));
    assert.equal(SYNC_REASON_NAMES[code], SYNC_REASON_NAMES[c.code]);
    assert.equal(seen, c.taken);
    assert.equal(d.taken, c.taken);
    assert.equal(d.counters[c.code], 1, 'the message is counted under its code');
    if (c.skip !== undefined) assert.ok(d.counters[c.skip]! >= 1, `skip ${SYNC_REASON_NAMES[c.skip]} counted`);
    else assert.equal(d.skipped, 0);
  });
}

test('a visitor refusing a record is counted as SkipByVisitor, the next record is still read', () => {
  const d = new SyncDecoder();
  let n = 0;
  assert.equal(d.decode(V1_FOUR.bytes, 0, 190, 0, () => n++ !== 0), SyncReason.Ok);
  assert.equal(d.taken, 2);
  assert.equal(d.counters[SyncReason.SkipByVisitor], 1);
});

test('decoding at an offset inside a larger buffer reads only [off, off+len)', () => {
  const big = Buffer.concat([Buffer.alloc(5, 0xaa), V1_FOUR.bytes, Buffer.alloc(9, 0xbb)]);
  const d = new SyncDecoder();
  assert.equal(d.decode(big, 5, 190, 0, () => true), SyncReason.Ok);
  assert.equal(d.taken, 3);
  assert.equal(d.decode(big, 5, 195, 0, () => true), SyncReason.DropSizeMismatch);
  assert.equal(d.decode(big, 200, 10, 0, () => true), SyncReason.DropTooShort, 'a window past the buffer');
});

const FUZZ = Number(process.env['ULVS_SYNC_FUZZ'] ?? 200_000);

test(`fuzz: ${FUZZ} mutated datagrams never throw and never yield a record outside the datagram`, () => {
  const rng = new Prng(0x5eed5);
  const seeds = [V1_FOUR.bytes, V1_IPV6.bytes, V0_TWO.bytes, REFERENCE_VECTOR.bytes, withOptions(SEQ + '02 03 616263 03 03 736970')];
  const d = new SyncDecoder();
  let off = 0;
  let len = 0;
  let bad = 0;
  const visit = (r: { offset: number; size: number }): boolean => {
    if (r.offset < off || r.size <= 0 || r.offset + r.size > off + len) bad++;
    return rng.int(8) !== 0;
  };
  const byCode = new Float64Array(SYNC_REASON_NAMES.length);
  for (let i = 0; i < FUZZ; i++) {
    const s = rng.pick(seeds);
    let m = Buffer.from(s);
    const kind = rng.int(6);
    if (kind === 0) m = m.subarray(0, rng.int(m.length + 1));
    else if (kind === 1) m = Buffer.concat([m, rng.bytes(rng.int(64))]);
    const flips = 1 + rng.int(6);
    for (let k = 0; k < flips && m.length > 0; k++) m[rng.int(m.length)] = kind === 2 ? rng.pick([0, 1, 0x40, 0xff]) : rng.u32() & 0xff;
    if (rng.int(5) !== 0 && m.length >= 4) m.writeUInt16BE(m.length & 0xffff, 2);
    // sometimes inside a bigger buffer
    off = rng.int(3) === 0 ? rng.int(16) : 0;
    const host = off === 0 ? m : Buffer.concat([rng.bytes(off), m, rng.bytes(rng.int(16))]);
    len = m.length;
    const code = d.decode(host, off, len, rng.int(4) === 0 ? rng.int(256) : 0, visit);
    byCode[code]!++;
    assert.ok(d.taken + d.skipped <= d.nrConns, 'never more records than announced');
  }
  assert.equal(bad, 0);
  // the mutations reach every verdict (a weak generator would only ever hit the size check)
  const reached = SYNC_REASON_NAMES.filter((_, i) => byCode[i]! > 0 || d.counters[i]! > 0);
  assert.equal(reached.length, SYNC_REASON_NAMES.length, `verdicts reached: ${reached.join(', ')}`);
});
