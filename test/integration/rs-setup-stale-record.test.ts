/**
 * `ulvs rs-setup` keeps its record in /run/ulvs/rs-setup-<netns inode>.json. A namespace removed
 * without `--remove` (a container gone, a test killed) leaves its record behind, and the kernel
 * gives the inode number to a later namespace: found while running dr-tun-vip-mixed.test, where
 * a fresh real server was refused ("already set up") by a record some earlier namespace left.
 * Worse, `--remove` there would have "restored" that other namespace's sysctls and removed its
 * VIPs here. The record now carries the namespace's cookie (netns-cookie.ts), which the kernel
 * never reuses; a record with another cookie is discarded, nothing of it undone.
 *
 * The reuse is made here by moving namespace A's record to namespace B's name, as the kernel
 * does when B gets A's number (which it may or may not do within one test: other namespaces
 * come and go on a shared machine). Controls: B's own record still refuses a second set-up,
 * and a record without a cookie (written before this change) is honoured as before.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CommandError, run, tryRun } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';

const ULVS = fileURLToPath(new URL('../../../bin/ulvs', import.meta.url)); // from dist/test/integration
const VIP = '203.0.113.10';
const P = `h3-${randomBytes(3).toString('hex')}`;
const A = `${P}-a`;
const B = `${P}-b`;

const inNs = (ns: string, ...argv: string[]) => run(['ip', 'netns', 'exec', ns, ...argv]);
const rsSetup = (ns: string, ...args: string[]) => inNs(ns, process.execPath, ULVS, 'rs-setup', ...args);
const recordOf = (ns: string) => `/run/ulvs/rs-setup-${inNs(ns, 'stat', '-L', '-c', '%i', '/proc/self/ns/net').trim()}.json`;
const loHasVip = (ns: string) => run(['ip', '-n', ns, '-4', '-o', 'addr', 'show', 'dev', 'lo']).includes(`${VIP}/32`);
const addNs = (ns: string) => {
  run(['ip', 'netns', 'add', ns]);
  run(['ip', '-n', ns, 'link', 'set', 'lo', 'up']);
};

describe('ulvs rs-setup and a record left by a namespace that no longer exists', { skip: needsRoot }, () => {
  const records: string[] = [];
  after(() => {
    for (const ns of [A, B]) tryRun(['ip', 'netns', 'del', ns]);
    for (const r of records) rmSync(r, { force: true });
  });

  test('a stale record at this namespace\'s inode is discarded, not refused or undone; this namespace\'s own record still is', () => {
    addNs(A);
    rsSetup(A, 'dr', VIP);
    const stale = recordOf(A);
    records.push(stale);
    const staleText = readFileSync(stale, 'utf8');
    assert.match(staleText, /"netnsCookie": "\d+"/, 'the record names its namespace');
    run(['ip', 'netns', 'del', A]); // removed without --remove: the record stays
    addNs(B);
    const path = recordOf(B);
    records.push(path);
    if (path !== stale) renameSync(stale, path); // what the kernel does when B gets A's number
    assert.ok(existsSync(path));

    const status = rsSetup(B, '--status');
    assert.match(status, /is not this namespace's: it was left by a network namespace that no longer exists/);
    assert.ok(existsSync(path), '--status changes nothing');

    const out = rsSetup(B, 'dr', VIP);
    assert.match(out, /discarded the record .*nothing of it is undone here/);
    assert.ok(loHasVip(B), 'set up in B');
    assert.notEqual(JSON.parse(readFileSync(path, 'utf8')).netnsCookie, JSON.parse(staleText).netnsCookie, "B's own record");

    // control: B's own record refuses a second set-up
    let err: CommandError | undefined;
    try {
      rsSetup(B, 'dr', VIP);
    } catch (e) {
      err = e as CommandError;
    }
    assert.match(err?.stderr ?? '', /already set up/);

    rsSetup(B, '--remove');
    assert.ok(!loHasVip(B) && !existsSync(path), 'removed: only what B did');

    // control: a record without a cookie (older ulvs) is taken as this namespace's, as before
    writeFileSync(path, staleText.replace(/,\n\s*"netnsCookie": "\d+"/, ''));
    assert.doesNotMatch(readFileSync(path, 'utf8'), /netnsCookie/);
    assert.throws(() => rsSetup(B, 'dr', VIP), /already set up/);
  });
});
