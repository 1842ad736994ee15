/**
 * The carry-over file (carry-file.ts): round trip; damage anywhere (a flipped byte, truncation,
 * another version, JSON that is not a carry) refused whole with a reason; removed once read.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { EngineCarry } from '../core/carry-over.js';
import { decodeCarry, encodeCarry, takeCarryFile, writeCarryFile } from './carry-file.js';
import { StateFileError } from './state-file.js';

const stats = (n: number) => ({ c: [n, 2 * n, 3 * n, 40 * n, 50 * n], last: [n, 2 * n, 3 * n, 40 * n, 50 * n], est: [512 * n, 0, 1, 2, 3] });
const carry = (): EngineCarry => ({
  totals: stats(9),
  services: [{ proto: 6, addr: 0xcb00710a, port: 80, stats: stats(9), dests: [{ addr: 0xc000020b, port: 8080, stats: stats(4) }], cursor: { scheduler: 'rr', server: { addr: 0xc000020b, port: 8080 }, weight: 0 } }],
  counters: { forward: 12, drop_no_conn: 1 },
});

const fileBody = (c = carry()) => ({ carry: c, health: {} });

/** `c` as a file whose header and checksums are right, whatever its body */
const withBody = (body: string, version = 1): Buffer => {
  const b = encodeCarry(fileBody(), 1);
  const json = Buffer.from(body);
  const h = Buffer.from(b.subarray(0, 32));
  h.writeUInt16LE(version, 8);
  h.writeUInt32LE(json.length, 12);
  h.writeUInt32LE(crc32(json), 16);
  h.writeUInt32LE(crc32(h.subarray(0, 28)), 28);
  return Buffer.concat([h, json]);
};
const refuse = (b: Buffer, re: RegExp) => assert.throws(() => decodeCarry(b), (e: unknown) => e instanceof StateFileError && re.test((e as Error).message), re.source);

test('round trip', () => {
  const d = decodeCarry(encodeCarry(fileBody(), 1234.5));
  assert.deepEqual(d.carry, carry());
  assert.deepEqual(d.health, {});
  const h = { '6/1/80>2/8080': { alive: true, reason: 'TCP_CHECK: ok' }, '6/1/80>3/8080': { alive: false, reason: 'alpha', dynamicWeight: 3 } };
  assert.deepEqual(decodeCarry(encodeCarry({ carry: carry(), health: h }, 1)).health, h);
  assert.equal(d.writtenAtMs, 1234.5);
  assert.match(d.writer, /^ulvsd \d+\.\d+\.\d+/, 'the writing build, from package.json');
  assert.equal(decodeCarry(encodeCarry(fileBody(), 1, 'ulvsd 9.9.9')).writer, 'ulvsd 9.9.9');
});

test('damage anywhere is refused whole, with a reason', () => {
  const good = encodeCarry(fileBody(), 1);
  refuse(good.subarray(0, 20), /shorter than the 32-byte header/);
  refuse(good.subarray(0, good.length - 1), /truncated/);
  refuse(Buffer.concat([good, Buffer.alloc(1)]), /padded/);
  for (let i = 0; i < good.length; i++) {
    const b = Buffer.from(good);
    b[i]! ^= 0x40;
    assert.throws(() => decodeCarry(b), StateFileError, `byte ${i}`);
  }
  refuse(withBody(JSON.stringify(carry()), 2), /version 2, this ulvsd reads version 1 \(written by a newer ulvsd\)/);
  refuse(withBody(JSON.stringify(carry()), 0), /version 0, this ulvsd reads version 1$/);
  // good checksums, a body that is not a carry
  refuse(withBody('{"totals":'), /body is not JSON/);
  refuse(withBody(JSON.stringify({ ...carry(), totals: undefined })), /body: totals: Required/);
  refuse(withBody(JSON.stringify({ ...carry(), counters: { forward: -1 } })), /body: counters.forward/);
  const c = carry();
  c.services[0]!.dests[0]!.stats.c[0] = Number.MAX_VALUE * 2; // Infinity: JSON writes null
  refuse(withBody(JSON.stringify(c)), /body: services.0.dests.0.stats.c.0/);
  const p = carry();
  p.services[0]!.addr = 2 ** 32;
  refuse(withBody(JSON.stringify(p)), /body: services.0.addr/);
  refuse(withBody(JSON.stringify({ ...carry(), health: { k: { alive: 'yes', reason: '' } } })), /body: health.k.alive/);
  // control: the same helper with the good body is accepted
  assert.deepEqual(decodeCarry(withBody(JSON.stringify(carry()))).carry, carry());
});

test('taken: a usable file is read and left for the caller to remove once used; a refused file is removed; none when absent', () => {
  const dir = mkdtempSync('/tmp/hB-carry-');
  try {
    const path = join(dir, 'ulvs0.net1.carry');
    assert.deepEqual(takeCarryFile(path), { kind: 'none' });
    writeCarryFile(path, fileBody(), 5);
    const t = takeCarryFile(path);
    assert.equal(t.kind, 'carry');
    assert.equal(existsSync(path), true, 'kept until used (carry-handover.ts restoreCarried removes it)');
    writeFileSync(path, 'junk');
    assert.deepEqual(takeCarryFile(path), { kind: 'refused', reason: '4 bytes, shorter than the 32-byte header' });
    assert.equal(existsSync(path), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
