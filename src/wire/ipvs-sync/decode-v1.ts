/**
 * Reading one version 1 record (the kernel's ip_vs_proc_sync_conn, with ip_vs_proc_seqopt and
 * ip_vs_proc_str), layout in encode-v1.ts. The checks run in the kernel's order, and a fault
 * gives the kernel's verdict: a message code (the rest of the datagram is dropped) or a record
 * code (this record only). Never throws, never reads outside [p, end).
 */
import { readU16, readU32 } from '../ipv4.js';
import {
  BACKUP_MASK,
  CTPL_STATE_COUNT,
  IPVS_OPT_F_PARAM,
  IPVS_OPT_PE_DATA,
  IPVS_OPT_PE_NAME,
  IPVS_OPT_SEQ_DATA,
  KFlag,
  kernelStateCount,
  PE_DATA_MAXLEN,
  PE_NAME_MAXLEN,
  SEQ_BLOCK_LEN,
  STYPE_F_INET6,
  V1_V4_LEN,
  V1_V6_LEN,
} from './constants.js';
import type { SyncRecord } from './record.js';
import { SyncReason, type SyncReasonCode } from './reasons.js';

/**
 * Parse the record at buf[p, end) (end = p + its ver_size length, already checked to lie inside
 * the datagram) into r. Returns Ok, a Drop* code or a Skip* code.
 */
export function readV1Record(buf: Uint8Array, p: number, end: number, r: SyncRecord): SyncReasonCode {
  const type = buf[p]!;
  let q: number;
  if ((type & STYPE_F_INET6) !== 0) {
    r.af = 6; // the other type bits are not looked at (as the kernel)
    q = p + V1_V6_LEN;
  } else if (type === 0) {
    r.af = 4;
    q = p + V1_V4_LEN;
  } else return SyncReason.DropRecordType; // -10
  if (q > end) return SyncReason.DropFixedPastRecord; // -20
  r.version = 1;
  r.offset = p;
  r.size = end - p;
  r.protocol = buf[p + 1]!;
  r.flags = readU32(buf, p + 4);
  r.state = readU16(buf, p + 8);
  r.cport = readU16(buf, p + 10);
  r.vport = readU16(buf, p + 12);
  r.dport = readU16(buf, p + 14);
  r.fwmark = readU32(buf, p + 16);
  r.timeout = readU32(buf, p + 20);
  if (r.af === 6) {
    r.caddr = r.vaddr = r.daddr = 0;
    for (let k = 0; k < 16; k++) {
      r.caddr6[k] = buf[p + 24 + k]!;
      r.vaddr6[k] = buf[p + 40 + k]!;
      r.daddr6[k] = buf[p + 56 + k]!;
    }
  } else {
    r.caddr = readU32(buf, p + 24);
    r.vaddr = readU32(buf, p + 28);
    r.daddr = readU32(buf, p + 32);
  }
  r.clearOptions();
  // Options: type, length (never 0), data; bit 0x40 of the type marks one that may be skipped.
  // Known types are matched with that bit removed, so 0x41 is SEQ_DATA too (as the kernel).
  let seen = 0;
  while (q < end) {
    if (q + 2 > end) return SyncReason.DropOptionTruncated; // -30
    const ptype = buf[q]!;
    const plen = buf[q + 1]!;
    q += 2;
    if (plen === 0 || q + plen > end) return SyncReason.DropOptionLength; // -40
    switch (ptype & ~IPVS_OPT_F_PARAM) {
      case IPVS_OPT_SEQ_DATA:
        if (plen !== SEQ_BLOCK_LEN || (seen & 1) !== 0) return SyncReason.DropSeqOption; // -50
        seen |= 1;
        r.hasSeq = true;
        r.inSeqInit = readU32(buf, q);
        r.inSeqDelta = readU32(buf, q + 4);
        r.inSeqPrevDelta = readU32(buf, q + 8);
        r.outSeqInit = readU32(buf, q + 12);
        r.outSeqDelta = readU32(buf, q + 16);
        r.outSeqPrevDelta = readU32(buf, q + 20);
        break;
      case IPVS_OPT_PE_DATA:
        if (plen > PE_DATA_MAXLEN || (seen & 2) !== 0) return SyncReason.DropPeDataOption; // -60 (plen <= 255 always)
        seen |= 2;
        r.peDataBuf = buf;
        r.peDataOff = q;
        r.peDataLen = plen;
        break;
      case IPVS_OPT_PE_NAME:
        if (plen > PE_NAME_MAXLEN || (seen & 4) !== 0) return SyncReason.DropPeNameOption; // -70
        seen |= 4;
        r.peNameBuf = buf;
        r.peNameOff = q;
        r.peNameLen = plen;
        break;
      default:
        // an unknown mandatory option ends this record's parsing at once (retc 20): options
        // after it are not checked, so they cannot drop the message
        if ((ptype & IPVS_OPT_F_PARAM) === 0) return SyncReason.SkipUnknownMandatoryOption;
    }
    q += plen;
  }
  r.connFlags = ((r.flags & BACKUP_MASK) | KFlag.SYNC) >>> 0;
  return checkProtocolState(r);
}

/** The protocol and state checks shared by v0 and v1 (retc 30, 40), then the persistence
 *  engine (retc 50): ulvs loads no engine, so any record with PE data is left out. */
export function checkProtocolState(r: SyncRecord): SyncReasonCode {
  if ((r.connFlags & KFlag.TEMPLATE) === 0) {
    const n = kernelStateCount(r.protocol);
    if (n < 0) return SyncReason.SkipUnknownProtocol;
    if (r.state >= n) return SyncReason.SkipBadState;
  } else if (r.state >= CTPL_STATE_COUNT) return SyncReason.SkipBadState;
  if (r.peDataLen > 0) return SyncReason.SkipPeUnavailable;
  return SyncReason.Ok;
}
