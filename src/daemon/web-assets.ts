/**
 * The dashboard's files (issue 15), served by the metrics listener (http.ts): `web/` at the
 * package's root (beside dist/, shipped with it), a fixed list of names, read once at the first
 * request and kept. No framework and no network: the page loads nothing from elsewhere, and
 * the Content-Security-Policy header says so to the browser.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** URL path -> file in web/ and its content type. */
export const WEB_FILES: Record<string, { file: string; type: string }> = {
  '/': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/dashboard.css': { file: 'dashboard.css', type: 'text/css; charset=utf-8' },
  '/dashboard.js': { file: 'dashboard.js', type: 'text/javascript; charset=utf-8' },
};

/** This package's web/ (dist/src/daemon/web-assets.js -> ../../../web/). */
export const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

export const WEB_HEADERS = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
  'content-security-policy': "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
};

const cache = new Map<string, Buffer>();

/** The file for `path`, or null when it is not one of WEB_FILES; throws when it cannot be read. */
export function webAsset(path: string, dir = WEB_DIR): { body: Buffer; type: string } | null {
  if (!Object.hasOwn(WEB_FILES, path)) return null;
  const f = WEB_FILES[path]!;
  const key = dir + f.file;
  let body = cache.get(key);
  if (!body) {
    body = readFileSync(dir + f.file);
    cache.set(key, body);
  }
  return { body, type: f.type };
}
