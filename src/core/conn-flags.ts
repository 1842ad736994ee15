/**
 * The flags of a connection-table entry (16 bits of its meta word, conn-table.ts). ulvs's own
 * encoding, not the kernel's IP_VS_CONN_F_* (core/sync/conn-record.ts translates for the sync
 * protocol).
 */
export const ConnFlag = {
  /** counted in the dest's inactive counter (else active) */
  INACTIVE: 0x01,
  TEMPLATE: 0x02,
  /** template state ASSURED */
  ASSURED: 0x04,
  /** template kept past its timeout because it still controlled entries: timeout is 60 s */
  EXPIRE_LATER: 0x08,
  /** one-packet scheduling: freed right after forwarding */
  ONE_PACKET: 0x10,
  /** forwarded by the kernel fast path too (core/offload.ts) */
  OFFLOADED: 0x20,
  /** created or last updated by a sync message (IP_VS_CONN_F_SYNC; core/sync/apply.ts) */
  SYNCED: 0x40,
  /** slot in use */
  LIVE: 0x80,
  /** no reply seen (IP_VS_CONN_F_NOOUTPUT): set for DR and TUN, whose replies bypass the
   *  director; TCP then moves by the input-only table */
  NOOUTPUT: 0x100,
  /** the forwarding method (Fwd.*) bound at creation, in bits 9-10 (FWD_SHIFT) */
  FWD_MASK: 0x600,
  /** a sync message gave it sequence-number data (IP_VS_CONN_F_SEQ_MASK; core/sync/seq-store.ts) */
  SEQ: 0x800,
  /** opened by a SYN-cookie handshake (core/syn-proxy.ts): sequence numbers translated by the
   *  delta it keeps (the fast path's entries carry it once offloaded; a restart and sync too) */
  SYNPROXY: 0x1000,
  /** SYNPROXY, the real server's SYN-ACK not yet seen */
  SYNPROXY_WAIT: 0x2000,
  /** a packet from the real server was seen (TCP, masqueraded; proto/tcp.ts) */
  REPLIED: 0x4000,
  /** counted once in its server's `unanswered`: the client sent its SYN again before any reply
   *  from the real server came through the director (proto/tcp.ts) */
  UNANSWERED: 0x8000,
} as const;
/** shift of the forwarding method within the connection flags */
export const FWD_SHIFT = 9;
