/**
 * The state file (conn-state-file.ts): round trip; every kind of damage (truncation, a flipped
 * byte anywhere, another version, a record that cannot be an entry) refused whole with a
 * reason, never a partial table; the file is removed once read; batches are joined and split
 * with their template links rebased.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { HANDOVER_RECORD_SIZE, LEGACY_RECORD_SIZE, REC } from '../core/conn/handover.js';
import { concatBatches, decodeState, encodeState, splitRecords, STATE_MAGIC, STATE_VERSION, takeStateFile, writeStateFile, type RecordBatch } from './conn-state-file.js';
import { STATE_HEADER_SIZE, StateFileError, withHeader } from './state-file.js';

/** n valid records: TCP, ESTABLISHED; record 0 a template when `template` */
function records(n: number, template = false): RecordBatch {
  const buf = Buffer.alloc(n * HANDOVER_RECORD_SIZE);
  for (let i = 0; i < n; i++) {
    const o = i * HANDOVER_RECORD_SIZE;
    buf[o + REC.proto] = 6;
    buf[o + REC.state] = 1;
    buf.writeUInt16LE(template && i === 0 ? 0x02 : 0, o + REC.flags);
    buf.writeUInt32LE(0xc6336402 + i, o + REC.caddr);
    buf.writeUInt16LE(40000 + i, o + REC.cport);
    buf.writeInt32LE(template && i > 0 ? 0 : -1, o + REC.template);
    buf.writeInt32LE(i % 2 ? i : -1, o + REC.slot);
  }
  return { buf, count: n };
}

test('round trip', () => {
  const r = records(5);
  const d = decodeState(encodeState(r, 1234.5));
  assert.equal(d.count, 5);
  assert.equal(d.writtenAtMs, 1234.5);
  assert.deepEqual(Buffer.from(d.buf), r.buf);
  assert.equal(decodeState(encodeState(records(0), 0)).count, 0);
});

test('damage anywhere is refused whole, with a reason', () => {
  const good = encodeState(records(3), 1);
  const refuse = (b: Buffer, re: RegExp) => assert.throws(() => decodeState(b), (e: unknown) => e instanceof StateFileError && re.test((e as Error).message));
  refuse(good.subarray(0, 10), /shorter than the 32-byte header/);
  for (const cut of [STATE_HEADER_SIZE, good.length - 1, good.length - HANDOVER_RECORD_SIZE]) refuse(good.subarray(0, cut), /truncated/);
  refuse(Buffer.concat([good, Buffer.alloc(1)]), /padded/);
  // every single flipped byte is caught (magic, header checksum, records checksum)
  for (let i = 0; i < good.length; i++) {
    const b = Buffer.from(good);
    b[i]! ^= 0x40;
    assert.throws(() => decodeState(b), StateFileError, `byte ${i}`);
  }
  const v2 = Buffer.from(good);
  v2.writeUInt16LE(2, 8);
  v2.writeUInt32LE(crc32(v2.subarray(0, 28)), 28);
  refuse(v2, /version 2, this ulvsd reads version 1/);
  // a record that cannot be an entry, with good checksums: refused by its content
  const r = records(2);
  r.buf[HANDOVER_RECORD_SIZE + REC.proto] = 99;
  refuse(encodeState(r, 1), /record 1: protocol 99/);
});

test('takeStateFile: none, records (file removed once read), refused (removed too), never throws', () => {
  const dir = mkdtempSync(join(tmpdir(), 'h7-state-'));
  try {
    const p = join(dir, 'x.conns');
    assert.deepEqual(takeStateFile(p), { kind: 'none' });
    writeStateFile(p, records(4));
    assert.equal(existsSync(`${p}.tmp`), false, 'written under another name, then renamed');
    const t = takeStateFile(p);
    assert.equal(t.kind, 'records');
    assert.equal(t.kind === 'records' && t.count, 4);
    assert.equal(existsSync(p), false, 'used by one start only');
    writeFileSync(p, Buffer.alloc(0));
    const e = takeStateFile(p);
    assert.equal(e.kind, 'refused');
    assert.match(e.kind === 'refused' ? e.reason : '', /0 bytes/);
    assert.equal(existsSync(p), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('batches joined with their template links rebased, split by part with links kept inside a part', () => {
  const all = concatBatches([records(2, true), records(3, true)]);
  assert.equal(all.count, 5);
  assert.deepEqual([0, 1, 2, 3, 4].map((i) => all.buf.readInt32LE(i * HANDOVER_RECORD_SIZE + REC.template)), [-1, 0, -1, 2, 2]);
  // records 0,1,2 to part 0; 3,4 to part 1 (record 3's and 4's template, 2, is in part 0: dropped)
  const parts = splitRecords(all, 2, (_b, o) => (o / HANDOVER_RECORD_SIZE < 3 ? 0 : 1));
  assert.deepEqual(parts.map((p) => p.count), [3, 2]);
  assert.deepEqual([0, 1, 2].map((i) => parts[0]!.buf.readInt32LE(i * HANDOVER_RECORD_SIZE + REC.template)), [-1, 0, -1]);
  assert.deepEqual([0, 1].map((i) => parts[1]!.buf.readInt32LE(i * HANDOVER_RECORD_SIZE + REC.template)), [-1, -1]);
  assert.equal(parts[1]!.buf.readUInt16LE(REC.cport), 40000 + 1, 'record 3 is the second of the second batch');
});

test('a file of 72-byte records (written before fwmark and seq_delta) is read: reported moved to its place, fwmark and delta 0; another size is refused', () => {
  const r = records(3);
  for (let i = 0; i < 3; i++) for (let k = 0; k < 4; k++) r.buf.writeDoubleLE(100 * i + k + 0.5, i * HANDOVER_RECORD_SIZE + REC.reported + 8 * k);
  // the same records as the older build laid them out: the first 36 bytes, then reported at 40
  const legacy = Buffer.alloc(3 * LEGACY_RECORD_SIZE);
  for (let i = 0; i < 3; i++) {
    r.buf.copy(legacy, i * LEGACY_RECORD_SIZE, i * HANDOVER_RECORD_SIZE, i * HANDOVER_RECORD_SIZE + 36);
    r.buf.copy(legacy, i * LEGACY_RECORD_SIZE + 40, i * HANDOVER_RECORD_SIZE + REC.reported, (i + 1) * HANDOVER_RECORD_SIZE);
  }
  const old = withHeader({ magic: STATE_MAGIC, version: STATE_VERSION, word: LEGACY_RECORD_SIZE, count: 3 }, legacy, 7);
  const d = decodeState(old);
  assert.equal(d.count, 3);
  assert.deepEqual(Buffer.from(d.buf), r.buf, 'the widened records equal the ones written now');
  assert.equal(d.buf.readDoubleLE(2 * HANDOVER_RECORD_SIZE + REC.reported + 24), 203.5);
  // control: read as if it were in today's layout, the counters would be misplaced
  assert.notEqual(legacy.readDoubleLE(2 * LEGACY_RECORD_SIZE + REC.reported), 200.5);
  const odd = withHeader({ magic: STATE_MAGIC, version: STATE_VERSION, word: 76, count: 3 }, Buffer.alloc(3 * 76), 7);
  assert.throws(() => decodeState(odd), /record size 76, expected 80/);
});
