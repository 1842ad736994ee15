/**
 * Why a sync message or record was not (wholly) taken: the checks of the kernel's
 * ip_vs_process_message, ip_vs_proc_sync_conn and ip_vs_process_message_v0, one code each.
 *
 * Two kinds, as in the kernel:
 *  - message codes (DROP_*): the rest of the datagram is dropped. Records already handed to the
 *    visitor before the fault stay handed (the kernel applies records one by one as it parses).
 *    The kernel's negative return values of ip_vs_proc_sync_conn are quoted.
 *  - record codes (SKIP_*): one record is left out, the next one is still read.
 */
export const SyncReason = {
  Ok: 0,
  // --- whole message (header) ---
  /** datagram shorter than a v0 header (4 bytes): "message header too short" (also: the
   *  window given to the decoder does not lie inside its buffer) */
  DropTooShort: 1,
  /** header size field differs from the datagram length: "bogus message size" */
  DropSizeMismatch: 2,
  /** own syncid is not 0 and differs from the message's: "Ignoring syncid" */
  DropSyncId: 3,
  // --- rest of a v1 message ---
  /** fewer than 36 bytes left where the next record starts (nr_conns counts past the end) */
  DropRecordTruncated: 4,
  /** the record's length runs past the datagram: "msg > buffer" */
  DropRecordPastEnd: 5,
  /** record version nibble (top 4 bits of ver_size) is not 0 */
  DropRecordVersion: 6,
  /** record type neither IPv4 (0) nor with the IPv6 bit: -10 */
  DropRecordType: 7,
  /** record length shorter than its fixed part (36 / 72): -20 */
  DropFixedPastRecord: 8,
  /** an option header (2 bytes) runs past the record: -30 */
  DropOptionTruncated: 9,
  /** option length 0, or its data runs past the record: -40 */
  DropOptionLength: 10,
  /** SEQ_DATA length not 24, or given twice: -50 */
  DropSeqOption: 11,
  /** PE_DATA longer than 255, or given twice: -60 */
  DropPeDataOption: 12,
  /** PE_NAME longer than 16, or given twice: -70 */
  DropPeNameOption: 13,
  // --- rest of a v0 message ---
  /** fewer than 24 bytes left for the next v0 record: "v0, bogus conn" */
  DropV0Truncated: 14,
  /** the v0 sequence block (flags & SEQ_MASK) runs past the datagram: "bogus conn options" */
  DropV0SeqTruncated: 15,
  // --- one record ---
  /** an option type without the 0x40 "parameter" bit that the kernel does not know (retc 20) */
  SkipUnknownMandatoryOption: 16,
  /** a non-template record of a protocol IPVS does not know (retc 30) */
  SkipUnknownProtocol: 17,
  /** state >= the protocol's state count, or >= 2 for a template (retc 40) */
  SkipBadState: 18,
  /** PE_DATA without PE_NAME, or a persistence engine that is not loaded (retc 50; ulvs has none) */
  SkipPeUnavailable: 19,
  /** the visitor (the backup's apply) left the record out for a reason of its own */
  SkipByVisitor: 20,
} as const;
export type SyncReasonCode = (typeof SyncReason)[keyof typeof SyncReason];

/** Names for counters and logs, index = code. */
export const SYNC_REASON_NAMES: readonly string[] = Object.keys(SyncReason);

/** Codes >= this drop one record only; below it (and > Ok) they end the message. */
export const FIRST_RECORD_REASON = SyncReason.SkipUnknownMandatoryOption;
