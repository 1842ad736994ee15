/**
 * `ulvsd --help` lists every option of the table the parser is built from, each with its
 * default, and the shown defaults are the parser's. Control: the same check on a help text with
 * one option's line removed, and on one whose default was edited, names that option.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { helpText, usageLine } from './help.js';
import { optionTable, parseArgsConfig, type OptionSpec } from './option-table.js';
import { parseOptions } from './options.js';

/** The options of `table` whose `--name` or default the help text does not show on their line. */
function missingFrom(help: string, table: readonly OptionSpec[]): string[] {
  const lines = help.split('\n');
  return table
    .filter((o) => {
      const line = lines.find((l) => new RegExp(`^\\s+(-\\w, )?--${o.name}(\\s|$)`).test(l));
      return line === undefined || (o.shownDefault !== '-' && !line.includes(`(default: ${o.shownDefault})`));
    })
    .map((o) => o.name);
}

test('every option in the table appears in --help with its default', () => {
  for (const cores of [1, 7]) {
    const table = optionTable(cores);
    assert.deepEqual(missingFrom(helpText(table), table), []);
    assert.match(helpText(table), new RegExp(`--workers N +.*\\(default: ${cores} \\(one per core\\)\\)`));
  }
});

test('control: a help text missing a line, or showing another default, is caught', () => {
  const table = optionTable(2);
  const help = helpText(table);
  assert.deepEqual(missingFrom(help.split('\n').filter((l) => !l.startsWith('  --fast-path-conns ')).join('\n'), table), ['fast-path-conns']);
  assert.deepEqual(missingFrom(help.replace('(default: 4200)', '(default: 4201)'), table), ['table']);
});

test('the parser is built from the same table, and the defaults shown are the ones it fills in', () => {
  const table = optionTable(3);
  assert.deepEqual(Object.keys(parseArgsConfig(table)).sort(), table.map((o) => o.name).sort());
  for (const o of table) if (o.parseDefault !== undefined) assert.ok(o.shownDefault.startsWith(o.parseDefault), `${o.name}: shown ${o.shownDefault}, parsed ${o.parseDefault}`);
  const r = parseOptions([], 3);
  assert.ok(!r.help && !r.version);
  const o = (r as Extract<typeof r, { version: false }>).options;
  const shown = (name: string) => table.find((x) => x.name === name)!.shownDefault;
  assert.equal(o.configId, shown('config-id'));
  assert.equal(o.socket, shown('socket'));
  assert.equal(String(o.workers), shown('workers').split(' ')[0]);
  assert.equal(String(o.maxConns), shown('max-conns'));
  assert.equal(o.fastPathFlows, 0);
});

test('the usage line names every option', () => {
  const u = usageLine(optionTable(1));
  for (const o of optionTable(1)) assert.ok(new RegExp(`--${o.name}( |\\]|$)`).test(u), o.name);
});
