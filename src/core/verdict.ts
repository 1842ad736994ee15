/**
 * What the engine decided about one packet, and the counters that account for every packet.
 *
 * `Director.process()` returns a `VerdictCode` (a small integer, so the hot path allocates
 * nothing) and increments exactly one *outcome* counter, whose name says why:
 *   forward -> the packet was rewritten in place; send it on.
 *   drop    -> discard it (the outcome names the reason).
 *   pass    -> not ours to rewrite: hand it to the host stack unchanged.
 *   icmp    -> discard it and send `Director.icmpOut[0, icmpLen)` instead (an ICMP error the
 *              director generated, e.g. port unreachable when no real server is usable).
 *   send    -> discard it and send `Director.icmpOut[0, icmpLen)` instead: a TCP segment the
 *              engine generated (the SYN-cookie handshake's SYN and ACK to the real server,
 *              syn-proxy.ts), written back into the TUN like a forwarded packet.
 * Event counters (connections created, expired, ...) are kept separately.
 */

export const Verdict = { Forward: 0, Drop: 1, Pass: 2, Icmp: 3, Send: 4 } as const;
export type VerdictCode = (typeof Verdict)[keyof typeof Verdict];
export const VERDICT_NAMES = ['forward', 'drop', 'pass', 'icmp', 'send'] as const;

/** Outcome counter indices; each packet increments exactly one. */
export const Outcome = {
  ForwardIn: 0,
  ForwardOut: 1,
  ForwardIcmpIn: 2,
  ForwardIcmpOut: 3,
  IcmpUnreachSent: 4,
  PassNoService: 5,
  PassNoConn: 6,
  PassProtocol: 7,
  PassIcmp: 8,
  DropTruncated: 9,
  DropBadVersion: 10,
  DropBadHeaderLength: 11,
  DropBadTotalLength: 12,
  DropBadIpChecksum: 13,
  DropFragment: 14,
  DropBadTcpHeader: 15,
  DropBadUdpLength: 16,
  DropConnTableFull: 17,
  DropDestUnavailable: 18,
  DropIcmpRateLimited: 19,
  DropIcmpMalformed: 20,
  /** a TCP segment that may not open a connection, for a service, without one (strayTcp: 'drop') */
  DropNoConn: 21,
  /** a request (or an ICMP error from the client side) while backup_only is in force: the
   *  director does not serve virtual services (ip_vs_in_hook's sysctl_backup_only) */
  PassBackupOnly: 22,
  /** a packet that would open a connection, dropped by drop_packet (ip_vs_todrop, defense.ts) */
  DropDefense: 23,
  // SYN cookies (syn-proxy.ts): the handshake the kernel's cookie SYN-ACK began
  /** a checked ACK (TCP_VALIDATED_BIT) opened a connection: a SYN went to the real server */
  SendSynProxySyn: 24,
  /** a client segment while the real server's SYN-ACK is awaited: the SYN sent again */
  SendSynProxySynAgain: 25,
  /** the real server's SYN-ACK: the handshake's ACK went to it, sequence delta fixed */
  SendSynProxyAck: 26,
  /** while the SYN-ACK is awaited: a client RST, a server segment that is not its SYN-ACK
   *  (or acknowledges another sequence number) */
  DropSynProxyEarly: 27,
  /** a checked ACK whose connection was scheduled to a DR or TUN server (the director would
   *  never see the replies it must translate): the connection removed */
  DropSynProxyNotNat: 28,
  /** while the SYN-ACK is awaited, the server answered the SYN with an ACK for another
   *  sequence number: an older connection on the same addresses and ports it still holds
   *  (TIME_WAIT; the cookie handshake's SYN carries no timestamp that would let it be
   *  recycled). A reset at that ACK's number goes to it, as a TCP in SYN-SENT sends (RFC 9293
   *  3.10.7.3); the SYN goes again with the client's next segment */
  SendSynProxyRst: 29,
  /** the server's SYN-ACK again after the handshake (it answered a repeated SYN): not passed
   *  on, the client has its connection */
  DropSynProxyDupSynAck: 30,
} as const;
export type OutcomeCode = (typeof Outcome)[keyof typeof Outcome];

/** Stable names (used in metrics and `trace`), index = Outcome code. */
export const OUTCOME_NAMES = [
  'forward_in',
  'forward_out',
  'forward_icmp_in',
  'forward_icmp_out',
  'icmp_unreach_sent',
  'pass_no_service',
  'pass_no_conn',
  'pass_protocol',
  'pass_icmp',
  'drop_truncated',
  'drop_bad_version',
  'drop_bad_header_length',
  'drop_bad_total_length',
  'drop_bad_ip_checksum',
  'drop_fragment',
  'drop_bad_tcp_header',
  'drop_bad_udp_length',
  'drop_conn_table_full',
  'drop_dest_unavailable',
  'drop_icmp_rate_limited',
  'drop_icmp_malformed',
  'drop_no_conn',
  'pass_backup_only',
  'drop_defense',
  'send_synproxy_syn',
  'send_synproxy_syn_again',
  'send_synproxy_ack',
  'drop_synproxy_early',
  'drop_synproxy_not_nat',
  'send_synproxy_rst',
  'drop_synproxy_dup_synack',
] as const;

/** The verdict each outcome implies, written out (index = Outcome code; a test checks every
 *  outcome has one and that the names agree, so a rename cannot silently change a verdict). */
export const OUTCOME_VERDICT: readonly VerdictCode[] = [
  Verdict.Forward, // forward_in
  Verdict.Forward, // forward_out
  Verdict.Forward, // forward_icmp_in
  Verdict.Forward, // forward_icmp_out
  Verdict.Icmp, // icmp_unreach_sent
  Verdict.Pass, // pass_no_service
  Verdict.Pass, // pass_no_conn
  Verdict.Pass, // pass_protocol
  Verdict.Pass, // pass_icmp
  Verdict.Drop, // drop_truncated
  Verdict.Drop, // drop_bad_version
  Verdict.Drop, // drop_bad_header_length
  Verdict.Drop, // drop_bad_total_length
  Verdict.Drop, // drop_bad_ip_checksum
  Verdict.Drop, // drop_fragment
  Verdict.Drop, // drop_bad_tcp_header
  Verdict.Drop, // drop_bad_udp_length
  Verdict.Drop, // drop_conn_table_full
  Verdict.Drop, // drop_dest_unavailable
  Verdict.Drop, // drop_icmp_rate_limited
  Verdict.Drop, // drop_icmp_malformed
  Verdict.Drop, // drop_no_conn
  Verdict.Pass, // pass_backup_only
  Verdict.Drop, // drop_defense
  Verdict.Send, // send_synproxy_syn
  Verdict.Send, // send_synproxy_syn_again
  Verdict.Send, // send_synproxy_ack
  Verdict.Drop, // drop_synproxy_early
  Verdict.Drop, // drop_synproxy_not_nat
  Verdict.Send, // send_synproxy_rst
  Verdict.Drop, // drop_synproxy_dup_synack
];

/** Event counters (not one per packet). */
export const Event = {
  ConnsCreated: 0,
  ConnsExpired: 1,
  TemplatesCreated: 2,
  TemplatesExpired: 3,
  TemplatesInvalidated: 4,
  NoDest: 5,
  Rescheduled: 6,
  ExpiredNoDest: 7,
  /** connections handed to the kernel fast path / taken back / refused (no slot free) */
  Offloaded: 8,
  OffloadWithdrawn: 9,
  OffloadRefused: 10,
  /** a half-open TCP entry removed to make room for a new connection (conn/lifecycle.ts) */
  EmbryonicEvicted: 11,
  /** an entry dropped by drop_entry (ip_vs_random_dropentry, defense.ts) */
  DefenseEntryDropped: 12,
  /** a masqueraded connection's server did not answer through the director (proto/tcp.ts) */
  Unanswered: 13,
} as const;
export const EVENT_NAMES = [
  'conns_created',
  'conns_expired',
  'templates_created',
  'templates_expired',
  'templates_invalidated',
  'no_dest',
  'rescheduled',
  'expired_nodest',
  'offloaded',
  'offload_withdrawn',
  'offload_refused',
  'embryonic_evicted',
  'defense_entry_dropped',
  'unanswered',
] as const;

/** Flag bits the caller passes to `process()` about the packet's buffer. */
export const PacketFlag = {
  /** L4 checksum field holds a partial (pseudo-header) sum: virtio_net_hdr NEEDS_CSUM */
  CsumPartial: 1,
} as const;

/** Counters by name: each outcome's and each event's (Director.counters, metrics, tests). */
export function namedCounters(outcomes: ArrayLike<number>, events: ArrayLike<number>): Record<string, number> {
  const r: Record<string, number> = {};
  OUTCOME_NAMES.forEach((n, i) => (r[n] = outcomes[i]!));
  EVENT_NAMES.forEach((n, i) => (r[n] = events[i]!));
  return r;
}
