/**
 * The notify FIFO reader on a real FIFO: created when missing, a non-FIFO refused, lines split
 * across writes joined, what was written before the reader opened it is not lost while a
 * writer holds it (keepalived holds it O_RDWR), and a replaced FIFO is reopened.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, constants, mkdtempSync, openSync, rmSync, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureFifo, FifoError, NotifyFifoReader } from './notify-fifo.js';
import type { DaemonLog } from './log.js';

const quiet: DaemonLog = { info: () => undefined, warn: () => undefined };
const until = async (f: () => boolean, ms = 5000) => {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error('timeout');
    await new Promise((r) => setTimeout(r, 20));
  }
};

test('created when missing; something else at the path is refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'h6-fifo-'));
  try {
    ensureFifo(join(dir, 'f'));
    assert.ok(statSync(join(dir, 'f')).isFIFO());
    ensureFifo(join(dir, 'f')); // an existing FIFO is fine
    writeFileSync(join(dir, 'plain'), '');
    assert.throws(() => ensureFifo(join(dir, 'plain')), (e: unknown) => e instanceof FifoError && /exists and is not a FIFO/.test(e.message));
    assert.throws(() => ensureFifo(join(dir, 'no/such/dir/f')), (e: unknown) => e instanceof FifoError && /cannot create the notify FIFO/.test(e.message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('lines: written before the reader came (a writer holding it), split across writes, after a replacement', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'h6-fifo-'));
  const path = join(dir, 'vrrp.fifo');
  const got: string[] = [];
  ensureFifo(path);
  // keepalived's way: O_RDWR|O_NONBLOCK, written before any reader
  let w = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
  writeSync(w, 'INSTANCE "VI_1" BACKUP 100\n');
  const r = new NotifyFifoReader(path, (l) => got.push(l), quiet);
  try {
    r.start();
    await until(() => got.length === 1);
    writeSync(w, 'GROUP "G"');
    writeSync(w, ' MASTER 0\nINSTANCE "VI_1" MASTER 100\n');
    await until(() => got.length === 3);
    assert.deepEqual(got, ['INSTANCE "VI_1" BACKUP 100', 'GROUP "G" MASTER 0', 'INSTANCE "VI_1" MASTER 100']);
    // a keepalived that created the FIFO removes it at exit; the next one makes a new one
    closeSync(w);
    unlinkSync(path);
    ensureFifo(path);
    w = openSync(path, constants.O_RDWR | constants.O_NONBLOCK);
    writeSync(w, 'GROUP "G" FAULT 0\n');
    await until(() => got.length === 4); // reopened within its 1 s check
    assert.equal(got[3], 'GROUP "G" FAULT 0');
  } finally {
    r.stop();
    closeSync(w);
    rmSync(dir, { recursive: true, force: true });
  }
});
