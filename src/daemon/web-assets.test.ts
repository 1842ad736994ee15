import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { WEB_DIR, WEB_FILES, webAsset } from './web-assets.js';

test('web assets: every listed file is in web/, with its type; the page refers only to them', () => {
  for (const [path, f] of Object.entries(WEB_FILES)) {
    assert.ok(existsSync(WEB_DIR + f.file), `${path}: ${WEB_DIR + f.file}`);
    const a = webAsset(path)!;
    assert.equal(a.type, f.type);
    assert.ok(a.body.length > 0);
  }
  const html = readFileSync(WEB_DIR + 'index.html', 'utf8');
  const refs = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
  for (const r of refs) assert.ok(!/^[a-z]+:|^\/\//i.test(r), `no other origin: ${r}`);
  for (const r of refs.filter((x) => /\.(js|css)$/.test(x))) assert.ok(Object.hasOwn(WEB_FILES, `/${r}`), `${r} is served`);
});

test('web assets: any other path is not a file (null), including names of Object.prototype and traversal', () => {
  for (const p of ['/index.html', '/../package.json', '/__proto__', '/constructor', '/toString', '', '/dashboard.js/']) assert.equal(webAsset(p), null, p);
});
