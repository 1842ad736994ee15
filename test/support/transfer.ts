/** Bulk transfers through a test bed's director: a download and an upload of the test pattern, both checked by SHA-256. */
import assert from 'node:assert/strict';
import type { DirectorBed } from '../../src/lab/director-bed.js';

export function downloadAndUpload(bed: DirectorBed, bytes: number, timeoutMs: number): void {
  const [get] = bed.client(['--get-bytes', String(bytes), '--timeout', String(timeoutMs)], 0, timeoutMs * 2);
  const [post] = bed.client(['--post-bytes', String(bytes), '--timeout', String(timeoutMs)], 0, timeoutMs * 2);
  assert.equal(get?.['ok'], true, JSON.stringify(get));
  assert.equal(get?.['sha256'], get?.['expected']);
  assert.equal(post?.['ok'], true, JSON.stringify(post));
  assert.equal(post?.['sha256'], post?.['expected']);
}
