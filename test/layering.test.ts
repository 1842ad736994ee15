/**
 * The layering of docs/architecture.md, checked on the source: wire/ and core/ do no I/O and
 * read no clock or randomness; every folder imports only the folders below it; no two files
 * import each other, directly or round a longer cycle; and nothing on the data path may block
 * its thread (Atomics.wait).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
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

/** Each folder of src/ and the folders it may import (itself included). Every folder is listed:
 *  a new one fails the test until it is placed. */
const ALLOWED: Record<string, string[]> = {
  wire: ['wire'],
  core: ['wire', 'core'],
  sched: ['core', 'sched'],
  health: ['wire', 'health'],
  metrics: ['wire', 'core', 'metrics'],
  control: ['wire', 'core', 'sched', 'health', 'metrics', 'control'],
  datapath: ['wire', 'core', 'sched', 'datapath'],
  lab: ['wire', 'datapath', 'lab'],
  rs: ['wire', 'datapath', 'rs'],
  doctor: ['wire', 'control', 'doctor'],
  daemon: ['wire', 'core', 'sched', 'health', 'metrics', 'control', 'datapath', 'lab', 'daemon'],
  cli: ['wire', 'core', 'sched', 'health', 'metrics', 'control', 'datapath', 'lab', 'rs', 'doctor', 'daemon', 'cli'],
};
/** Folders whose code runs on a data-path thread: they may never sleep it. */
const DATA_PATH = ['wire', 'core', 'sched', 'datapath'];

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

test('every folder of src/ has a place in the layering', () => {
  const folders = readdirSync(src).filter((n) => statSync(join(src, n)).isDirectory());
  assert.deepEqual(folders.filter((f) => !(f in ALLOWED)), []);
});

test('imports go only downward: wire -> nothing, core -> wire, sched -> core, ..., cli -> all', () => {
  const bad: string[] = [];
  for (const [layer, allowed] of Object.entries(ALLOWED)) {
    if (!existsSync(join(src, layer))) continue;
    for (const f of files(join(src, layer))) {
      for (const imp of importsOf(readFileSync(f, 'utf8'))) {
        if (!imp.startsWith('.')) {
          // packages: none in wire/ and core/ (no I/O), node's own in sched/, any elsewhere
          if (layer !== 'wire' && layer !== 'core' && (layer !== 'sched' || imp.startsWith('node:'))) continue;
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

/** file -> the src files it imports (type-only imports included: a type cycle is still a cycle) */
function importGraph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const f of files(src)) {
    const deps = importsOf(readFileSync(f, 'utf8'))
      .filter((i) => i.startsWith('.'))
      .map((i) => join(f, '..', i).replace(/\.js$/, '.ts'));
    g.set(f, deps);
  }
  return g;
}

/** One cycle of g as a list of files, or null. */
function findCycle(g: Map<string, string[]>): string[] | null {
  const state = new Map<string, 1 | 2>(); // 1 on the current path, 2 done
  const path: string[] = [];
  const visit = (f: string): string[] | null => {
    state.set(f, 1);
    path.push(f);
    for (const d of g.get(f) ?? []) {
      if (state.get(d) === 1) return [...path.slice(path.indexOf(d)), d];
      if (state.get(d) === undefined && g.has(d)) {
        const c = visit(d);
        if (c) return c;
      }
    }
    path.pop();
    state.set(f, 2);
    return null;
  };
  for (const f of g.keys()) {
    if (state.get(f) !== undefined) continue;
    const c = visit(f);
    if (c) return c;
  }
  return null;
}

test('no import cycles between files (types included)', () => {
  const c = findCycle(importGraph());
  assert.equal(c && c.map((f) => relative(src, f)).join(' -> '), null);
});

test('nothing on a data-path thread blocks it: no Atomics.wait in wire/, core/, sched/, datapath/', () => {
  const bad: string[] = [];
  for (const layer of DATA_PATH)
    for (const f of files(join(src, layer))) if (/\bAtomics\.wait(Async)?\b/.test(code(readFileSync(f, 'utf8')))) bad.push(relative(root, f));
  assert.deepEqual(bad, []);
});

test('the check itself catches a violation (it can fail)', () => {
  const g = new Map([
    ['a', ['b']],
    ['b', ['c']],
    ['c', ['a']],
  ]);
  assert.deepEqual(findCycle(g), ['a', 'b', 'c', 'a']);
  assert.equal(findCycle(new Map([['a', ['b']], ['b', []]])), null);
  assert.deepEqual(importsOf("import { readFileSync } from 'node:fs';\nimport x from './y.js';"), ['node:fs', './y.js']);
  assert.ok(/\bDate\.now\b/.test(code('const t = Date.now(); // ok')));
  assert.ok(!/\bDate\.now\b/.test(code('/* Date.now */ // Date.now')));
});
