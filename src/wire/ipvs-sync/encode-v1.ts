/**
 * Writing version 1 sync messages (the kernel's ip_vs_sync_conn and ip_vs_sync_buff_create).
 *
 * Header, 8 bytes (struct ip_vs_sync_mesg):
 *   off 0 u8 reserved = 0 (a v0 receiver reads it as nr_conns and sees an empty message)
 *   off 1 u8 syncid
 *   off 2 be16 size: the whole datagram, header, records and padding
 *   off 4 u8 nr_conns
 *   off 5 s8 version = 1
 *   off 6 be16 spare = 0
 *
 * Record (struct ip_vs_sync_v4 = 36 bytes / ip_vs_sync_v6 = 72 bytes, then options):
 *   off 0 u8 type (bit 0: IPv6)     off 1 u8 protocol      off 2 be16 ver_size (version 0 << 12 | length)
 *   off 4 be32 flags (HASHED clear)  off 8 be16 state       off 10/12/14 be16 cport, vport, dport
 *   off 16 be32 fwmark               off 20 be32 timeout (s) off 24 caddr, vaddr, daddr (4 or 16 bytes each)
 *   options: type u8, length u8, data: SEQ_DATA (24 bytes: in_seq then out_seq, each init_seq,
 *   delta, previous_delta as be32), then PE_DATA, then PE_NAME (only with PE_DATA), in this order.
 * `length` counts the fixed part and the options, not padding. Records are 4-byte aligned: the
 * writer puts zero padding before a record that does not start aligned (never after the last
 * one) and counts it in the header's size (message-writer.ts).
 */
import { readU16, writeU16, writeU32 } from '../ipv4.js';
import { IPVS_OPT_PE_DATA, IPVS_OPT_PE_NAME, IPVS_OPT_SEQ_DATA, KFlag, SEQ_BLOCK_LEN, STYPE_F_INET6, SVER_MASK, SYNC_PROTO_VER, V1_V4_LEN, V1_V6_LEN } from './constants.js';
import type { SyncRecord } from './record.js';

/** Bytes record r takes in a v1 message, options included, padding excluded. Persistence-engine
 *  data needs its buffer (peDataBuf) and at most 255 bytes, the name at most 16 (the writer checks). */
export function v1RecordLength(r: SyncRecord): number {
  let n = r.af === 6 ? V1_V6_LEN : V1_V4_LEN;
  if (r.hasSeq) n += 2 + SEQ_BLOCK_LEN;
  if (r.peDataLen > 0 && r.peDataBuf !== null) {
    n += 2 + r.peDataLen;
    if (r.peNameLen > 0 && r.peNameBuf !== null) n += 2 + r.peNameLen;
  }
  return n;
}

/** Write a v1 header at buf[off]. */
export function writeV1Header(buf: Uint8Array, off: number, syncid: number, size: number, nrConns: number): void {
  buf[off] = 0;
  buf[off + 1] = syncid;
  writeU16(buf, off + 2, size);
  buf[off + 4] = nrConns;
  buf[off + 5] = SYNC_PROTO_VER;
  writeU16(buf, off + 6, 0);
}

/** Set a v1 header's size and nr_conns (the writer updates both after each record). */
export function setV1Counts(buf: Uint8Array, off: number, size: number, nrConns: number): void {
  writeU16(buf, off + 2, size);
  buf[off + 4] = nrConns;
}

/** the v1 header's size field */
export function v1Size(buf: Uint8Array, off: number): number {
  return readU16(buf, off + 2);
}

/**
 * Write record r at buf[off] (the caller checked that v1RecordLength(r) bytes fit). Returns the
 * record's length. The flags are written as given, with HASHED cleared (as the kernel does);
 * sequence data only when r.hasSeq, persistence-engine data only when r.peDataLen > 0.
 */
export function writeV1Record(buf: Uint8Array, off: number, r: SyncRecord): number {
  const len = v1RecordLength(r);
  const v6 = r.af === 6;
  buf[off] = v6 ? STYPE_F_INET6 : 0;
  buf[off + 1] = r.protocol;
  writeU16(buf, off + 2, len & SVER_MASK); // record version 0
  writeU32(buf, off + 4, (r.flags & ~KFlag.HASHED) >>> 0);
  writeU16(buf, off + 8, r.state);
  writeU16(buf, off + 10, r.cport);
  writeU16(buf, off + 12, r.vport);
  writeU16(buf, off + 14, r.dport);
  writeU32(buf, off + 16, r.fwmark);
  writeU32(buf, off + 20, r.timeout);
  let p = off + 24;
  if (v6) {
    buf.set(r.caddr6, p);
    buf.set(r.vaddr6, p + 16);
    buf.set(r.daddr6, p + 32);
    p += 48;
  } else {
    writeU32(buf, p, r.caddr);
    writeU32(buf, p + 4, r.vaddr);
    writeU32(buf, p + 8, r.daddr);
    p += 12;
  }
  if (r.hasSeq) {
    buf[p] = IPVS_OPT_SEQ_DATA;
    buf[p + 1] = SEQ_BLOCK_LEN;
    writeU32(buf, p + 2, r.inSeqInit);
    writeU32(buf, p + 6, r.inSeqDelta);
    writeU32(buf, p + 10, r.inSeqPrevDelta);
    writeU32(buf, p + 14, r.outSeqInit);
    writeU32(buf, p + 18, r.outSeqDelta);
    writeU32(buf, p + 22, r.outSeqPrevDelta);
    p += 2 + SEQ_BLOCK_LEN;
  }
  if (r.peDataLen > 0 && r.peDataBuf !== null) {
    buf[p] = IPVS_OPT_PE_DATA;
    buf[p + 1] = r.peDataLen;
    buf.set(r.peDataBuf.subarray(r.peDataOff, r.peDataOff + r.peDataLen), p + 2);
    p += 2 + r.peDataLen;
    if (r.peNameLen > 0 && r.peNameBuf !== null) {
      buf[p] = IPVS_OPT_PE_NAME;
      buf[p + 1] = r.peNameLen;
      buf.set(r.peNameBuf.subarray(r.peNameOff, r.peNameOff + r.peNameLen), p + 2);
      p += 2 + r.peNameLen;
    }
  }
  return p - off;
}
