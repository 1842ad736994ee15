/**
 * design.md's layering, checked on the source: wire/ and core/ do no I/O and read no clock or
 * randomness; imports only go in the allowed directions.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../..', import.meta.url)); // dist/test -> repo root
const src = join(root, 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return files(p);
    return n.endsWith('.ts') && !n.endsWith('.test.ts') ? [p] : [];
  });
}
/** strip comments so prose about Date.now etc. does not count */
const code = (text: string) => text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
const importsOf = (text: string) => [...code(text).matchAll(/^\s*(?:import|export)\s[^'";]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);

const ALLOWED: Record<string, string[]> = {
  wire: ['wire'],
  core: ['wire', 'core'],
  sched: ['core', 'sched'],
};

test('wire/ and core/ import no I/O module and read no clock or randomness', () => {
  const bad: string[] = [];
  for (const layer of ['wire', 'core']) {
    for (const f of files(join(src, layer))) {
      const text = readFileSync(f, 'utf8');
      for (const imp of importsOf(text)) {
        if (imp.startsWith('node:') || !imp.startsWith('.')) bad.push(`${relative(root, f)} imports ${imp}`);
      }
      const c = code(text);
      for (const re of [/\bDate\.now\b/, /\bnew Date\b/, /\bMath\.random\b/, /\bperformance\.now\b/, /\bprocess\.hrtime\b/, /\bset(Timeout|Interval|Immediate)\b/, /\brequire\(/, /\bprocess\.(env|argv|stdout|stderr)\b/])
        if (re.test(c)) bad.push(`${relative(root, f)} uses ${re.source}`);
    }
  }
  assert.deepEqual(bad, []);
});

test('imports follow design.md: wire -> nothing, core -> wire, sched -> core types', () => {
  const bad: string[] = [];
  for (const [layer, allowed] of Object.entries(ALLOWED)) {
    for (const f of files(join(src, layer))) {
      for (const imp of importsOf(readFileSync(f, 'utf8'))) {
        if (!imp.startsWith('.')) {
          if (layer !== 'wire' && layer !== 'core' && imp.startsWith('node:')) continue;
          bad.push(`${relative(root, f)} imports ${imp}`);
          continue;
        }
        const target = relative(src, join(f, '..', imp)).split('/')[0]!;
        if (!allowed.includes(target)) bad.push(`${relative(root, f)} imports ${imp} (${layer} -> ${target})`);
      }
    }
  }
  assert.deepEqual(bad, []);
});

test('the check itself catches a violation (it can fail)', () => {
  assert.deepEqual(importsOf("import { readFileSync } from 'node:fs';\nimport x from './y.js';"), ['node:fs', './y.js']);
  assert.ok(/\bDate\.now\b/.test(code('const t = Date.now(); // ok')));
  assert.ok(!/\bDate\.now\b/.test(code('/* Date.now */ // Date.now')));
});
