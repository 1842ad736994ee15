/**
 * Conditional lines (@ID, @^ID): a table of lines with what keepalived 2.2.7 keeps for a config
 * id, malformed ones refused with their position, and — where keepalived is installed — the
 * same file given to `keepalived -t -i ID`, whose "Unknown keyword" reports must name exactly
 * the probe keywords ulvs kept (the oracle; the table was written from it).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyConditional } from './conditional.js';
import { parseConfigFile } from './syntax.js';

/** [line, kept for config id `ulvs`, kept for config id `lb2`] */
const LINES: [string, boolean, boolean][] = [
  ['probe_plain', true, true],
  ['@ulvs probe_a', true, false],
  ['@^ulvs probe_b', false, true],
  ['@lb2 probe_c', false, true],
  ['@^lb2 probe_d', true, false],
  ['   @ulvs probe_e', true, false], // leading blanks are removed first
  ['@ulvs\tprobe_f', true, false], // a tab ends the id
  ['@ULVS probe_g', false, false], // case-sensitive
  ['@ulvs probe_h # a comment', true, false],
  ['@ulvs.example probe_i', false, false], // the whole word is the id
  ['# @ulvs probe_j', false, false], // a comment
];

test('@ID and @^ID lines kept or dropped as keepalived does; columns unchanged', () => {
  for (const [line, forUlvs, forLb2] of LINES) {
    for (const [id, want] of [['ulvs', forUlvs], ['lb2', forLb2]] as const) {
      const out = applyConditional(line, id);
      const kept = /probe_\w/.test(out.replace(/#.*/, ''));
      assert.equal(kept, want, `${JSON.stringify(line)} for ${id}`);
      if (kept && out !== line) assert.equal(out.length, line.length, 'the prefix is blanked, not removed');
    }
  }
});

test('malformed conditionals are refused with file:line:col', () => {
  const cases: [string, RegExp][] = [
    ['@ulvs', /k\.conf:2:1: conditional line @ulvs has nothing after the config id/],
    ['  @ulvs   # only a comment', /k\.conf:2:3: conditional line @ulvs has nothing after the config id/],
    ['@ulvslvs_sync_daemon', /k\.conf:2:1: conditional line @ulvslvs_sync_daemon has nothing after/],
    ['@ probe', /k\.conf:2:1: conditional line: @ must be followed by a config id/],
    ['@^ probe', /k\.conf:2:1: conditional line: @\^ must be followed by a config id/],
    ['@^', /k\.conf:2:1: conditional line: @\^ must be followed/],
  ];
  for (const [line, err] of cases) assert.throws(() => parseConfigFile('/k.conf', () => `global_defs {\n${line}\n}\n`, 'ulvs'), err, line);
});

test('a conditional applies to one line: @ID include FILE, conditionals inside included files, a block-opening line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'h6-cond-'));
  try {
    writeFileSync(join(dir, 'k.conf'), '@ulvs include a.conf\n@lb2 include b.conf\ninclude c.conf\n');
    writeFileSync(join(dir, 'a.conf'), 'from_a\n');
    writeFileSync(join(dir, 'b.conf'), 'from_b\n');
    writeFileSync(join(dir, 'c.conf'), '@^ulvs from_c_not_ulvs\n@ulvs from_c_ulvs\n');
    const keys = (id: string) => parseConfigFile(join(dir, 'k.conf'), undefined, id).nodes.map((n) => n.key);
    assert.deepEqual(keys('ulvs'), ['from_a', 'from_c_ulvs']);
    assert.deepEqual(keys('lb2'), ['from_b', 'from_c_not_ulvs']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // only the opening line is conditional: its body stays, so its '}' is left over (keepalived: "Extra '}' found")
  assert.throws(() => parseConfigFile('/k.conf', () => '@lb2 virtual_server 203.0.113.10 80 {\n  lb_algo rr\n}\n', 'ulvs'), /k\.conf:3:1: unexpected '}'/);
  const kept = parseConfigFile('/k.conf', () => 'global_defs {\n  @ulvs lvs_sync_daemon i0 VI_INT\n  router_id A\n}\n', 'ulvs').nodes[0]!.children!;
  assert.deepEqual(kept.map((n) => [n.key, n.pos.col, n.conditional ?? false]), [['lvs_sync_daemon', 9, true], ['router_id', 3, false]]);
});

const keepalived = spawnSync('keepalived', ['--version']).status === 0;

test('the oracle: keepalived -t -i ID reports as unknown exactly the probe lines ulvs keeps', { skip: keepalived ? false : 'keepalived is not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'h6-cond-'));
  try {
    const file = join(dir, 'k.conf');
    writeFileSync(file, `${LINES.map(([l]) => l).join('\n')}\n`);
    for (const id of ['ulvs', 'lb2']) {
      const r = spawnSync('keepalived', ['-t', '-l', '-n', '-f', file, '-i', id, '-p', join(dir, 'p'), '-r', join(dir, 'r')], { encoding: 'utf8', timeout: 20_000 });
      const theirs = [...new Set([...`${r.stdout}${r.stderr}`.matchAll(/Unknown keyword '(probe_\w+)'/g)].map((m) => m[1]!))].sort();
      const ours = parseConfigFile(file, undefined, id).nodes.map((n) => n.key).sort();
      assert.deepEqual(ours, theirs, `config id ${id}`);
      assert.ok(theirs.length >= 3, 'the oracle did report');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
