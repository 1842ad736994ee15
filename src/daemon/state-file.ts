/**
 * What ulvsd's state files for the next process share (conn-state-file.ts: the connections;
 * carry-file.ts: counters, cursors, health): a 32-byte little-endian header, an atomic write,
 * and a reader that takes a file once.
 *
 *   off size  field
 *     0  8    magic          the file's kind
 *     8  2    version        the file's format; a reader refuses any other
 *    10  2    word           the file's own (the connection file: its record size)
 *    12  4    count          the file's own (records, or body bytes)
 *    16  4    body CRC       CRC-32 (IEEE, zlib's) of what follows the header
 *    20  8    written at     float64, Unix time in ms (for the log: how old the state is)
 *    28  4    header CRC     CRC-32 of bytes 0..27
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';

export const STATE_HEADER_SIZE = 32;

/** A file that cannot be used: `reason` says why (for the log). */
export class StateFileError extends Error {}

export interface StateHeader {
  magic: string;
  version: number;
  word: number;
  count: number;
}

/** The header for `body` followed by `body`. */
export function withHeader(h: StateHeader, body: Buffer, writtenAtMs: number): Buffer {
  const b = Buffer.alloc(STATE_HEADER_SIZE);
  b.write(h.magic, 0, 'latin1');
  b.writeUInt16LE(h.version, 8);
  b.writeUInt16LE(h.word, 10);
  b.writeUInt32LE(h.count, 12);
  b.writeUInt32LE(crc32(body), 16);
  b.writeDoubleLE(writtenAtMs, 20);
  b.writeUInt32LE(crc32(b.subarray(0, 28)), 28);
  return Buffer.concat([b, body]);
}

/**
 * The header of file bytes `b` of kind `magic` (`what`: its name for the messages), checked:
 * long enough, the magic, the header CRC, the version (a newer one says so). Throws
 * StateFileError. The body's length and CRC are the caller's to check (bodyOk).
 */
export function readHeader(b: Buffer, magic: string, version: number, what: string): StateHeader & { writtenAtMs: number; body: Buffer; bodyOk: boolean } {
  if (b.length < STATE_HEADER_SIZE) throw new StateFileError(`${b.length} bytes, shorter than the ${STATE_HEADER_SIZE}-byte header`);
  if (b.toString('latin1', 0, 8) !== magic) throw new StateFileError(`not a ulvs ${what} (magic)`);
  if (crc32(b.subarray(0, 28)) !== b.readUInt32LE(28)) throw new StateFileError('header checksum mismatch');
  const v = b.readUInt16LE(8);
  if (v !== version) throw new StateFileError(`version ${v}, this ulvsd reads version ${version}${v > version ? ' (written by a newer ulvsd)' : ''}`);
  const body = b.subarray(STATE_HEADER_SIZE);
  return { magic, version, word: b.readUInt16LE(10), count: b.readUInt32LE(12), writtenAtMs: b.readDoubleLE(20), body, bodyOk: crc32(body) === b.readUInt32LE(16) };
}

/** Write `bytes` to `path` atomically (temporary name, fsync, rename; mode 0600): a reader
 *  sees the old file, the new one, or none. Throws the system's error. */
export function writeAtomically(path: string, bytes: Buffer): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, bytes);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * Read and remove the file at `path` (a state file is used once, whatever its content) and
 * decode it: 'none' when absent, 'refused' with the reason when unreadable or when `decode`
 * throws (StateFileError's message), else `decode`'s result. `keepUsable`: a file that decodes
 * is left in place for the caller to remove once it is used (removeStateFile), so a start
 * refused before that point leaves it to the next one. Never throws.
 */
export function takeFile<T>(path: string, decode: (b: Buffer) => T, keepUsable = false): { kind: 'none' } | { kind: 'refused'; reason: string } | { kind: 'ok'; value: T } {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    return { kind: 'refused', reason: `cannot read: ${(e as Error).message}` };
  }
  let r: { kind: 'refused'; reason: string } | { kind: 'ok'; value: T };
  try {
    r = { kind: 'ok', value: decode(b) };
  } catch (e) {
    r = { kind: 'refused', reason: e instanceof StateFileError ? e.message : String(e) };
  }
  if (r.kind === 'refused' || !keepUsable) removeStateFile(path);
  return r;
}

/** Remove a state file; never throws (absent: nothing to do). */
export function removeStateFile(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    /* gone already */
  }
}
