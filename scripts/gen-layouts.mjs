#!/usr/bin/env node
// Writes src/datapath/tun/layouts.gen.ts: the layouts of the structures the eBPF programs share
// with TypeScript (bpf/ulvs_maps.h), read from the BTF of the compiled objects (what clang laid
// out, not a second description), and the values of the header's enums (each must be written
// `NAME = number`). Run by `npm run bpf` after the build; layouts.test.ts checks the result.
// Usage: node scripts/gen-layouts.mjs [--check]   (--check: exit 1 if the file is out of date)
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { renderLayouts } = await import(join(root, 'dist/src/datapath/tun/layouts.js'));
const out = join(root, 'src/datapath/tun/layouts.gen.ts');
const text = renderLayouts(root);
if (process.argv.includes('--check')) {
  if (readFileSync(out, 'utf8') !== text) {
    console.error(`${out} is out of date: run npm run bpf`);
    process.exit(1);
  }
} else writeFileSync(out, text);
