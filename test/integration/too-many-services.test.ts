/**
 * A rules file with more services than there are scheduler-state slots (65,536; control/
 * sched-slots.ts): ulvsd refuses it at start with the slots' ENOSPC text and exit code 1, no
 * stack trace, and nothing installed (no TUN device, its namespace claims released). Before,
 * the slots were assigned after the kernel side was installed and outside the error handling:
 * a stack trace, and (one service-index rebuild per service, ctl/services.ts) over four minutes
 * of loading first. Control: one service fewer than the slots would start; a one-service rules
 * file in the same namespace then starts, so the namespace, the binary and the claims are fine
 * and the refusal is the count's.
 *
 * Names: prefix hX-, the namespace and temp directory removed in after().
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SCRIPTS } from '../../src/lab/director-bed.js';
import { needsRoot } from '../support/root.js';

const ns = `hX-${randomBytes(3).toString('hex')}`;

function ulvsd(dir: string, rules: string, timeoutMs: number): Promise<{ code: number | null; out: string; ready: boolean }> {
  writeFileSync(join(dir, 'rules'), rules);
  const p = spawn('ip', ['netns', 'exec', ns, process.execPath, SCRIPTS.ulvsd, '--rules', join(dir, 'rules'), '--socket', join(dir, 'a.sock'), '--state-dir', join(dir, 'state'), '--workers', '1', '--dev', 'hX0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let ready = false;
  const onData = (b: Buffer) => {
    out += b.toString();
    if (!ready && /forwarding with 1 worker/.test(out)) {
      ready = true;
      p.kill('SIGTERM');
    }
  };
  p.stdout.on('data', onData);
  p.stderr.on('data', onData);
  const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
  return new Promise((resolve) => p.on('exit', (code) => (clearTimeout(timer), resolve({ code, out, ready }))));
}

describe('more services than scheduler slots', { skip: needsRoot }, () => {
  let dir = '';
  before(() => {
    spawnSync('ip', ['netns', 'add', ns]);
    spawnSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
    dir = mkdtempSync(join(tmpdir(), 'hX-'));
  });
  after(() => {
    spawnSync('ip', ['netns', 'del', ns]);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('65,537 services: refused with ENOSPC, exit 1, no stack trace, nothing installed', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 65_537; i++) lines.push(`-A -t 203.0.113.${10 + Math.floor(i / 60_000)}:${1 + (i % 60_000)} -s rr`);
    const r = await ulvsd(dir, `${lines.join('\n')}\n`, 120_000);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /rules rejected: No space left on device \(no scheduler state slot left \(65536 in all/);
    assert.doesNotMatch(r.out, /\n\s+at /, 'no stack trace');
    assert.equal(r.ready, false);
    const links = spawnSync('ip', ['-n', ns, '-br', 'link']).stdout.toString();
    assert.doesNotMatch(links, /hX0/, 'no TUN device left');
  });

  test('control: one service in the same namespace starts (and stops)', async () => {
    const r = await ulvsd(dir, '-A -t 203.0.113.10:80 -s rr\n', 60_000);
    assert.equal(r.ready, true, r.out);
    assert.equal(r.code, 0, r.out);
  });
});
