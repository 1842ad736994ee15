/**
 * The sync codec against hand-written datagrams (test/support/sync-vectors.ts): ulvs's encoder
 * produces exactly those bytes, and the decoder reads exactly those fields back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatIPv4, formatIPv6 } from '../addr.js';
import { SyncDecoder } from './decode.js';
import { readV1Record } from './decode-v1.js';
import { Append, SyncMessageWriter } from './message-writer.js';
import { syncMaxlen } from './maxlen.js';
import { SyncRecord } from './record.js';
import { SyncReason } from './reasons.js';
import { REFERENCE_VECTOR, recordOf, V0_TWO, V1_FOUR, V1_IPV6, type RecordFields } from '../../../test/support/sync-vectors.js';

/** The fields of r in the vectors' form. */
export function fieldsOf(r: SyncRecord): RecordFields {
  const f: RecordFields = {
    af: r.af as 4 | 6,
    protocol: r.protocol,
    flags: r.flags,
    state: r.state,
    cport: r.cport,
    vport: r.vport,
    dport: r.dport,
    fwmark: r.fwmark,
    timeout: r.timeout,
    caddr: r.af === 4 ? formatIPv4(r.caddr) : formatIPv6(r.caddr6),
    vaddr: r.af === 4 ? formatIPv4(r.vaddr) : formatIPv6(r.vaddr6),
    daddr: r.af === 4 ? formatIPv4(r.daddr) : formatIPv6(r.daddr6),
  };
  if (r.hasSeq) f.seq = [r.inSeqInit, r.inSeqDelta, r.inSeqPrevDelta, r.outSeqInit, r.outSeqDelta, r.outSeqPrevDelta];
  if (r.peDataLen > 0) f.peData = Buffer.from(r.peDataBuf!.subarray(r.peDataOff, r.peDataOff + r.peDataLen)).toString('latin1');
  if (r.peNameLen > 0) f.peName = Buffer.from(r.peNameBuf!.subarray(r.peNameOff, r.peNameOff + r.peNameLen)).toString('latin1');
  return f;
}

function encode(version: number, syncid: number, records: RecordFields[], maxlen = 1472): Buffer {
  const w = new SyncMessageWriter(maxlen);
  w.reset(version, syncid);
  for (const f of records) assert.equal(w.append(recordOf(f)), Append.Ok);
  return Buffer.from(w.bytes.subarray(0, w.length));
}

/** Decode, collecting every record the visitor sees. */
function decodeAll(b: Uint8Array, own = 0): { code: number; seen: RecordFields[]; d: SyncDecoder } {
  const d = new SyncDecoder();
  const seen: RecordFields[] = [];
  const code = d.decode(b, 0, b.length, own, (r) => (seen.push(fieldsOf(r)), true));
  return { code, seen, d };
}

test('v1: the encoder writes the hand-built four-record datagram byte for byte (padding before record 4 only)', () => {
  assert.equal(encode(1, V1_FOUR.syncid, V1_FOUR.records).toString('hex'), V1_FOUR.bytes.toString('hex'));
});

test('v1: the decoder reads the four records back; the one with PE data is left out (no persistence engine)', () => {
  const { code, seen, d } = decodeAll(V1_FOUR.bytes);
  assert.equal(code, SyncReason.Ok);
  assert.equal(d.version, 1);
  assert.equal(d.syncid, 7);
  assert.equal(d.nrConns, 4);
  assert.deepEqual(seen, V1_FOUR.records.slice(0, 3));
  assert.equal(d.taken, 3);
  assert.equal(d.skipped, 1);
  assert.equal(d.counters[SyncReason.SkipPeUnavailable], 1);
  // record 4 itself, read directly: every field including the PE option
  const r = new SyncRecord();
  assert.equal(readV1Record(V1_FOUR.bytes, 144, 190, r), SyncReason.SkipPeUnavailable);
  assert.deepEqual(fieldsOf(r), V1_FOUR.records[3]);
  assert.equal(r.connFlags, 0x20, 'flags & BACKUP_MASK | SYNC');
});

test('v1: the backup flags are (flags & 0x1F87) | SYNC', () => {
  const r = new SyncRecord();
  assert.equal(readV1Record(V1_FOUR.bytes, 80, 142, r), SyncReason.Ok);
  assert.equal(r.connFlags, 0x06a3);
  const b = Buffer.from(V1_FOUR.bytes);
  b.writeUInt32BE(0xffffffff, 12); // record 1 flags: everything
  assert.equal(readV1Record(b, 8, 44, r), SyncReason.Ok);
  assert.equal(r.connFlags, 0x1fa7);
});

test('v1: IPv6 record both ways', () => {
  assert.equal(encode(1, 0, V1_IPV6.records).toString('hex'), V1_IPV6.bytes.toString('hex'));
  const { code, seen } = decodeAll(V1_IPV6.bytes);
  assert.equal(code, SyncReason.Ok);
  assert.deepEqual(seen, V1_IPV6.records);
});

test('v0: both ways, sequence block in host (little-endian) order, no timeout', () => {
  assert.equal(encode(0, V0_TWO.syncid, V0_TWO.records).toString('hex'), V0_TWO.bytes.toString('hex'));
  const { code, seen, d } = decodeAll(V0_TWO.bytes);
  assert.equal(code, SyncReason.Ok);
  assert.equal(d.version, 0);
  assert.deepEqual(seen, V0_TWO.records);
});

test('the reference vector of ha-scaleout.md §1.13 both ways', () => {
  assert.equal(encode(1, REFERENCE_VECTOR.syncid, REFERENCE_VECTOR.records).toString('hex'), REFERENCE_VECTOR.bytes.toString('hex'));
  assert.deepEqual(decodeAll(REFERENCE_VECTOR.bytes).seen, REFERENCE_VECTOR.records);
});

test('syncid filter: 0 accepts all, another id ignores the message', () => {
  assert.equal(decodeAll(V1_FOUR.bytes, 7).code, SyncReason.Ok);
  assert.equal(decodeAll(V1_FOUR.bytes, 0).code, SyncReason.Ok);
  const other = decodeAll(V1_FOUR.bytes, 8);
  assert.equal(other.code, SyncReason.DropSyncId);
  assert.equal(other.seen.length, 0);
});

test('writer: maxlen splits messages; a record larger than maxlen still goes alone; 255 records at most', () => {
  const f = V1_FOUR.records[0]!;
  const w = new SyncMessageWriter(8 + 36 * 2);
  w.reset(1, 1);
  const r = recordOf(f);
  assert.equal(w.append(r), Append.Ok);
  assert.equal(w.append(r), Append.Ok);
  assert.equal(w.append(r), Append.Full);
  assert.equal(w.length, 80);
  const tiny = new SyncMessageWriter(1);
  tiny.reset(1, 1);
  assert.equal(tiny.append(r), Append.Ok);
  assert.equal(tiny.append(r), Append.Full);
  assert.equal(tiny.length, 44);
  const big = new SyncMessageWriter(65535 - 28);
  big.reset(1, 1);
  let n = 0;
  while (big.append(r) === Append.Ok) n++;
  assert.equal(n, 255);
  const { code, d } = decodeAll(big.bytes.subarray(0, big.length));
  assert.equal(code, SyncReason.Ok);
  assert.equal(d.taken, 255);
});

test('writer: v0 refuses IPv6; v1 refuses PE data over 255 bytes', () => {
  const w = new SyncMessageWriter(1472);
  w.reset(0, 1);
  assert.equal(w.append(recordOf(V1_IPV6.records[0]!)), Append.Unencodable);
  w.reset(1, 1);
  const r = recordOf(V1_FOUR.records[3]!);
  r.peDataBuf = new Uint8Array(300);
  r.peDataLen = 256;
  assert.equal(w.append(r), Append.Unencodable);
  assert.equal(w.count, 0);
});

test('sync_maxlen as start_sync_thread sets it', () => {
  assert.equal(syncMaxlen('master', 0, 9000), 1472, 'a master never goes above 1500');
  assert.equal(syncMaxlen('master', 0, 1280), 1472);
  assert.equal(syncMaxlen('master', 0, 1500, true), 1452);
  assert.equal(syncMaxlen('backup', 0, 9000), 8972);
  assert.equal(syncMaxlen('backup', 0, 1280), 1472, 'a backup reads at least 1500 - 28');
  assert.equal(syncMaxlen('backup', 0, 70000), 65507);
  assert.equal(syncMaxlen('master', 1, 1500), 1);
  assert.equal(syncMaxlen('backup', 100, 1500), 1024);
  assert.equal(syncMaxlen('master', 70000, 1500), 65507);
  assert.equal(syncMaxlen('master', 70000, 1500, true), 65487);
});
