import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { headerEnum, renderLayouts } from './layouts.js';
import { btfStructs, elfSection } from './btf.js';
import { FLOW_KEY, FLOW_VALUE, SLOT, STEER_KEY, STEER_VALUE, TUN_TYPE } from './layouts.gen.js';
import { TunType } from '../../core/service.js';
import { BPF_DIR } from './libbpf.js';

const root = fileURLToPath(new URL('..', BPF_DIR));
const src = (f: string) => readFileSync(new URL(`../../../../src/datapath/tun/${f}`, import.meta.url), 'utf8');

test('layouts.gen.ts is what the committed objects and bpf/ulvs_maps.h give (run npm run bpf after changing them)', () => {
  assert.equal(renderLayouts(root), src('layouts.gen.ts'));
});

test('the writers (offloader.ts, steering.ts) match the field widths they assume', () => {
  // writeKey / writeValue / steerKey / steerValue use these widths and byte orders
  assert.deepEqual(FLOW_KEY.width, { saddr: 4, daddr: 4, sport: 2, dport: 2, proto: 1, pad: 3 });
  assert.deepEqual(FLOW_VALUE.width, { addr: 4, port: 2, dir: 1, tun_type: 1, slot: 4, seq_delta: 4, kflags: 4 });
  assert.deepEqual(SLOT.width, { packets: 16, bytes: 16, last_ns: 8 });
  assert.deepEqual(STEER_KEY.width, { addr: 4, port: 2, proto: 1, side: 1 });
  assert.deepEqual(STEER_VALUE.width, { mask: 4, pad: 4 });
  // the offloader writes the engine's TunType as enum tun_type
  assert.deepEqual(TUN_TYPE, { TUN_IPIP: TunType.IPIP, TUN_GUE: TunType.GUE, TUN_GRE: TunType.GRE });
});

test('BTF and ELF readers: sections found, structs with offsets, enums parsed strictly', () => {
  const elf = readFileSync(new URL('fastpath.bpf.o', BPF_DIR));
  assert.ok(elfSection(elf, '.BTF'));
  assert.equal(elfSection(elf, '.nothing'), null);
  assert.deepEqual(btfStructs(elf).get('flow_key')?.offsets, { saddr: 0, daddr: 4, sport: 8, dport: 10, proto: 12, pad: 13 });
  assert.throws(() => btfStructs(Buffer.from('not an elf object, just text')), /not a 64-bit little-endian ELF/);
  assert.deepEqual(headerEnum('enum e { A = 0, /* x, y */ B = 7 };', 'e'), { A: 0, B: 7 });
  assert.throws(() => headerEnum('enum e { A, B };', 'e'), /must be NAME = number/);
});
