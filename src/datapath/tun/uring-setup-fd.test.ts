/**
 * io_uring_setup refused for real: a child node process with RLIMIT_NOFILE lowered (prlimit)
 * fills its descriptor table, then sets up a ring as a worker does: the constructor throws a
 * clear error naming the cause (which worker.ts turns into read/write system calls under
 * --io auto), and once a descriptor is free the same set-up works. Control: that last step.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const uring = fileURLToPath(new URL('./uring.js', import.meta.url));
const CHILD = `
const { Uring } = await import(${JSON.stringify(uring)});
const fs = await import('node:fs');
const held = [];
for (;;) { try { held.push(fs.openSync('/dev/null', 'r')); } catch { break; } }
const out = {};
try { new Uring(256, 20).close(); out.full = 'made'; } catch (e) { out.full = e.message; }
for (const fd of held.splice(0, 4)) fs.closeSync(fd);
try { new Uring(256, 20).close(); out.after = 'made'; } catch (e) { out.after = e.message; }
process.stdout.write(JSON.stringify(out));
process.exit(0);
`;

test('io_uring_setup without a free descriptor: a clear error; with one, the ring is made', () => {
  const r = spawnSync('prlimit', ['--nofile=64', process.execPath, '--input-type=module', '-e', CHILD], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { full: string; after: string };
  assert.equal(out.full, 'io_uring_setup: Too many open files');
  assert.equal(out.after, 'made');
});
