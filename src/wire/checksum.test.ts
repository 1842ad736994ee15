import { test } from 'node:test';
import assert from 'node:assert/strict';
import { csumReplace16, csumReplace32, csumReplaceAddrPort, finish, fold, partialReplace32, pseudoHeaderV4, sumBytes } from './checksum.js';
import { Prng } from '../../test/support/prng.js';
import { slowChecksum, slowL4Checksum, slowSum } from '../../test/support/slow-checksum.js';

test('sumBytes/finish agree with the slow reference on 5,000 random buffers (odd lengths too)', () => {
  const r = new Prng(1);
  for (let i = 0; i < 5000; i++) {
    const len = r.int(1600);
    const b = r.bytes(len);
    assert.equal(finish(sumBytes(b, 0, len, 0)), slowChecksum(b), `len ${len}`);
  }
});

test('sumBytes honours offset and initial value', () => {
  const r = new Prng(2);
  for (let i = 0; i < 500; i++) {
    const b = r.bytes(300);
    const off = r.int(100);
    const len = r.int(200);
    const init = r.int(0x10000);
    const expect = slowSum(Uint8Array.from([init >> 8, init & 255, ...b.subarray(off, off + len)]));
    assert.equal(fold(sumBytes(b, off, len, init)) % 0xffff, expect % 0xffff);
  }
});

test('a known vector: RFC 1071 example words 0001 f203 f4f5 f6f7 sum to 0xddf2', () => {
  const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
  assert.equal(fold(sumBytes(b, 0, 8, 0)), 0xddf2);
  assert.equal(finish(sumBytes(b, 0, 8, 0)), 0x220d);
});

test('fold handles sums far above 32 bits', () => {
  assert.equal(fold(0xffff * 100000), 0xffff);
  assert.equal(fold(0x1_0000_0000), 1);
});

test('incremental updates (RFC 1624) equal a full recompute on random data', () => {
  const r = new Prng(3);
  for (let i = 0; i < 20000; i++) {
    const len = 8 + 2 * r.int(40);
    const b = r.bytes(len);
    b[0] = 0;
    b[1] = 0; // checksum field at 0..1
    const c0 = finish(sumBytes(b, 0, len, 0));
    b[0] = c0 >> 8;
    b[1] = c0 & 255;
    const kind = r.int(3);
    const at = 2 + 2 * r.int((len - 6) / 2);
    let c1: number;
    if (kind === 0) {
      const old = (b[at]! << 8) | b[at + 1]!;
      const nw = r.int(0x10000);
      b[at] = nw >> 8;
      b[at + 1] = nw & 255;
      c1 = csumReplace16(c0, old, nw);
    } else if (kind === 1) {
      const old = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
      const nw = r.u32();
      b.writeUInt32BE(nw, at);
      c1 = csumReplace32(c0, old, nw);
    } else {
      const oldA = b.readUInt32BE(2);
      const oldP = b.readUInt16BE(6);
      const newA = r.u32();
      const newP = r.int(0x10000);
      b.writeUInt32BE(newA, 2);
      b.writeUInt16BE(newP, 6);
      c1 = csumReplaceAddrPort(c0, oldA, newA, oldP, newP);
    }
    b[0] = c1 >> 8;
    b[1] = c1 & 255;
    // The packet must verify: the sum including the checksum folds to 0xffff.
    assert.equal(slowSum(b), 0xffff, `case ${i} kind ${kind}`);
  }
});

test('partial (NEEDS_CSUM) pseudo-header update equals the partial computed for the new address', () => {
  const r = new Prng(4);
  for (let i = 0; i < 5000; i++) {
    const src = r.u32();
    const dst = r.u32();
    const ndst = r.u32();
    const len = r.int(65536);
    const p0 = fold(pseudoHeaderV4(src, dst, 6, len));
    const p1 = partialReplace32(p0, dst, ndst);
    const want = fold(pseudoHeaderV4(src, ndst, 6, len));
    assert.equal(p1 % 0xffff, want % 0xffff);
  }
});

test('slow L4 reference agrees with sumBytes+pseudo header', () => {
  const r = new Prng(5);
  for (let i = 0; i < 500; i++) {
    const seg = r.bytes(20 + r.int(100));
    const src = r.u32();
    const dst = r.u32();
    assert.equal(finish(sumBytes(seg, 0, seg.length, pseudoHeaderV4(src, dst, 17, seg.length))), slowL4Checksum(src, dst, 17, seg));
  }
});
