/**
 * This build's version: package.json's `version` field, read once from the tree the running
 * code was loaded from (dist/src/daemon/version.js -> ../../../package.json), so a copy of the
 * tree installed elsewhere reports its own. `ulvsd --version` prints it, the start-up log line
 * and the carry-over file (carry-file.ts) name it, so an in-place upgrade shows which build
 * handed over to which.
 */
import { readFileSync } from 'node:fs';

let cached: string | undefined;

/** "0.1.0", or "unknown" when package.json cannot be read. */
export function ulvsVersion(): string {
  if (cached === undefined) {
    try {
      const v = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version?: unknown }).version;
      cached = typeof v === 'string' && v.length > 0 && v.length <= 64 ? v : 'unknown';
    } catch {
      cached = 'unknown';
    }
  }
  return cached;
}
