/**
 * Reading a received sync datagram (the kernel's ip_vs_process_message): header checks, version
 * detection, then each record in turn, handed to a visitor as soon as it is read (the kernel
 * applies records one by one, so a fault late in a datagram leaves the earlier records applied;
 * a backup that must match a kernel backup's table does the same).
 *
 * Rules, in the kernel's order:
 *  1. fewer than 4 bytes: drop. Header size != datagram length: drop.
 *  2. own syncid != 0 and the message's syncid (byte 1 in both versions) differs: ignore.
 *  3. v1 iff version == 1 and reserved == 0 and spare == 0; anything else is read as v0.
 *  4. v1, per record: < 36 bytes left, length past the datagram, version nibble != 0, and the
 *     record faults of decode-v1.ts end the message; record codes skip one record. The next
 *     record starts at the previous one's start + its length rounded up to 4.
 *  5. v0, per record: < 24 bytes left or a sequence block past the end ends the message.
 * Bytes after the last counted record are ignored (as the kernel). Never throws; allocation-free.
 */
import { readU16 } from '../ipv4.js';
import { SVER_MASK, SVER_SHIFT, SYNC_PROTO_VER, V0_CONN_LEN, V0_HEADER_LEN, V1_HEADER_LEN, V1_V4_LEN } from './constants.js';
import { readV1Record } from './decode-v1.js';
import { SyncRecord } from './record.js';
import { FIRST_RECORD_REASON, SYNC_REASON_NAMES, SyncReason, type SyncReasonCode } from './reasons.js';
import { readV0Record } from './v0.js';

/** Called with each well-formed record; returns true when it took the record, false when it
 *  left it out (it counts its own reasons). The record object is reused: copy what you keep. */
export type SyncRecordVisitor = (r: SyncRecord) => boolean;

export class SyncDecoder {
  /** the record handed to the visitor (reused) */
  readonly record = new SyncRecord();
  /** messages and records by SyncReason code, summed over every decode() (Ok counts messages
   *  read to their end; Drop* count messages; Skip* count records) */
  readonly counters = new Float64Array(SYNC_REASON_NAMES.length);
  /** records taken by the visitor, over every decode() */
  recordsTaken = 0;
  // The last message:
  /** 0 or 1 (-1 before the header was read) */
  version = -1;
  syncid = 0;
  /** records the header announces */
  nrConns = 0;
  /** records handed to the visitor and taken */
  taken = 0;
  /** records left out (Skip* codes) */
  skipped = 0;

  /**
   * Read the datagram buf[off, off+len). `ownSyncId` is the backup's --syncid (0 accepts all).
   * Returns Ok or the Drop* code that ended it.
   */
  decode(buf: Uint8Array, off: number, len: number, ownSyncId: number, visit: SyncRecordVisitor): SyncReasonCode {
    this.version = -1;
    this.syncid = 0;
    this.nrConns = 0;
    this.taken = 0;
    this.skipped = 0;
    const code = this.#decode(buf, off, len, ownSyncId, visit);
    this.counters[code]!++;
    return code;
  }

  #decode(buf: Uint8Array, off: number, len: number, ownSyncId: number, visit: SyncRecordVisitor): SyncReasonCode {
    if (len < V0_HEADER_LEN || off < 0 || off + len > buf.length) return SyncReason.DropTooShort;
    if (readU16(buf, off + 2) !== len) return SyncReason.DropSizeMismatch;
    this.syncid = buf[off + 1]!;
    if (ownSyncId !== 0 && this.syncid !== ownSyncId) return SyncReason.DropSyncId;
    const end = off + len;
    if (len >= V1_HEADER_LEN && buf[off + 5] === SYNC_PROTO_VER && buf[off] === 0 && buf[off + 6] === 0 && buf[off + 7] === 0) {
      this.version = 1;
      return this.#v1(buf, off, end, visit);
    }
    this.version = 0;
    return this.#v0(buf, off, end, visit);
  }

  #v1(buf: Uint8Array, off: number, end: number, visit: SyncRecordVisitor): SyncReasonCode {
    const n = (this.nrConns = buf[off + 4]!);
    const r = this.record;
    let p = off + V1_HEADER_LEN;
    for (let i = 0; i < n; i++) {
      if (p + V1_V4_LEN > end) return SyncReason.DropRecordTruncated;
      const verSize = readU16(buf, p + 2);
      const size = verSize & SVER_MASK;
      const recEnd = p + size;
      if (recEnd > end) return SyncReason.DropRecordPastEnd;
      if (verSize >> SVER_SHIFT !== 0) return SyncReason.DropRecordVersion;
      const code = readV1Record(buf, p, recEnd, r);
      if (code !== SyncReason.Ok) {
        if (code < FIRST_RECORD_REASON) return code;
        this.#skip(code);
      } else this.#offer(r, visit);
      p += (size + 3) & ~3;
    }
    return SyncReason.Ok;
  }

  #v0(buf: Uint8Array, off: number, end: number, visit: SyncRecordVisitor): SyncReasonCode {
    const n = (this.nrConns = buf[off]!);
    const r = this.record;
    let p = off + V0_HEADER_LEN;
    for (let i = 0; i < n; i++) {
      if (p + V0_CONN_LEN > end) return SyncReason.DropV0Truncated;
      const code = readV0Record(buf, p, end, r);
      if (code !== SyncReason.Ok && code < FIRST_RECORD_REASON) return code;
      p += r.size;
      if (code !== SyncReason.Ok) this.#skip(code);
      else this.#offer(r, visit);
    }
    return SyncReason.Ok;
  }

  #skip(code: SyncReasonCode): void {
    this.skipped++;
    this.counters[code]!++;
  }

  #offer(r: SyncRecord, visit: SyncRecordVisitor): void {
    if (visit(r)) {
      this.taken++;
      this.recordsTaken++;
    } else this.#skip(SyncReason.SkipByVisitor);
  }
}
