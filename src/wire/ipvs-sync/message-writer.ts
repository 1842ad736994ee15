/**
 * Building one sync datagram record by record, as the kernel fills a struct ip_vs_sync_buff
 * (ip_vs_sync_conn, ip_vs_sync_conn_v0, ip_vs_sync_buff_create[_v0]):
 *  - a message holds up to `maxlen` bytes (sync_maxlen: the UDP payload, header included), but
 *    a message's first record always fits: its capacity is max(first record + header, maxlen),
 *    so even a tiny maxlen sends one record per datagram;
 *  - v1: a record that does not start 4-byte aligned is preceded by zero padding, counted in the
 *    header's size; the last record is never followed by padding; v0 has no padding;
 *  - at most 255 records (nr_conns is a u8; the kernel only relies on maxlen for this).
 * One buffer, reused: `bytes` is valid until the next `reset`. No allocation after construction.
 */
import { MAX_RECORDS_PER_MESSAGE, PE_DATA_MAXLEN, PE_NAME_MAXLEN, V0_HEADER_LEN, V1_HEADER_LEN, V1_MAX_RECORD_LEN } from './constants.js';
import { setV1Counts, v1RecordLength, writeV1Header, writeV1Record } from './encode-v1.js';
import type { SyncRecord } from './record.js';
import { v0RecordLength, writeV0Header, writeV0Record } from './v0.js';

/** Result of `append`. */
export const Append = {
  Ok: 0,
  /** the message is full (bytes or 255 records): send it, reset, append again */
  Full: 1,
  /** the record cannot be sent in this version (IPv6 in v0) or has over-long PE data/name */
  Unencodable: 2,
} as const;
export type AppendCode = (typeof Append)[keyof typeof Append];

export class SyncMessageWriter {
  readonly #buf: Uint8Array;
  #maxlen: number;
  #version = 1;
  #syncid = 0;
  #len = 0;
  #count = 0;
  /** bytes this message may hold (see the header) */
  #cap = 0;

  /** @param maxlen sync_maxlen, bytes (>= 1) */
  constructor(maxlen: number) {
    this.#maxlen = Math.max(1, maxlen | 0);
    this.#buf = new Uint8Array(Math.max(this.#maxlen, V1_HEADER_LEN + V1_MAX_RECORD_LEN));
  }

  /** Start an empty message (the previous one's bytes become invalid). */
  reset(version: number, syncid: number, maxlen = this.#maxlen): void {
    this.#maxlen = Math.min(Math.max(1, maxlen | 0), this.#buf.length);
    this.#version = version === 0 ? 0 : 1;
    this.#syncid = syncid & 0xff;
    this.#len = 0;
    this.#count = 0;
  }

  get version(): number {
    return this.#version;
  }
  /** records in the current message */
  get count(): number {
    return this.#count;
  }
  /** bytes of the current message (0 while empty) */
  get length(): number {
    return this.#len;
  }
  /** the datagram: bytes [0, length) of this view, valid until the next reset/append */
  get bytes(): Uint8Array {
    return this.#buf;
  }

  /** Append record r to the current message. */
  append(r: SyncRecord): AppendCode {
    const v1 = this.#version === 1;
    if (v1) {
      if ((r.peDataBuf !== null && r.peDataLen > PE_DATA_MAXLEN) || (r.peNameBuf !== null && r.peNameLen > PE_NAME_MAXLEN)) return Append.Unencodable;
    } else if (r.af !== 4) return Append.Unencodable;
    const rlen = v1 ? v1RecordLength(r) : v0RecordLength(r);
    const buf = this.#buf;
    if (this.#count === 0) {
      const hdr = v1 ? V1_HEADER_LEN : V0_HEADER_LEN;
      this.#cap = Math.max(rlen + hdr, this.#maxlen);
      if (v1) writeV1Header(buf, 0, this.#syncid, hdr, 0);
      else writeV0Header(buf, 0, this.#syncid, hdr, 0);
      this.#len = hdr;
    } else if (this.#count >= MAX_RECORDS_PER_MESSAGE) return Append.Full;
    const pad = v1 ? (4 - this.#len) & 3 : 0;
    if (this.#len + pad + rlen > this.#cap) return Append.Full;
    for (let k = 0; k < pad; k++) buf[this.#len + k] = 0;
    const at = this.#len + pad;
    const wrote = v1 ? writeV1Record(buf, at, r) : writeV0Record(buf, at, r);
    this.#len = at + wrote;
    this.#count++;
    if (v1) setV1Counts(buf, 0, this.#len, this.#count);
    else writeV0Header(buf, 0, this.#syncid, this.#len, this.#count);
    return Append.Ok;
  }
}
