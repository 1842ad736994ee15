#!/usr/bin/env node
// Runs every compiled test file (dist/**/*.test.js) with node's built-in test runner.
// Node 20's `node --test` does not expand globs itself, so the list is built here.
//
// Then a second run of the IPVS-exactness files with kernel connection set-up on
// (ULVS_TEST_KERNEL_SETUP=1: src/lab/test-path.ts puts `--sysctl kernel_setup=1` on every test
// bed's ulvsd). Issue 16: "all IPVS-exactness tests still pass for both paths". The files that
// test the engine's own path (lifecycle, metrics, fastpath, explain set kernel_setup=0
// themselves) and ulvs's own restart and claims features (restart-state, two-daemons: their
// differences are in docs/kernel-setup.md) are not in the list.
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';

const EXACTNESS = [
  'scheduling', 'service', 'ulvsadm', 'live', 'live-changes', 'concurrent-changes', 'transfer', 'workers',
  'keepalived', 'backup-only', 'ha-failover', 'vrrp-pair', 'syn-flood', 'trace', 'reload-under-load',
].map((n) => join('dist', 'test', 'integration', `${n}.test.js`));

function find(dir, out) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

const files = find('dist', []).sort();
if (files.length === 0) {
  console.error('run-tests: no compiled test files under dist/ (did the build run?)');
  process.exit(1);
}
const missing = EXACTNESS.filter((f) => !files.includes(f));
if (missing.length) {
  console.error(`run-tests: the exactness list names files that do not exist: ${missing.join(', ')}`);
  process.exit(1);
}
const args = process.argv.slice(2);
const first = spawnSync(process.execPath, ['--test', ...args, ...files], { stdio: 'inherit' });
// an argument (e.g. --test-name-pattern) narrows the first run only: the second is the whole list
if (args.length > 0) process.exit(first.status ?? 1);
console.log('# run-tests: the IPVS-exactness files again, with kernel connection set-up on (ULVS_TEST_KERNEL_SETUP=1)');
const second = spawnSync(process.execPath, ['--test', ...EXACTNESS], { stdio: 'inherit', env: { ...process.env, ULVS_TEST_KERNEL_SETUP: '1' } });
process.exit(first.status !== 0 ? (first.status ?? 1) : (second.status ?? 1));
