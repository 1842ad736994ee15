/**
 * `ulvs demo --method dr`: the demo with direct routing (real servers prepared by
 * `ulvs rs-setup dr` in their namespaces) exits 0, every request answered by the three servers
 * in turn, the listing shows the Route forwarding; its test bed (per-run prefix) and rs-setup
 * records are gone afterwards. A wrong --method is a usage error.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { needsRoot } from '../support/root.js';

const ULVS = fileURLToPath(new URL('../../../bin/ulvs', import.meta.url)); // from dist/test/integration

test('ulvs demo --method dr exits 0: 30 answers from 3 servers, Forward Route, bed removed', { skip: needsRoot }, () => {
  const r = spawnSync(process.execPath, [ULVS, 'demo', '--method', 'dr'], { encoding: 'utf8', timeout: 90_000 });
  assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
  const per = /30\/30 answered; per real server: (.*)/.exec(r.stdout)?.[1]?.split(', ').sort();
  assert.deepEqual(per, ['rs1 10', 'rs2 10', 'rs3 10'], r.stdout);
  assert.match(r.stdout, /30\/30 real servers saw the client's own address/);
  assert.match(r.stdout, /-> 192\.0\.2\.11:80\s+Route/);
  const prefix = /building the test bed \((ulvs-[0-9a-f]+)-\*\)/.exec(r.stdout)?.[1];
  assert.ok(prefix, r.stdout);
  assert.doesNotMatch(spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout, new RegExp(prefix));
});

test('ulvs demo --method with an unknown method is a usage error (exit 2)', () => {
  const r = spawnSync(process.execPath, [ULVS, 'demo', '--method', 'tun'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /usage: ulvs demo \[--method nat\|dr\]/);
});
