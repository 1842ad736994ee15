/**
 * ulvsadm's words when ulvsd cannot be reached, from real sockets (no root needed): nothing at
 * the path, a stale socket left by a ulvsd killed with -9 (a process that listened and was
 * killed), a path that is a regular file, a path through a file. Each names the cause and
 * the fix, and exits with status 2. Control: a live listener at the same path is reached (the
 * request gets an answer, not one of these messages). EACCES as a non-root user is
 * test/integration/service-messages.test.ts (it needs setpriv).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { unreachableMessage } from './admin-unreachable.js';

const ULVSADM = fileURLToPath(new URL('../cli/ulvsadm.js', import.meta.url));
const adm = (socket: string) => {
  const r = spawnSync(process.execPath, [ULVSADM, '-L', '-n'], { env: { ...process.env, ULVS_SOCKET: socket }, encoding: 'utf8' });
  return { status: r.status, err: r.stderr, out: r.stdout };
};

test('ulvsadm names the cause and the fix for each way the socket is unreachable', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hs-adm-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));

  const none = adm(join(dir, 'absent.sock'));
  assert.equal(none.status, 2);
  assert.match(none.err, /^ulvsd is not running: there is no admin socket at .*absent\.sock \(ENOENT\); start it \(systemctl start ulvsd, or ulvsd as root\), or if ulvsd runs with another --socket, set ULVS_SOCKET/);

  const stale = join(dir, 'stale.sock');
  const k = spawnSync(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  assert.equal(k.signal, 'SIGKILL');
  const s = adm(stale);
  assert.equal(s.status, 2);
  assert.match(s.err, /^ulvsd is not running: the socket .*stale\.sock is left from one that ended without removing it \(killed with -9, or crashed\), and nobody accepts on it \(ECONNREFUSED\); start ulvsd again/);

  const file = join(dir, 'plain');
  writeFileSync(file, '');
  assert.match(adm(file).err, /^.*plain is not a socket \(ECONNREFUSED\): it is not ulvsd's admin socket; if ulvsd runs with another --socket/);
  assert.match(adm(join(file, 'x.sock')).err, /a part of it is not a directory \(ENOTDIR\)/);

  // control: a listener at the stale path is reached; ulvsadm prints what it answers
  rmSync(stale);
  const srv = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ services: [], conns: 0 })));
  await new Promise<void>((r) => srv.listen(stale, r));
  try {
    const live = await new Promise<{ status: number | null; err: string }>((resolve) => {
      // asynchronously: the listener runs on this process's event loop
      import('node:child_process').then(({ execFile }) => execFile(process.execPath, [ULVSADM, '-L', '-n'], { env: { ...process.env, ULVS_SOCKET: stale } }, (e, _o, err) => resolve({ status: e ? ((e as { code?: number }).code ?? 1) : 0, err })));
    });
    assert.doesNotMatch(live.err, /not running|not a socket|permission denied/);
  } finally {
    srv.close();
  }
});

test('unknown codes keep the code and the hint', () => {
  assert.match(unreachableMessage('/x', Object.assign(new Error('boom'), { code: 'EIO' })), /^cannot reach ulvsd at \/x \(EIO\); is it running\?/);
  assert.match(unreachableMessage('/x', Object.assign(new Error('x'), { code: 'EACCES' })), /root's alone .* run ulvsadm as root/);
});
