/**
 * One synchronised connection as the codec sees it: the fields of a v1 record (struct
 * ip_vs_sync_v4 / ip_vs_sync_v6 and its options) or a v0 record (struct ip_vs_sync_conn_v0).
 *
 * One instance is reused for every record of every message (the decoder fills it, the encoder
 * reads it), so decoding allocates nothing per record. A visitor that keeps data past its call
 * copies it. Units: ports and addresses are host-order numbers (an IPv4 address is the uint32
 * a<<24|b<<16|c<<8|d, see wire/addr.ts); `timeout` is seconds; `flags` are the kernel's
 * IP_VS_CONN_F_* bits (constants.ts KFlag), not ulvs's.
 */
export class SyncRecord {
  /** 0 or 1: the message version this record came from (decode) */
  version = 1;
  /** 4 or 6 */
  af = 4;
  /** IP protocol (6 TCP, 17 UDP, 132 SCTP; 0 for a firewall-mark template) */
  protocol = 0;
  /** flags exactly as on the wire (v1: 32 bits; v0: 16 bits) */
  flags = 0;
  /** the flags the kernel hands to ip_vs_proc_conn: v1 (flags & BACKUP_MASK) | SYNC;
   *  v0 (flags | SYNC) & ~HASHED (decode only) */
  connFlags = 0;
  /** protocol state (TCP: IP_VS_TCP_S_*; template: 0 NONE, 1 ASSURED) */
  state = 0;
  cport = 0;
  vport = 0;
  dport = 0;
  /** v1 only (0 in v0) */
  fwmark = 0;
  /** v1: the connection's current state timeout in seconds (not the time left); v0: 0 */
  timeout = 0;
  /** IPv4 addresses (uint32); 0 for an IPv6 record */
  caddr = 0;
  vaddr = 0;
  daddr = 0;
  /** IPv6 addresses (16 bytes each), meaningful when af === 6 */
  readonly caddr6 = new Uint8Array(16);
  readonly vaddr6 = new Uint8Array(16);
  readonly daddr6 = new Uint8Array(16);
  /** IPVS_OPT_SEQ_DATA present (v1), or the v0 sequence block (flags & SEQ_MASK) */
  hasSeq = false;
  /** struct ip_vs_seq in_seq / out_seq: init_seq, delta, previous_delta (uint32 each) */
  inSeqInit = 0;
  inSeqDelta = 0;
  inSeqPrevDelta = 0;
  outSeqInit = 0;
  outSeqDelta = 0;
  outSeqPrevDelta = 0;
  /** persistence-engine data (IPVS_OPT_PE_DATA): bytes [peDataOff, peDataOff+peDataLen) of
   *  peDataBuf (the message on decode; any buffer on encode). peDataLen 0 = none. */
  peDataBuf: Uint8Array | null = null;
  peDataOff = 0;
  peDataLen = 0;
  /** persistence-engine name (IPVS_OPT_PE_NAME, no NUL), likewise; sent only with data */
  peNameBuf: Uint8Array | null = null;
  peNameOff = 0;
  peNameLen = 0;
  /** decode: where the record starts in the buffer given to the decoder, and its length
   *  (v1: ver_size's length incl. options; v0: 24 or 48) */
  offset = 0;
  size = 0;

  /** Back to an empty IPv4 record (all numbers 0, no options). */
  clear(): this {
    this.version = 1;
    this.af = 4;
    this.protocol = this.flags = this.connFlags = this.state = 0;
    this.cport = this.vport = this.dport = this.fwmark = this.timeout = 0;
    this.caddr = this.vaddr = this.daddr = 0;
    this.caddr6.fill(0);
    this.vaddr6.fill(0);
    this.daddr6.fill(0);
    this.clearOptions();
    this.offset = this.size = 0;
    return this;
  }

  /** No sequence data and no persistence-engine data. */
  clearOptions(): void {
    this.hasSeq = false;
    this.inSeqInit = this.inSeqDelta = this.inSeqPrevDelta = 0;
    this.outSeqInit = this.outSeqDelta = this.outSeqPrevDelta = 0;
    this.peDataBuf = this.peNameBuf = null;
    this.peDataOff = this.peDataLen = this.peNameOff = this.peNameLen = 0;
  }
}
