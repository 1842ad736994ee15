/**
 * The carry-over file a stopping ulvsd leaves beside the connection state file (README
 * "Restarts and upgrades"): `<state dir>/<dev>.net<inode>.carry`, the counters, rate
 * estimators and scheduler cursors of core/carry-over.ts. Written and taken as the connection
 * file is (state-file.ts: the header, writeAtomically, takeFile: removed once read).
 *
 * Layout: a 32-byte little-endian header, then the carry as JSON (UTF-8) with a `writer` field
 * ("ulvsd 0.1.0", version.ts: which build wrote it, for the log) and, in keepalived mode, a
 * `health` field: each real server's health by its key (control/keepalived/desired.ts rsKey),
 * so a server that was up starts up (health.ts). The services and servers are named by
 * identity and the counters by name, so another build reads what it knows and ignores the rest.
 *
 *   off size  field
 *     0  8    magic          "ULVSCARY"
 *     8  2    version        1 (a reader refuses any other: a newer writer may mean otherwise)
 *    10  2    reserved       0
 *    12  4    body length    bytes of JSON that follow
 *    16  4    body CRC       CRC-32 (IEEE, zlib's) of the body
 *    20  8    written at     float64, Unix time in ms
 *    28  4    header CRC     CRC-32 of bytes 0..27
 *    32  ...  body
 *
 * Anything else (another magic or version, a length or checksum that does not match, JSON that
 * is not a carry: a missing field, a negative or non-finite count, an address out of range) is
 * refused whole with the reason, and the start goes on from zero. Nothing here throws past
 * decodeCarry's StateFileError.
 */
import { z } from 'zod';
import type { EngineCarry } from '../core/carry-over.js';
import type { ServerHealth } from '../health/monitor.js';
import { STAT_COUNT } from '../core/stats.js';
import { readHeader, STATE_HEADER_SIZE, StateFileError, takeFile, withHeader, writeAtomically } from './state-file.js';
import { ulvsVersion } from './version.js';

export const CARRY_MAGIC = 'ULVSCARY';
export const CARRY_VERSION = 1;

const count = z.number().finite().nonnegative();
const u32 = z.number().int().min(0).max(0xffffffff);
const port = z.number().int().min(0).max(0xffff);
/** estimates may be negative for a moment (the estimator's floor of a negative step), never non-finite */
const stats = z.object({ c: z.array(count).length(STAT_COUNT), last: z.array(count).length(STAT_COUNT), est: z.array(z.number().finite()).length(STAT_COUNT) });
const health = z.object({ alive: z.boolean(), reason: z.string().max(1000), dynamicWeight: z.number().int().min(0).max(0xffff).optional() });
const carrySchema = z.object({
  writer: z.string().max(80).optional(),
  health: z.record(health).optional(),
  totals: stats,
  services: z.array(
    z.object({
      proto: z.union([z.literal(6), z.literal(17)]),
      addr: u32,
      port,
      stats,
      dests: z.array(z.object({ addr: u32, port, stats })),
      cursor: z.object({ scheduler: z.string().max(32), server: z.object({ addr: u32, port }).nullable(), weight: z.number().int().min(0).max(0xffff) }).nullable(),
    }),
  ),
  counters: z.record(count),
});

/** What the file holds: the engines' carry and, in keepalived mode, the servers' health by key. */
export interface CarryFileBody {
  carry: EngineCarry;
  health: Record<string, ServerHealth>;
}

/** The file's bytes for `b`, stamped `writtenAtMs` and `writer`. */
export function encodeCarry(b: CarryFileBody, writtenAtMs: number, writer = `ulvsd ${ulvsVersion()}`): Buffer {
  const body = Buffer.from(JSON.stringify({ writer, health: b.health, ...b.carry }), 'utf8');
  return withHeader({ magic: CARRY_MAGIC, version: CARRY_VERSION, word: 0, count: body.length }, body, writtenAtMs);
}

/** The carry of a file's bytes; throws StateFileError with the reason. */
export function decodeCarry(b: Buffer): CarryFileBody & { writtenAtMs: number; writer: string } {
  const h = readHeader(b, CARRY_MAGIC, CARRY_VERSION, 'carry-over file');
  if (b.length !== STATE_HEADER_SIZE + h.count) throw new StateFileError(`${b.length} bytes for a ${h.count}-byte body, expected ${STATE_HEADER_SIZE + h.count} (truncated or padded)`);
  if (!h.bodyOk) throw new StateFileError('body checksum mismatch');
  const body = h.body;
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch (e) {
    throw new StateFileError(`body is not JSON: ${(e as Error).message}`);
  }
  const r = carrySchema.safeParse(json);
  if (!r.success) {
    const i = r.error.issues[0]!;
    throw new StateFileError(`body: ${i.path.join('.') || '(root)'}: ${i.message}`);
  }
  const { writer, health, ...carry } = r.data;
  return { carry, health: health ?? {}, writtenAtMs: h.writtenAtMs, writer: writer ?? 'an unnamed ulvsd' };
}

/** Write the file atomically (state-file.ts writeAtomically). Throws the system's error. */
export function writeCarryFile(path: string, b: CarryFileBody, writtenAtMs = Date.now()): void {
  writeAtomically(path, encodeCarry(b, writtenAtMs));
}

/** What a start found: no file, a file refused (why), or the carry. */
export type TakenCarry = { kind: 'none' } | { kind: 'refused'; reason: string } | ({ kind: 'carry'; writtenAtMs: number; writer: string } & CarryFileBody);

/** Read the file; a refused one is removed, a usable one is left for the caller to remove
 *  once used (state-file.ts takeFile, removeStateFile). Never throws. */
export function takeCarryFile(path: string): TakenCarry {
  const t = takeFile(path, decodeCarry, true);
  return t.kind === 'ok' ? { kind: 'carry', ...t.value } : t;
}
