/**
 * Real descriptor exhaustion: a child node process with RLIMIT_NOFILE lowered (prlimit(1) on
 * itself) fills its table, then runs TCP_CHECK, HTTP_GET, UDP_CHECK and MISC_CHECK: each resolves
 * not run with EMFILE (never rejects, never throws), and once a descriptor is freed the same TCP
 * check runs and fails as a check (connection refused on a closed port): `notRun` absent. The
 * control is that last run: a classifier that called every failure "not run" would fail it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const checks = fileURLToPath(new URL('./checks.js', import.meta.url));
const CHILD = `
const { runCheck } = await import(${JSON.stringify(checks)});
const fs = await import('node:fs');
const base = { connectIp: 0x7f000001, connectPort: 9, connectTimeout: 1, retry: 0, delayBeforeRetry: 1, delayLoop: 1, warmup: 0, alpha: false, urls: [{ path: '/', statusCodes: [] }], miscPath: 'true', miscTimeout: 2, miscDynamic: false, requireReply: true, dnsType: 'A', dnsName: '.', payload: '00' };
const held = [];
for (;;) { try { held.push(fs.openSync('/dev/null', 'r')); } catch { break; } }
const out = {};
for (const type of ['TCP_CHECK', 'HTTP_GET', 'UDP_CHECK', 'MISC_CHECK']) out[type] = await runCheck({ ...base, type });
for (const fd of held.splice(0, 8)) fs.closeSync(fd);
out.after = await runCheck({ ...base, type: 'TCP_CHECK' });
process.stdout.write(JSON.stringify(out));
process.exit(0);
`;

test('checkers out of file descriptors: not run (EMFILE), then run again once one is free', () => {
  const r = spawnSync('prlimit', ['--nofile=64', process.execPath, '--input-type=module', '-e', CHILD], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as Record<string, { ok: boolean; reason: string; notRun?: string }>;
  for (const type of ['TCP_CHECK', 'HTTP_GET', 'UDP_CHECK', 'MISC_CHECK']) {
    assert.equal(out[type]!.ok, false, type);
    assert.equal(out[type]!.notRun, 'EMFILE', `${type}: ${out[type]!.reason}`);
  }
  assert.equal(out['after']!.ok, false);
  assert.equal(out['after']!.notRun, undefined, out['after']!.reason);
  assert.match(out['after']!.reason, /ECONNREFUSED/);
});
