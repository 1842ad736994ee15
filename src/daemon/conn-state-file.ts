/**
 * The connection state file a stopping ulvsd leaves for the next one (README "Restarts and
 * upgrades"): `<state dir>/<dev>.conns`, written to a temporary name, fsync'd, then renamed,
 * so a reader sees the old file, the new file, or none, never a partial one. The reader
 * removes it once read, so a file is used by one start only.
 *
 * Layout, little-endian (the records are core/conn/handover.ts's, HANDOVER_RECORD_SIZE each):
 *
 *   off size  field
 *     0  8    magic          "ULVSCONN"
 *     8  2    version        1 (a reader refuses any other)
 *    10  2    record size    72
 *    12  4    count          records that follow
 *    16  4    records CRC    CRC-32 (IEEE, zlib's) of the record bytes
 *    20  8    written at     float64, Unix time in ms (for the log: how old the state is)
 *    28  4    header CRC     CRC-32 of bytes 0..27
 *    32  ...  records
 *
 * Anything else (another magic or version, a short file, a checksum that does not match, a
 * record that cannot be an entry) is refused whole with a reason: the daemon logs it, counts
 * it, and starts with an empty table. Nothing here throws past decodeState's StateFileError.
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { checkRecords, HANDOVER_RECORD_SIZE, REC } from '../core/conn/handover.js';

export const STATE_MAGIC = 'ULVSCONN';
export const STATE_VERSION = 1;
export const STATE_HEADER_SIZE = 32;

/** A file that cannot be used: `reason` says why (for the log). */
export class StateFileError extends Error {}

/** Records, as one buffer of `count` hand-over records. */
export interface RecordBatch {
  buf: Buffer;
  count: number;
}

/** The file's bytes for `records`, stamped `writtenAtMs`. */
export function encodeState(records: RecordBatch, writtenAtMs: number): Buffer {
  const body = records.buf.subarray(0, records.count * HANDOVER_RECORD_SIZE);
  const h = Buffer.alloc(STATE_HEADER_SIZE);
  h.write(STATE_MAGIC, 0, 'latin1');
  h.writeUInt16LE(STATE_VERSION, 8);
  h.writeUInt16LE(HANDOVER_RECORD_SIZE, 10);
  h.writeUInt32LE(records.count, 12);
  h.writeUInt32LE(crc32(body), 16);
  h.writeDoubleLE(writtenAtMs, 20);
  h.writeUInt32LE(crc32(h.subarray(0, 28)), 28);
  return Buffer.concat([h, body]);
}

/** The records of a file's bytes; throws StateFileError with the reason. */
export function decodeState(b: Buffer): RecordBatch & { writtenAtMs: number } {
  if (b.length < STATE_HEADER_SIZE) throw new StateFileError(`${b.length} bytes, shorter than the ${STATE_HEADER_SIZE}-byte header`);
  if (b.toString('latin1', 0, 8) !== STATE_MAGIC) throw new StateFileError('not a ulvs connection state file (magic)');
  if (crc32(b.subarray(0, 28)) !== b.readUInt32LE(28)) throw new StateFileError('header checksum mismatch');
  const version = b.readUInt16LE(8);
  if (version !== STATE_VERSION) throw new StateFileError(`version ${version}, this ulvsd reads version ${STATE_VERSION}${version > STATE_VERSION ? ' (written by a newer ulvsd)' : ''}`);
  if (b.readUInt16LE(10) !== HANDOVER_RECORD_SIZE) throw new StateFileError(`record size ${b.readUInt16LE(10)}, expected ${HANDOVER_RECORD_SIZE}`);
  const count = b.readUInt32LE(12);
  const want = STATE_HEADER_SIZE + count * HANDOVER_RECORD_SIZE;
  if (b.length !== want) throw new StateFileError(`${b.length} bytes for ${count} records, expected ${want} (truncated or padded)`);
  const buf = b.subarray(STATE_HEADER_SIZE);
  if (crc32(buf) !== b.readUInt32LE(16)) throw new StateFileError('records checksum mismatch');
  const bad = checkRecords(buf, count);
  if (bad) throw new StateFileError(`record ${bad.index}: ${bad.reason}`);
  return { buf, count, writtenAtMs: b.readDoubleLE(20) };
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

/** Write the file atomically (writeAtomically). Throws the system's error. */
export function writeStateFile(path: string, records: RecordBatch, writtenAtMs = Date.now()): void {
  writeAtomically(path, encodeState(records, writtenAtMs));
}

/** What a start found: no file, a file refused (why), or the records. */
export type TakenState = { kind: 'none' } | { kind: 'refused'; reason: string } | ({ kind: 'records' } & RecordBatch & { writtenAtMs: number });

/**
 * Read and remove the file at `path` (a state file is used once, whatever its content) and
 * decode it: 'none' when absent, 'refused' with the reason when unreadable or when `decode`
 * throws (StateFileError's message), else `decode`'s result. Never throws.
 */
export function takeFile<T>(path: string, decode: (b: Buffer) => T): { kind: 'none' } | { kind: 'refused'; reason: string } | { kind: 'ok'; value: T } {
  let b: Buffer;
  try {
    b = readFileSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'none' };
    return { kind: 'refused', reason: `cannot read: ${(e as Error).message}` };
  }
  try {
    unlinkSync(path);
  } catch {
    /* gone already: it was read */
  }
  try {
    return { kind: 'ok', value: decode(b) };
  } catch (e) {
    return { kind: 'refused', reason: e instanceof StateFileError ? e.message : String(e) };
  }
}

/** Read and remove the connection state file (takeFile). Never throws. */
export function takeStateFile(path: string): TakenState {
  const t = takeFile(path, decodeState);
  return t.kind === 'ok' ? { kind: 'records', ...t.value } : t;
}

/** One batch of the workers' batches (each with its own template indexes), in order. */
export function concatBatches(batches: readonly RecordBatch[]): RecordBatch {
  const count = batches.reduce((a, x) => a + x.count, 0);
  const buf = Buffer.alloc(count * HANDOVER_RECORD_SIZE);
  let n = 0;
  for (const x of batches) {
    x.buf.copy(buf, n * HANDOVER_RECORD_SIZE, 0, x.count * HANDOVER_RECORD_SIZE);
    for (let i = 0; i < x.count; i++) {
      const o = (n + i) * HANDOVER_RECORD_SIZE + REC.template;
      const t = buf.readInt32LE(o);
      if (t >= 0) buf.writeInt32LE(t + n, o);
    }
    n += x.count;
  }
  return { buf, count };
}

/**
 * Split records among `parts` workers by `partOf(buf, offset)` (the worker steering sends the
 * record's packets to). A template link survives when both records go to the same part (the
 * steering keeps a persistent service's client network in one worker); else it is dropped.
 */
export function splitRecords(all: RecordBatch, parts: number, partOf: (buf: Buffer, off: number) => number): RecordBatch[] {
  const part = new Int32Array(all.count);
  const local = new Int32Array(all.count);
  const counts = new Array<number>(parts).fill(0);
  for (let i = 0; i < all.count; i++) {
    const p = partOf(all.buf, i * HANDOVER_RECORD_SIZE);
    part[i] = p;
    local[i] = counts[p]!++;
  }
  const out = counts.map((c) => ({ buf: Buffer.alloc(c * HANDOVER_RECORD_SIZE), count: c }));
  for (let i = 0; i < all.count; i++) {
    const dst = out[part[i]!]!;
    const o = local[i]! * HANDOVER_RECORD_SIZE;
    all.buf.copy(dst.buf, o, i * HANDOVER_RECORD_SIZE, (i + 1) * HANDOVER_RECORD_SIZE);
    const t = dst.buf.readInt32LE(o + REC.template);
    dst.buf.writeInt32LE(t >= 0 && part[t] === part[i] ? local[t]! : -1, o + REC.template);
  }
  return out;
}
