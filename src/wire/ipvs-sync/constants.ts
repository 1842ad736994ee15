/**
 * Numbers of the IPVS connection-synchronisation protocol (Linux net/netfilter/ipvs/ip_vs_sync.c,
 * include/net/ip_vs.h, include/uapi/linux/ip_vs.h; reference: docs/sync.md and
 * /work/shared/reference/ha-scaleout.md §1). Names follow the kernel's; values are the kernel's.
 * Everything multi-byte travels in network byte order, except the v0 sequence block (v0.ts).
 */

/** Default multicast group 224.0.0.81 (IP_VS_SYNC_GROUP) as a uint32, and UDP port (IP_VS_SYNC_PORT). */
export const SYNC_GROUP = 0xe0000051;
export const SYNC_PORT = 8848;
/** Version byte of a v1 header (SYNC_PROTO_VER). */
export const SYNC_PROTO_VER = 1;

/** Header sizes: struct ip_vs_sync_mesg (v1) and struct ip_vs_sync_mesg_v0. */
export const V1_HEADER_LEN = 8;
export const V0_HEADER_LEN = 4;
/** Fixed parts of a v1 record: struct ip_vs_sync_v4 and struct ip_vs_sync_v6. */
export const V1_V4_LEN = 36;
export const V1_V6_LEN = 72;
/** v0 record (struct ip_vs_sync_conn_v0) and its sequence block (struct ip_vs_sync_conn_options). */
export const V0_CONN_LEN = 24;
export const SEQ_BLOCK_LEN = 24;
/** nr_conns is a u8: at most this many records per datagram (the kernel relies on sync_maxlen). */
export const MAX_RECORDS_PER_MESSAGE = 255;

/** v1 record `type` bit 0: IPv6 record (STYPE_F_INET6). */
export const STYPE_F_INET6 = 1;
/** v1 record `ver_size`: top 4 bits record version (must be 0), low 12 bits length (SVER_*). */
export const SVER_SHIFT = 12;
export const SVER_MASK = 0x0fff;

/** Option types (IPVS_OPT_*) and the "may be skipped" bit (IPVS_OPT_F_PARAM = 1 << (7 - 1)). */
export const IPVS_OPT_SEQ_DATA = 1;
export const IPVS_OPT_PE_DATA = 2;
export const IPVS_OPT_PE_NAME = 3;
export const IPVS_OPT_F_PARAM = 0x40;
/** Longest persistence-engine data and name (IP_VS_PEDATA_MAXLEN, IP_VS_PENAME_MAXLEN). */
export const PE_DATA_MAXLEN = 255;
export const PE_NAME_MAXLEN = 16;
/** Largest v1 record: IPv6 fixed part + SEQ_DATA + PE_DATA + PE_NAME option, each with its 2-byte header. */
export const V1_MAX_RECORD_LEN = V1_V6_LEN + 2 + SEQ_BLOCK_LEN + 2 + PE_DATA_MAXLEN + 2 + PE_NAME_MAXLEN;

/** Connection flags as the kernel keeps and sends them (IP_VS_CONN_F_*, include/uapi/linux/ip_vs.h). */
export const KFlag = {
  FWD_MASK: 0x0007,
  MASQ: 0x0000,
  LOCALNODE: 0x0001,
  TUNNEL: 0x0002,
  DROUTE: 0x0003,
  BYPASS: 0x0004,
  SYNC: 0x0020,
  HASHED: 0x0040,
  NOOUTPUT: 0x0080,
  INACTIVE: 0x0100,
  OUT_SEQ: 0x0200,
  IN_SEQ: 0x0400,
  SEQ_MASK: 0x0600,
  NO_CPORT: 0x0800,
  TEMPLATE: 0x1000,
  ONE_PACKET: 0x2000,
} as const;
/** What a backup takes from a v1 record (IP_VS_CONN_F_BACKUP_MASK): FWD | NOOUTPUT | INACTIVE | SEQ | NO_CPORT | TEMPLATE. */
export const BACKUP_MASK = 0x1f87;
/** What a backup updates on an existing entry (IP_VS_CONN_F_BACKUP_UPD_MASK): INACTIVE | SEQ. */
export const BACKUP_UPD_MASK = 0x0700;

/** Template states (IP_VS_CTPL_S_*): NONE, ASSURED; count IP_VS_CTPL_S_LAST. */
export const CTPL_S_ASSURED = 1;
export const CTPL_STATE_COUNT = 2;

/**
 * Number of states of each protocol a kernel backup knows (struct ip_vs_protocol.num_states):
 * TCP 11 (IP_VS_TCP_S_LAST), UDP 1, SCTP 14, AH and ESP 1. -1: unknown protocol
 * (ip_vs_proto_get fails). A non-template record with state >= count is skipped.
 */
export function kernelStateCount(protocol: number): number {
  switch (protocol) {
    case 6:
      return 11;
    case 17:
      return 1;
    case 132:
      return 14;
    case 50:
    case 51:
      return 1;
    default:
      return -1;
  }
}

/** UDP/IP header bytes a datagram adds to its sync payload: sync_maxlen = MTU - this (IPv4 28, IPv6 48). */
export const SYNC_HLEN_V4 = 28;
export const SYNC_HLEN_V6 = 48;
/** A master's default sync_maxlen: 1500 - 28 (the kernel never goes above 1500 for a master). */
export const DEFAULT_MASTER_MAXLEN = 1500 - SYNC_HLEN_V4;
