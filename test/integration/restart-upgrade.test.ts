/**
 * An in-place upgrade (README "Restarts and upgrades"): one build of ulvsd hands over to
 * another, and back (a roll-back), with 100 streaming connections and the kernel fast path on:
 * every connection makes progress after each start, and at the end every byte sent has come
 * back, none reset, none mismatched; the counters and the rr cursor go with them (the carry
 * file names the build that wrote it).
 *
 * The other build is this tree's dist/src copied to /tmp/hB-upgrade-*, with its own
 * package.json (version `<ours>-hB-previous`) and links to node_modules and bpf/: a separate set
 * of modules, loaded from another place, that reports another version (ulvsd --version, and the
 * "forwarding with" log line). Building an older commit instead would need a compiler run and a
 * second dependency tree in CI; the file formats both builds share are checked by the unit tests
 * and by the newer-version refusals of restart-state.test.ts.
 *
 * Control: each log line must name the build that was started (the two versions differ), so a
 * run that started one build twice, or a copy that did not load its own modules, fails.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SCRIPTS } from '../../src/lab/director-bed.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { restart, sleep, startBed, stopBed, StreamClient, type Bed } from '../support/restart-bed.js';

const root = fileURLToPath(new URL('../../../', import.meta.url)); // from dist/test/integration
const ours = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
const previous = `${ours}-hB-previous`;

/** This tree's build copied to a temporary directory that calls itself `version`; its ulvsd.js. */
function otherBuild(dir: string, version: string): string {
  mkdirSync(join(dir, 'dist'));
  cpSync(join(root, 'dist', 'src'), join(dir, 'dist', 'src'), { recursive: true });
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Record<string, unknown>;
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ ...pkg, version }));
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  symlinkSync(join(root, 'bpf'), join(dir, 'bpf'));
  return join(dir, 'dist', 'src', 'cli', 'ulvsd.js');
}

describe('in-place upgrade to another build and back', { skip: needsRoot }, () => {
  let dir = '';
  let old = '';
  const beds: Bed[] = [];
  before(() => {
    dir = mkdtempSync('/tmp/hB-upgrade-');
    old = otherBuild(dir, previous);
  });
  after(async () => {
    for (const b of beds) await stopBed(b);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test('the copy is another build: it reports its own version', () => {
    assert.equal(run([process.execPath, old, '--version']).trim(), `ulvsd ${previous}`);
    assert.equal(run([process.execPath, SCRIPTS.ulvsd, '--version']).trim(), `ulvsd ${ours}`);
  });

  test('old -> new -> old with 100 streaming connections (fast path on, 2 -> 1 -> 2 workers): 0 lost bytes, each process reports its build', async (t) => {
    const args = ['--keep-state', '--workers', '2'];
    const b = await startBed(args, { prefix: 'hB', ulvsdScript: old });
    beds.push(b);
    const logs: string[] = [b.bed.ulvsdLog];
    const client = new StreamClient(b.bed.bed.clients[0]!, 100);
    await client.next('established', null);
    await sleep(1000);
    const gaps: number[] = [];
    for (const [script, workers] of [[SCRIPTS.ulvsd, '1'], [old, '2']] as const) {
      args[2] = workers;
      const from = b.bed.ulvsdLog.length;
      gaps.push((await restart(b.bed, 'SIGUSR2', script)).gapMs);
      logs.push(b.bed.ulvsdLog.slice(from));
      const p = await client.progressed((await client.status()).perConn, 30_000);
      assert.equal(p.n, 100, `every connection makes progress after starting ${script}`);
    }
    const [first, upgraded, rolledBack] = logs as [string, string, string];
    assert.match(first, new RegExp(`forwarding with 2 workers \\(ulvsd ${previous},`));
    assert.match(upgraded, new RegExp(`forwarding with 1 worker \\(ulvsd ${ours},`), 'the new build runs after the upgrade');
    assert.match(upgraded, /hand-over: 100 entries taken over \(\d+ still in the kernel fast path\)/);
    assert.match(upgraded, new RegExp(`scheduler cursors from \\S+, written by ulvsd ${previous} `), 'the old build\'s counters and cursors');
    assert.match(rolledBack, new RegExp(`forwarding with 2 workers \\(ulvsd ${previous},`), 'and the old one after the roll-back');
    assert.match(rolledBack, new RegExp(`written by ulvsd ${ours} `));
    assert.match(rolledBack, /hand-over: 100 entries taken over/);
    const fin = await client.next('final', 'SIGUSR2');
    assert.deepEqual({ errors: fin.errors, mismatches: fin.mismatches, lost: fin.lost, unfinished: fin.unfinished }, { errors: 0, mismatches: 0, lost: 0, unfinished: 0 }, JSON.stringify(fin));
    t.diagnostic(`upgrade and roll-back: signal -> new process forwarding ${gaps.join(', ')} ms; ${fin.recv} bytes echoed`);
    await stopBed(b);
    beds.pop();
  });
});
