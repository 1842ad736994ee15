/**
 * The messages a user meets when something is missing or forbidden name the cause and the fix
 * (issue 15), from the real programs:
 *   - ulvsadm run as nobody (setpriv) against a socket that is root's (0600 in a 0700 directory,
 *     as ulvsd makes /run/ulvs): "permission denied ... root's alone ... run ulvsadm as root";
 *     control: root's ulvsadm at the same path is answered (the listener is live);
 *   - ulvs lab up / lab down run as nobody: exit 1, "needs root" (before: ip's stack trace for
 *     up, and for down a list of namespaces it claimed to have removed but could not);
 *   - ulvsd run as nobody: exit 1, "must run as root (this is uid 65534) ... sudo or the systemd
 *     service";
 *   - ulvsd --rules with a path that does not exist, or is a directory (as root, in a network
 *     namespace of its own, hs-msg-*): exit 2, the path and what to do; control: an empty rules
 *     file in the same namespace starts (the refusal is the path's, not the namespace's).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { waitFor } from '../../src/lab/director-bed.js';
import { needsRoot } from '../support/root.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const ULVSD = fileURLToPath(new URL('../../src/cli/ulvsd.js', import.meta.url));
const ULVS = fileURLToPath(new URL('../../src/cli/ulvs.js', import.meta.url));
const NOBODY = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'];

describe('messages that say why', { skip: needsRoot }, () => {
  test('ulvsadm as nobody: the socket is root\'s alone, run as root; control: root is answered', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'hs-msg-'));
    chmodSync(dir, 0o755); // others may search the temp directory itself ...
    const run = join(dir, 'run');
    mkdirSync(run, { mode: 0o700 }); // ... but not the socket's, as /run/ulvs
    const socket = join(run, 'ulvs.sock');
    const srv = createServer((_q, res) => res.writeHead(200, { 'content-type': 'text/plain' }).end(''));
    await new Promise<void>((r) => srv.listen(socket, r));
    chmodSync(socket, 0o600);
    t.after(() => {
      srv.close();
      rmSync(dir, { recursive: true, force: true });
    });
    const asNobody = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const p = spawn(NOBODY[0]!, [...NOBODY.slice(1), 'env', `ULVS_SOCKET=${socket}`, process.execPath, ULVSADM, '-L', '-n'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('exit', (code) => resolve({ code, err }));
    });
    assert.equal(asNobody.code, 2);
    assert.match(asNobody.err, /^permission denied on ulvsd's admin socket .*ulvs\.sock \(EACCES\): the socket and its directory are root's alone \(mode 0600 and 0700\), because whoever can use it can change the director; run ulvsadm as root \(sudo ulvsadm \.\.\.\), not as uid 65534\n$/);
    const asRoot = await new Promise<string>((resolve) => {
      const p = spawn(process.execPath, [ULVSADM, '-S', '-n'], { env: { ...process.env, ULVS_SOCKET: socket }, stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('exit', () => resolve(err));
    });
    assert.doesNotMatch(asRoot, /permission denied|not running/);
  });

  test('ulvs lab as nobody: needs root (not ip\'s trace), and lab down does not claim to have removed what it could not', () => {
    for (const args of [['lab', 'up'], ['lab', 'down', '--prefix', 'hs-none']]) {
      const r = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), process.execPath, ULVS, ...args], { encoding: 'utf8' });
      assert.equal(r.status, 1, args.join(' '));
      assert.equal(r.stderr, 'ulvs lab: needs root (it creates and deletes network namespaces); run it with sudo\n');
      assert.equal(r.stdout, '');
    }
  });

  test('ulvsd as nobody: must run as root, and how', () => {
    const r = spawnSync(NOBODY[0]!, [...NOBODY.slice(1), process.execPath, ULVSD], { encoding: 'utf8' });
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'ulvsd: must run as root (this is uid 65534): it creates a TUN device, policy routes and eBPF programs; run it with sudo or as the systemd service ulvsd\n');
  });

  test('ulvsd --rules: a missing file, a directory; control: an empty file starts', async (t) => {
    const ns = `hs-msg-${randomBytes(2).toString('hex')}`;
    const dir = mkdtempSync(join(tmpdir(), 'hs-msg-'));
    spawnSync('ip', ['netns', 'add', ns]);
    t.after(() => {
      spawnSync('ip', ['netns', 'del', ns]);
      rmSync(dir, { recursive: true, force: true });
    });
    const base = ['--socket', join(dir, 's.sock'), '--state-dir', dir, '--dev', 'hs0', '--workers', '1', '--log-format', 'text'];
    const ulvsd = (args: string[]) => spawnSync('ip', ['netns', 'exec', ns, process.execPath, ULVSD, ...args, ...base], { encoding: 'utf8', timeout: 30_000 });
    const missing = ulvsd(['--rules', join(dir, 'absent.rules')]);
    assert.equal(missing.status, 2, missing.stderr);
    assert.match(missing.stderr, /^ulvsd: the rules file .*absent\.rules does not exist: create it \(ulvsadm -S -n > .*absent\.rules saves the running rules\), give another path, or start without it\n$/);
    const isDir = ulvsd(['--rules', dir]);
    assert.equal(isDir.status, 2);
    assert.match(isDir.stderr, /^ulvsd: the rules file .* is a directory: give the file inside it\n$/);
    // control: the same start with a readable (empty) file forwards
    writeFileSync(join(dir, 'empty.rules'), '');
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, ULVSD, '--rules', join(dir, 'empty.rules'), ...base], { stdio: ['ignore', 'pipe', 'pipe'] });
    const exited = new Promise((r) => p.once('exit', r));
    try {
      await waitFor(p, /forwarding with 1 worker/, 30_000);
    } finally {
      p.kill('SIGTERM');
      await exited;
    }
  });
});
