/**
 * `ulvs lab up --pair`: builds the HA pair, says who is MASTER and what to try (a request
 * through the VIP answered from the client namespace it names), and on SIGINT removes every
 * namespace and its directory. With `--method dr` the same through direct routing (the
 * directors list Route; the real servers answer through the reply router, one more namespace).
 * Control: a wrong option (or method) is a usage error (exit 2) that builds nothing.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { needsRoot } from '../support/root.js';

const ULVS = fileURLToPath(new URL('../../../bin/ulvs', import.meta.url)); // from dist/test/integration
const keepalived = spawnSync('keepalived', ['--version']).status === 0;
const namespaces = (prefix: string) => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`${prefix}-`));

const skipPair = needsRoot || (keepalived ? false : 'keepalived is not installed');

/** `ulvs lab up --pair ...extra`: up, a request through the VIP, the listing's method, SIGINT. */
async function upRequestDown(prefix: string, extra: string[], forward: string, nss: number): Promise<void> {
  const p = spawn(process.execPath, [ULVS, 'lab', 'up', '--pair', ...extra, '--prefix', prefix], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
  try {
    const t0 = Date.now();
    while (!/Ctrl-C/.test(out)) {
      assert.ok(Date.now() - t0 < 60_000 && p.exitCode === null, `not up: ${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    assert.match(out, new RegExp(`up: ${prefix}-d1 is MASTER \\(VIP 203\\.0\\.113\\.10, DIP 192\\.0\\.2\\.1\\), ${prefix}-d2 BACKUP`));
    const conf = /keepalived\.conf of each director .*: (\S+), /.exec(out)?.[1];
    assert.ok(conf && existsSync(conf), out);
    const r = spawnSync('ip', ['netns', 'exec', `${prefix}-c1`, 'curl', '-s', '-m', '5', 'http://203.0.113.10/'], { encoding: 'utf8' });
    assert.match(r.stdout, /"server":"rs[12]","client":"198\.51\.100\.2:\d+"/, r.stderr);
    const sock = /--unix-socket (\S+) /.exec(out)?.[1];
    const listing = spawnSync(process.execPath, [ULVS.replace(/ulvs$/, 'ulvsadm'), '-L', '-n'], { encoding: 'utf8', env: { ...process.env, ULVS_SOCKET: sock } });
    assert.equal(listing.stdout.split('\n').filter((l) => l.includes(` ${forward} `)).length, 2, listing.stdout + listing.stderr);
    assert.equal(namespaces(prefix).length, nss);
    p.kill('SIGINT');
    assert.equal(await exited, 0);
    assert.match(out, /HA pair removed/);
    assert.deepEqual(namespaces(prefix), []);
    assert.ok(!existsSync(conf));
  } finally {
    if (p.exitCode === null) {
      p.kill('SIGTERM');
      await exited;
    }
    spawnSync(process.execPath, [ULVS, 'lab', 'down', '--prefix', prefix]);
  }
}

test('ulvs lab up --pair: up, a request through the VIP, removed on SIGINT', { skip: skipPair }, () => upRequestDown(`ulvs-h6${randomBytes(3).toString('hex')}`, [], 'Masq', 6));

test('ulvs lab up --pair --method dr: the same through direct routing and the reply router', { skip: skipPair }, () => upRequestDown(`ulvs-ha${randomBytes(3).toString('hex')}`, ['--method', 'dr'], 'Route', 7));

test('ulvs lab up --pair with a wrong option: usage, exit 2, nothing built', () => {
  const r = spawnSync(process.execPath, [ULVS, 'lab', 'up', '--pair', '--prefix', 'Bad_Name'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: ulvs lab up --pair \[--no-track\] \[--method nat\|dr\|tun\] \[--prefix ulvs-NAME\]/);
  const m = spawnSync(process.execPath, [ULVS, 'lab', 'up', '--pair', '--method', 'gre'], { encoding: 'utf8' });
  assert.equal(m.status, 2);
  assert.match(m.stderr, /"--method" is not understood \(--method takes nat, dr or tun/);
});
