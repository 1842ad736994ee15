import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { ownNetnsCookie, staleReason, statePaths, takeKept, writeKept, type KeptKernel } from './kept-state.js';
import type { DaemonLog } from './log.js';

const record = (netnsCookie?: string | null): KeptKernel => ({ version: 1, pid: 1, workers: 1, ...(netnsCookie !== undefined && { netnsCookie }), routing: { plan: { dev: 'ulvs0', table: 4200, pref: 4200, services: [], servers: [] }, sysctls: [] }, capture: null, fastPath: null });

const quietLog = (): DaemonLog & { warnings: string[] } => {
  const warnings: string[] = [];
  return { warnings, info: () => {}, warn: (m: string) => void warnings.push(m) };
};

test('staleReason: another cookie is stale; the same cookie, or a side without one, is not', () => {
  assert.match(staleReason(record('7'), '9') ?? '', /namespace cookie 7, this one's is 9/);
  assert.equal(staleReason(record('9'), '9'), null);
  assert.equal(staleReason(record(), '9'), null, 'a record of an older ulvsd (no cookie) is honoured');
  assert.equal(staleReason(record('7'), null), null, 'a kernel without cookies cannot tell');
});

test('takeKept: a stale record is removed with the connection and carry-over files and counted; ours is returned', () => {
  const dir = mkdtempSync('/tmp/hB-kept-');
  try {
    const paths = statePaths(dir, 'ulvs0');
    const here = ownNetnsCookie();
    assert.ok(here !== null);
    const counters = { handover_stale_records: 0 };
    writeKept(paths.kernel, record(String(BigInt(here) + 1n)));
    writeFileSync(paths.conns, 'x');
    writeFileSync(paths.carry, 'x');
    const log = quietLog();
    assert.equal(takeKept(paths, counters, log), null);
    assert.equal(counters.handover_stale_records, 1);
    assert.match(log.warnings.join('\n'), /ignored and removed/);
    assert.deepEqual([paths.kernel, paths.conns, paths.carry].map((p) => existsSync(p)), [false, false, false]);
    // control: our own record is taken, nothing removed, nothing counted
    writeKept(paths.kernel, record(here));
    writeFileSync(paths.conns, 'x');
    assert.equal(takeKept(paths, counters, log)?.netnsCookie, here);
    assert.equal(counters.handover_stale_records, 1);
    assert.ok(existsSync(paths.conns) && JSON.parse(readFileSync(paths.kernel, 'utf8')).netnsCookie === here);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
