/** SyncRouter: records split by worker into datagrams that decode to the same records. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SyncDecoder } from '../wire/ipvs-sync/decode.js';
import type { SyncRecord } from '../wire/ipvs-sync/record.js';
import { SyncReason } from '../wire/ipvs-sync/reasons.js';
import { REFERENCE_VECTOR, V0_TWO, V1_FOUR } from '../../test/support/sync-vectors.js';
import { SyncRouter } from './sync-router.js';

/** Every record of a datagram as a comparable string (fields the backup applies). */
function records(b: Uint8Array): string[] {
  const out: string[] = [];
  const d = new SyncDecoder();
  const code = d.decode(b, 0, b.length, 0, (r: SyncRecord) => {
    out.push(`${r.protocol} ${r.caddr}:${r.cport} ${r.vaddr}:${r.vport} ${r.daddr}:${r.dport} f${r.flags} s${r.state} t${r.timeout} seq${r.hasSeq ? r.inSeqInit : '-'} pe${r.peDataLen}`);
    return true;
  });
  assert.equal(code, SyncReason.Ok);
  return out;
}

for (const [name, v] of [['v1 (padding, options)', V1_FOUR], ['v0 (sequence block)', V0_TWO]] as const) {
  test(`${name}: each record reaches the worker chosen for it, byte-exact, and nothing else does`, () => {
    const all = records(v.bytes);
    // worker = client port parity (a stand-in for the steering; the real one is queueOf)
    const r = new SyncRouter(2, (_p, _c, cport) => cport & 1);
    const out = r.route(v.bytes, v.bytes.length, v.syncid);
    assert.equal(r.last, SyncReason.Ok);
    const got = out.map((g) => (g ? records(g) : []));
    const want = [0, 1].map((w) => all.filter((s) => (Number(/:(\d+) /.exec(s)![1]) & 1) === w));
    assert.deepEqual(got, want);
    assert.deepEqual(r.routed, want.map((x) => x.length));
    // one worker: every record the decoder takes, in order
    const one = new SyncRouter(1, () => assert.fail('not asked with one worker'));
    assert.deepEqual(records(one.route(v.bytes, v.bytes.length, 0)[0]!), all);
  });
}

test('a datagram whose records are all taken is rebuilt byte for byte (v1 with padding before a record, v0)', () => {
  const r = new SyncRouter(1, () => 0);
  for (const b of [REFERENCE_VECTOR.bytes, V0_TWO.bytes, V1_FOUR.bytes.subarray(0, 142)]) {
    const m = Buffer.from(b);
    if (m.length === 142) {
      m.writeUInt16BE(142, 2); // the first three records of V1_FOUR (the 4th, with PE data, is skipped)
      m[4] = 3;
    }
    assert.deepEqual(Buffer.from(r.route(m, m.length, 0)[0]!), m);
  }
  assert.ok(V1_FOUR.bytes.length > 142, 'the 4th record (PE data, no engine) is left out of the rebuilt datagram');
});

test('hostile datagrams: dropped by reason, nothing routed, never a throw; records before a fault are kept', () => {
  const r = new SyncRouter(3, () => 2);
  assert.deepEqual(r.route(new Uint8Array(2), 2, 0), [null, null, null]);
  assert.equal(r.last, SyncReason.DropTooShort);
  const wrongSize = Buffer.from(V1_FOUR.bytes);
  wrongSize[3]! ^= 1;
  r.route(wrongSize, wrongSize.length, 0);
  assert.equal(r.last, SyncReason.DropSizeMismatch);
  r.route(V1_FOUR.bytes, V1_FOUR.bytes.length, 99);
  assert.equal(r.last, SyncReason.DropSyncId);
  // the 4th record's length runs past the end: the first three still routed
  const cut = Buffer.from(V1_FOUR.bytes);
  cut.writeUInt16BE(0x0fff, 144 + 2);
  const out = r.route(cut, cut.length, 0);
  assert.equal(r.last, SyncReason.DropRecordPastEnd);
  assert.equal(records(out[2]!).length, 3);
  const c = r.counters();
  assert.deepEqual([c['DropTooShort'], c['DropSizeMismatch'], c['DropSyncId'], c['DropRecordPastEnd'], c['RecordsRouted']], [1, 1, 1, 1, 3]);
  for (let i = 0; i < 2000; i++) {
    const m = Buffer.from(V1_FOUR.bytes);
    m[(i * 7919) % m.length] = (i * 31) & 0xff;
    r.route(m, m.length - (i % 5), 0);
  }
});
