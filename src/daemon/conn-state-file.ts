/**
 * The connection state file a stopping ulvsd leaves for the next one (README "Restarts and
 * upgrades"): `<state dir>/<dev>.conns`, written to a temporary name, fsync'd, then renamed,
 * so a reader sees the old file, the new file, or none, never a partial one. The reader
 * removes it once read, so a file is used by one start only.
 *
 * Layout, little-endian (state-file.ts; the records are core/conn/handover.ts's, HANDOVER_RECORD_SIZE each):
 *
 *   off size  field
 *     0  8    magic          "ULVSCONN"
 *     8  2    version        1 (a reader refuses any other)
 *    10  2    record size    80 (72: written before fwmark and seq_delta, read and widened)
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
import { checkRecords, HANDOVER_RECORD_SIZE, LEGACY_RECORD_SIZE, REC, widenLegacyRecords } from '../core/conn/handover.js';
import { readHeader, STATE_HEADER_SIZE, StateFileError, takeFile, withHeader, writeAtomically } from './state-file.js';

export const STATE_MAGIC = 'ULVSCONN';
export const STATE_VERSION = 1;

/** Records, as one buffer of `count` hand-over records. */
export interface RecordBatch {
  buf: Buffer;
  count: number;
}

/** The file's bytes for `records`, stamped `writtenAtMs`. */
export function encodeState(records: RecordBatch, writtenAtMs: number): Buffer {
  const body = records.buf.subarray(0, records.count * HANDOVER_RECORD_SIZE);
  return withHeader({ magic: STATE_MAGIC, version: STATE_VERSION, word: HANDOVER_RECORD_SIZE, count: records.count }, body, writtenAtMs);
}

/** The records of a file's bytes; throws StateFileError with the reason. */
export function decodeState(b: Buffer): RecordBatch & { writtenAtMs: number } {
  const h = readHeader(b, STATE_MAGIC, STATE_VERSION, 'connection state file');
  if (h.word !== HANDOVER_RECORD_SIZE && h.word !== LEGACY_RECORD_SIZE) throw new StateFileError(`record size ${h.word}, expected ${HANDOVER_RECORD_SIZE}`);
  const want = STATE_HEADER_SIZE + h.count * h.word;
  if (b.length !== want) throw new StateFileError(`${b.length} bytes for ${h.count} records, expected ${want} (truncated or padded)`);
  if (!h.bodyOk) throw new StateFileError('records checksum mismatch');
  const body = h.word === LEGACY_RECORD_SIZE ? widenLegacyRecords(h.body, h.count) : h.body; // an older build's file
  const bad = checkRecords(body, h.count);
  if (bad) throw new StateFileError(`record ${bad.index}: ${bad.reason}`);
  return { buf: body, count: h.count, writtenAtMs: h.writtenAtMs };
}

/** Write the file atomically (writeAtomically). Throws the system's error. */
export function writeStateFile(path: string, records: RecordBatch, writtenAtMs = Date.now()): void {
  writeAtomically(path, encodeState(records, writtenAtMs));
}

/** What a start found: no file, a file refused (why), or the records. */
export type TakenState = { kind: 'none' } | { kind: 'refused'; reason: string } | ({ kind: 'records' } & RecordBatch & { writtenAtMs: number });

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
