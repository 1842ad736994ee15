/**
 * Version 0 (legacy, net.ipv4.vs.sync_version=0): the kernel's ip_vs_sync_conn_v0 and
 * ip_vs_process_message_v0. IPv4 only; no timeout, no firewall mark, no options, no padding.
 *
 * Header, 4 bytes (struct ip_vs_sync_mesg_v0): off 0 u8 nr_conns, off 1 u8 syncid, off 2 be16 size.
 * Record, 24 bytes (struct ip_vs_sync_conn_v0):
 *   off 0 u8 reserved   off 1 u8 protocol   off 2/4/6 be16 cport, vport, dport
 *   off 8/12/16 be32 caddr, vaddr, daddr    off 20 be16 flags (HASHED clear; bits >= 16 lost)
 *   off 22 be16 state
 * If flags & SEQ_MASK (0x0600) the record is followed by 24 bytes of sequence data (struct
 * ip_vs_sync_conn_options: in_seq then out_seq, each init_seq, delta, previous_delta) that the
 * kernel copies from its memory as they are: HOST byte order, unlike everything else. Read and
 * written here as little-endian (x86, arm64), which is what a v0 master on those sends.
 */
import { readU16, readU32, writeU16, writeU32 } from '../ipv4.js';
import { KFlag, SEQ_BLOCK_LEN, V0_CONN_LEN } from './constants.js';
import { checkProtocolState } from './decode-v1.js';
import type { SyncRecord } from './record.js';
import { SyncReason, type SyncReasonCode } from './reasons.js';

function readLE32(b: Uint8Array, o: number): number {
  return (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
}
function writeLE32(b: Uint8Array, o: number, v: number): void {
  b[o] = v & 0xff;
  b[o + 1] = (v >>> 8) & 0xff;
  b[o + 2] = (v >>> 16) & 0xff;
  b[o + 3] = (v >>> 24) & 0xff;
}

/** Bytes record r takes in a v0 message (24, or 48 with the sequence block). */
export function v0RecordLength(r: SyncRecord): number {
  return (r.flags & KFlag.SEQ_MASK) !== 0 ? V0_CONN_LEN + SEQ_BLOCK_LEN : V0_CONN_LEN;
}

export function writeV0Header(buf: Uint8Array, off: number, syncid: number, size: number, nrConns: number): void {
  buf[off] = nrConns;
  buf[off + 1] = syncid;
  writeU16(buf, off + 2, size);
}

/** Write IPv4 record r at buf[off]; returns its length. The flags keep their low 16 bits, HASHED
 *  cleared; the sequence block is written when flags has IN_SEQ or OUT_SEQ (as the kernel). */
export function writeV0Record(buf: Uint8Array, off: number, r: SyncRecord): number {
  buf[off] = 0;
  buf[off + 1] = r.protocol;
  writeU16(buf, off + 2, r.cport);
  writeU16(buf, off + 4, r.vport);
  writeU16(buf, off + 6, r.dport);
  writeU32(buf, off + 8, r.caddr);
  writeU32(buf, off + 12, r.vaddr);
  writeU32(buf, off + 16, r.daddr);
  writeU16(buf, off + 20, r.flags & ~KFlag.HASHED & 0xffff);
  writeU16(buf, off + 22, r.state);
  if ((r.flags & KFlag.SEQ_MASK) === 0) return V0_CONN_LEN;
  const q = off + V0_CONN_LEN;
  writeLE32(buf, q, r.inSeqInit);
  writeLE32(buf, q + 4, r.inSeqDelta);
  writeLE32(buf, q + 8, r.inSeqPrevDelta);
  writeLE32(buf, q + 12, r.outSeqInit);
  writeLE32(buf, q + 16, r.outSeqDelta);
  writeLE32(buf, q + 20, r.outSeqPrevDelta);
  return V0_CONN_LEN + SEQ_BLOCK_LEN;
}

/**
 * Read the v0 record at buf[p] (p + 24 <= end checked by the caller) into r. Returns its length
 * in `r.size`, and Ok, DropV0SeqTruncated (the rest of the message is dropped) or a Skip* code.
 */
export function readV0Record(buf: Uint8Array, p: number, end: number, r: SyncRecord): SyncReasonCode {
  r.clearOptions();
  r.version = 0;
  r.af = 4;
  r.offset = p;
  r.protocol = buf[p + 1]!;
  r.cport = readU16(buf, p + 2);
  r.vport = readU16(buf, p + 4);
  r.dport = readU16(buf, p + 6);
  r.caddr = readU32(buf, p + 8);
  r.vaddr = readU32(buf, p + 12);
  r.daddr = readU32(buf, p + 16);
  r.flags = readU16(buf, p + 20);
  r.state = readU16(buf, p + 22);
  r.fwmark = 0;
  r.timeout = 0;
  // v0 takes all 16 flag bits (no BACKUP_MASK), adds SYNC and clears HASHED
  r.connFlags = (r.flags | KFlag.SYNC) & ~KFlag.HASHED;
  if ((r.connFlags & KFlag.SEQ_MASK) !== 0) {
    r.size = V0_CONN_LEN + SEQ_BLOCK_LEN;
    if (p + r.size > end) return SyncReason.DropV0SeqTruncated;
    const q = p + V0_CONN_LEN;
    r.hasSeq = true;
    r.inSeqInit = readLE32(buf, q);
    r.inSeqDelta = readLE32(buf, q + 4);
    r.inSeqPrevDelta = readLE32(buf, q + 8);
    r.outSeqInit = readLE32(buf, q + 12);
    r.outSeqDelta = readLE32(buf, q + 16);
    r.outSeqPrevDelta = readLE32(buf, q + 20);
  } else r.size = V0_CONN_LEN;
  return checkProtocolState(r);
}
