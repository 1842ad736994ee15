import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkSocketPlace, listenPrivate } from './admin-socket.js';

const inDir = (f: (dir: string) => Promise<void> | void) => async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hD-sock-'));
  try {
    await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};
const close = (s: Server) => new Promise((r) => s.close(r));

test('listenPrivate: the socket is 0600 the moment listen() returns, whatever the umask; control: a plain listen is not', inDir(async (dir) => {
  const old = process.umask(0); // the widest: a plain bind(2) makes the socket 0777
  try {
    const plain = createServer();
    plain.listen(join(dir, 'plain.sock'));
    const plainMode = statSync(join(dir, 'plain.sock')).mode & 0o777; // bind(2) ran inside listen()
    await close(plain);
    assert.equal(plainMode, 0o777, 'control: a plain listen leaves a window in which the socket is 0777 (what the chmod after it closed)');

    const s = createServer();
    listenPrivate(s, join(dir, 'admin.sock'), () => {});
    assert.equal(statSync(join(dir, 'admin.sock')).mode & 0o777, 0o600);
    assert.equal(process.umask(), 0, 'the umask is given back');
    await close(s);
  } finally {
    process.umask(old);
  }
}));

test('checkSocketPlace: a file that is not a socket is refused and left alone', inDir((dir) => {
  const f = join(dir, 'important');
  writeFileSync(f, 'data');
  assert.throws(() => checkSocketPlace(f), /--socket .*important exists and is not a socket: not removed/);
  assert.ok(existsSync(f));
}));

test('checkSocketPlace: directories others may write without the sticky bit, or of another user, are refused; /tmp-like (sticky) and 0700 are not', { skip: process.getuid?.() !== 0 ? 'chown needs root' : false }, inDir((dir) => {
  const wide = join(dir, 'wide');
  mkdirSync(wide);
  chmodSync(wide, 0o777);
  assert.throws(() => checkSocketPlace(join(wide, 's.sock')), /directory .*wide is writable by other users \(mode 777, no sticky bit\)/);
  chmodSync(wide, 0o1777);
  checkSocketPlace(join(wide, 's.sock'));
  const sub = join(wide, 'sub');
  mkdirSync(sub, { mode: 0o700 });
  checkSocketPlace(join(sub, 's.sock'));
  chownSync(sub, 65534, 65534);
  assert.throws(() => checkSocketPlace(join(sub, 's.sock')), /directory .*sub belongs to uid 65534: that user could replace the socket/);
  chmodSync(wide, 0o777);
  chownSync(sub, 0, 0);
  assert.throws(() => checkSocketPlace(join(sub, 'missing', 's.sock')), /wide is writable by other users/, 'an ancestor counts too (it could rename the directory)');
}));
