import { test } from 'node:test';
import assert from 'node:assert/strict';
import { hsiphashU32 } from './hsiphash.js';
import { hsiphashRef, sipHashRef } from '../../test/support/siphash-ref.js';
import { Prng } from '../../test/support/prng.js';

test('the BigInt reference reproduces the official SipHash-2-4 vectors', () => {
  const k0 = 0x0706050403020100n;
  const k1 = 0x0f0e0d0c0b0a0908n;
  const m = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);
  assert.equal(sipHashRef(2, 4, k0, k1, m(0)), 0x726fdb47dd0e0e31n);
  assert.equal(sipHashRef(2, 4, k0, k1, m(1)), 0x74f839c593dc67fdn);
  assert.equal(sipHashRef(2, 4, k0, k1, m(4)), 0xcf2794e0277187b7n);
  assert.equal(sipHashRef(2, 4, k0, k1, m(8)), 0x93f5f5799a932462n);
});

test('hsiphashU32 (32-bit halves, no allocation) equals the reference on 20,000 random inputs', () => {
  const r = new Prng(77);
  for (let i = 0; i < 20000; i++) {
    const v = r.u32();
    const k0h = r.int(4) === 0 ? 0 : r.u32();
    const k0l = r.u32();
    const k1h = r.int(4) === 0 ? 0 : r.u32();
    const k1l = r.u32();
    const want = hsiphashRef(v, (BigInt(k0h) << 32n) | BigInt(k0l), (BigInt(k1h) << 32n) | BigInt(k1l));
    assert.equal(hsiphashU32(v, { k0h, k0l, k1h, k1l }), want, `v=${v}`);
  }
});
