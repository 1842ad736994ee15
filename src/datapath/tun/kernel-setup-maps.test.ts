import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_ALIVE_MS, kernelSetupMaxEntries, kernelSetupSizes } from './kernel-setup-maps.js';
import { newKReport, readKReport } from './kernel-ring.js';
import { KREPORT, KSETUP_LIMITS } from './layouts.gen.js';

test('kernel set-up sizes: defaults (half the workers\' slots, no workers, 1 MiB rings, KSVC_MAX_DEFAULT services)', () => {
  assert.deepEqual(kernelSetupSizes(1001, {}), { kernelSlots: 500, workers: 0, ringBytes: 1 << 20, services: KSETUP_LIMITS.KSVC_MAX_DEFAULT, aliveMs: DEFAULT_ALIVE_MS });
  assert.deepEqual(kernelSetupMaxEntries(kernelSetupSizes(8, { kernelSlots: 0, services: 3 })), { ulvs_ksvcs: 3, ulvs_ktab: 3 * 2 * KSETUP_LIMITS.KTAB_REGION, ulvs_kcursor: 3, ulvs_kslot_free: 1 });
});

test('kernel set-up sizes: bad values are refused with the option named (nothing is created before this check)', () => {
  const bad: [object, RegExp][] = [
    [{ kernelSlots: -1 }, /kernelSlots/],
    [{ kernelSlots: 1.5 }, /kernelSlots/],
    [{ workers: KSETUP_LIMITS.KWORKERS_MAX + 1 }, /workers must be 0\.\.8/],
    [{ ringBytes: 3 * 4096 }, /ringBytes must be a power of two/],
    [{ ringBytes: 2048 }, /ringBytes/],
    [{ services: 0 }, /services/],
    [{ aliveMs: -1 }, /aliveMs must be 0\.\.3600000/],
    [{ aliveMs: 0.5 }, /aliveMs/],
  ];
  for (const [o, re] of bad) assert.throws(() => kernelSetupSizes(8, o), re, JSON.stringify(o));
  // control: the edges that are fine
  assert.doesNotThrow(() => kernelSetupSizes(8, { workers: KSETUP_LIMITS.KWORKERS_MAX, ringBytes: 4096, kernelSlots: 0, services: 1 }));
});

test('struct kreport decoded field by field (network order addresses and ports, as int32 like the engine keeps them; host order the rest); short records refused', () => {
  const b = Buffer.alloc(8 + KREPORT.size);
  const o = 8, f = KREPORT.off;
  b.writeUInt32BE(0xc6336402, o + f.caddr);
  b.writeUInt32BE(0xcb00710a, o + f.vaddr);
  b.writeUInt32BE(0xc000020b, o + f.raddr);
  b.writeUInt16BE(40000, o + f.cport);
  b.writeUInt16BE(80, o + f.vport);
  b.writeUInt16BE(8080, o + f.rport);
  b[o + f.proto] = 6;
  b[o + f.kind] = 2;
  b[o + f.tcp_flags] = 0x11;
  b[o + f.reply] = 1;
  b[o + f.dir] = 3;
  b.writeUInt32LE(123456, o + f.slot);
  b.writeUInt32LE(1500, o + f.ip_len);
  b.writeUInt32LE(4, o + f.gso_segs);
  b.writeBigUInt64LE(0x12345_6789abcdn, o + f.ns);
  const r = newKReport();
  assert.equal(readKReport(b, o, KREPORT.size, r), true);
  assert.deepEqual(r, { caddr: 0xc6336402 | 0, vaddr: 0xcb00710a | 0, raddr: 0xc000020b | 0, cport: 40000, vport: 80, rport: 8080, proto: 6, kind: 2, tcp_flags: 0x11, reply: 1, dir: 3, slot: 123456, ip_len: 1500, gso_segs: 4, ns: 0x123456789abcd });
  assert.equal(readKReport(b, o, KREPORT.size - 1, newKReport()), false);
});
