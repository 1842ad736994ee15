/**
 * Parameter substitution ($NAME=VALUE, $NAME, ${NAME}, multiline definitions, pre-defined
 * names): what ulvs reads from a file, refusals with their position, and — where keepalived is
 * installed — the same probe file given to `keepalived -t -i ID`, whose "Unknown keyword"
 * reports (keyword and line) must be exactly the probe statements ulvs reads (the oracle; the
 * expected tables were written from it). Control: dropping the multiline expansion or the
 * re-applied conditional makes both the table and the oracle comparison fail.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfigFile } from './syntax.js';

const PROBE = [
  '$IF_MAIN=@main', //                         1
  '$IF_MAIN probe_if_main 1', //               2  kept for `main` only (the conditional is applied after substitution)
  '$P=probe_p', //                             3
  '$P 4', //                                   4  probe_p
  '${P}x 5', //                                5  probe_px
  '$Px 6', //                                  6  not a reference: `$Px` stays (an unknown keyword for both)
  '$ML= \\', //                                7
  '  probe_ml_a 1 \\', //                      8
  '  @main probe_ml_b 2 \\', //                9
  '  probe_ml_c 3', //                         10
  '$ML', //                                    11 three statements at line 11
  '    $IND=probe_ind', //                     12 blanks before `$` are allowed
  '$IND ${_HASH} a comment', //                13 probe_ind, then a comment
  '$B=probe_b_${_INSTANCE}', //                14
  '${B}', //                                   15 probe_b_main / probe_b_other
  '$V=probe_late_${SUB}', //                   16 resolved at use:
  '$SUB=one', //                               17
  '${V}', //                                   18 probe_late_one
  '$SUB=two', //                               19
  '${V}', //                                   20 probe_late_two
];

/** [keyword, line] that ulvs must read for config id `main` and `other` */
const MAIN: [string, number][] = [['probe_if_main', 2], ['probe_p', 4], ['probe_px', 5], ['$Px', 6], ['probe_ml_a', 11], ['probe_ml_b', 11], ['probe_ml_c', 11], ['probe_ind', 13], ['probe_b_main', 15], ['probe_late_one', 18], ['probe_late_two', 20]];
const OTHER: [string, number][] = MAIN.filter(([k]) => k !== 'probe_if_main' && k !== 'probe_ml_b').map(([k, l]) => [k === 'probe_b_main' ? 'probe_b_other' : k, l]);
const FILE = PROBE;
const expect = (t: [string, number][]) => t.map(([k, l]) => `${k}@${l}`).sort();

const read = (id: string, text = `${FILE.join('\n')}\n`) =>
  parseConfigFile('/k.conf', () => text, id)
    .nodes.map((n) => `${n.key}@${n.pos.line}`)
    .sort();

test('definitions, references and multiline definitions read as keepalived reads them', () => {
  assert.deepEqual(read('main'), expect(MAIN));
  assert.deepEqual(read('other'), expect(OTHER));
});

test('an empty line ends a multiline definition; a comment-only line does not', () => {
  assert.deepEqual(read('x', '$M= \\\n  probe_a \\\n\n  probe_b\n$M\n'), ['probe_a@5', 'probe_b@4']);
  assert.deepEqual(read('x', '$M= \\\n  probe_a \\\n  # note\n  probe_b\n$M\n'), ['probe_a@5', 'probe_b@5']);
});

test('references keep the column of their `$`; pre-defined names', () => {
  process.env.HK_TEST_VAR = 'hk_env';
  const n = parseConfigFile('/etc/k/k.conf', () => '$A=probe_a\n  key ${A} "${_PWD}" ${_ENV HK_TEST_VAR} ${_RANDOM 7 7} ${_BANG}x\n', 'id').nodes;
  assert.deepEqual(n[0]!.args, ['probe_a', '/etc/k', 'hk_env', '7']);
  assert.equal(n[0]!.pos.col, 3);
});

test('refusals with file:line:col', () => {
  const cases: [string, RegExp][] = [
    ['$L=${L}x\nkey ${L}\n', /k\.conf:2:5: parameter substitution does not end/],
    ['$M= \\\n a \\\n b\nkey $M more\n', /k\.conf:4:5: multiline definition \$M must end its line/],
    ['~SEQ(N, 0, 3) ip ${N}\n', /k\.conf:1:1: ~SEQ blocks are not supported by ulvs/],
    ['  ~LST(N, a, b) ip ${N}\n', /k\.conf:1:3: ~LST blocks are not supported/],
    ['key ${_RANDOM 9 1}\n', /k\.conf:1:5: \$\{_RANDOM 9 1\}: the minimum exceeds the maximum/],
  ];
  for (const [text, err] of cases) assert.throws(() => read('x', text), err, text);
});

test('definitions carry into and out of included files, in file order', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hk-defs-'));
  try {
    writeFileSync(join(dir, 'k.conf'), '$A=probe_from_main\ninclude a.conf\n$B\n');
    writeFileSync(join(dir, 'a.conf'), '$A\n$B=probe_from_a\n');
    assert.deepEqual(parseConfigFile(join(dir, 'k.conf'), undefined, 'x').nodes.map((n) => n.key), ['probe_from_main', 'probe_from_a']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const keepalived = spawnSync('keepalived', ['--version']).status === 0;

test('the oracle: keepalived -t -i ID reports as unknown exactly the statements ulvs reads', { skip: keepalived ? false : 'keepalived is not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hk-defs-'));
  try {
    const file = join(dir, 'k.conf');
    writeFileSync(file, `${FILE.join('\n')}\n`);
    for (const [id, table] of [['main', MAIN], ['other', OTHER]] as const) {
      const r = spawnSync('keepalived', ['-t', '-l', '-n', '-f', file, '-i', id, '-p', join(dir, 'p'), '-r', join(dir, 'r')], { encoding: 'utf8', timeout: 20_000 });
      const theirs = [...new Set([...`${r.stdout}${r.stderr}`.matchAll(/Line (\d+)\) Unknown keyword '([^']+)'/g)].map((m) => `${m[2]}@${m[1]}`))].sort();
      assert.deepEqual(theirs, expect(table), `keepalived, config id ${id}`);
      assert.deepEqual(read(id), theirs, `ulvs, config id ${id}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
