/**
 * ksetup-layout.ts's hand-written offsets against what clang lays out for bpf/ulvs_maps.h: from
 * layouts.gen.ts once a committed object carries the structs (hkprog's fastpath.bpf.o), else
 * from a throw-away object compiled here (skipped without clang). Control: a wrong offset in
 * KSVC_VALUE_LAYOUT (e.g. sched at 17) fails the deepEqual.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as gen from './layouts.gen.js';
import { btfStructs } from './btf.js';
import { KDEST_LAYOUT, KSVC_KEY_LAYOUT, KSVC_VALUE_LAYOUT, writeKdest, writeKsvcKey, writeKsvcValue } from './ksetup-layout.js';

const header = fileURLToPath(new URL('../../../../bpf/ulvs_maps.h', import.meta.url));
const mine = { ksvc_key: KSVC_KEY_LAYOUT, ksvc_value: KSVC_VALUE_LAYOUT, kdest: KDEST_LAYOUT };

function clangLayouts(): Map<string, { size: number; offsets: Record<string, number> }> | null {
  const dir = mkdtempSync(join(tmpdir(), 'hkt-layout-'));
  try {
    writeFileSync(join(dir, 't.c'), `#include <linux/types.h>\n#include "${header}"\nstruct ksvc_key a; struct ksvc_value b; struct kdest c;\n`);
    execFileSync('clang', ['-O2', '-g', '-target', 'bpf', `-I/usr/include/${process.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu`, '-c', join(dir, 't.c'), '-o', join(dir, 't.o')], { stdio: 'ignore' });
    return btfStructs(readFileSync(join(dir, 't.o')));
  } catch {
    return null;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('the kernel set-up structs: sizes and offsets as clang lays out ulvs_maps.h', (t) => {
  const g = gen as unknown as Record<string, { size: number; off: Record<string, number> } | undefined>;
  const generated = { ksvc_key: g['KSVC_KEY'], ksvc_value: g['KSVC_VALUE'], kdest: g['KDEST'] };
  const fromGen = Object.values(generated).every((x) => x !== undefined);
  const btf = fromGen ? null : clangLayouts();
  if (!fromGen && btf === null) return t.skip('no layouts.gen.ts entries and no clang');
  for (const [name, l] of Object.entries(mine)) {
    const want = fromGen ? { size: generated[name as keyof typeof generated]!.size, off: generated[name as keyof typeof generated]!.off } : { size: btf!.get(name)!.size, off: btf!.get(name)!.offsets };
    assert.deepEqual({ size: l.size, off: l.off }, want, name);
  }
});

test('the writers: network order addresses and ports, host order u32s, padding zero', () => {
  const k = Buffer.alloc(KSVC_KEY_LAYOUT.size, 0xee);
  writeKsvcKey(k, 0xcb007110 | 0, 80, 6);
  assert.equal(k.toString('hex'), 'cb00711000500600');
  const v = Buffer.alloc(KSVC_VALUE_LAYOUT.size, 0xee);
  writeKsvcValue(v, { base: 8192, size: 256, region: 1, steerMask: 0xffffff00, sched: 1, flags: 1 });
  assert.equal(v.toString('hex'), '00200000' + '00010000' + '01000000' + '00ffffff' + '0101' + '0000');
  const e = Buffer.alloc(KDEST_LAYOUT.size, 0xee);
  writeKdest(e, 0, { addr: 0xc0000201, port: 6080, dir: 5, tunType: 1, rport: 80 });
  assert.equal(e.toString('hex'), 'c0000201' + '17c0' + '05' + '01' + '0050' + '0000');
});
