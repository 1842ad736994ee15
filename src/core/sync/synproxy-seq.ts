/**
 * A SYN-cookie connection's sequence delta (core/syn-proxy.ts: cookie - the real server's ISN;
 * replies seq += delta, requests ack -= delta) in a sync record, as the kernel's own
 * IPVS_OPT_SEQ_DATA says it (ip_vs_sync.c ip_vs_sync_conn_v1 sends cp->in_seq and cp->out_seq
 * when IP_VS_CONN_F_IN_SEQ/OUT_SEQ is set; ip_vs_proc_conn copies them into the backup's entry):
 *
 *   flags OUT_SEQ (IN_SEQ clear); in_seq 0, 0, 0; out_seq init_seq 0, delta D, previous_delta D
 *
 * The kernel applies out_seq in ip_vs_app.c: app_tcp_pkt_out vs_fix_seq (a reply's seq + delta,
 * or + previous_delta for seq not after init_seq) and app_tcp_pkt_in vs_fix_ack_seq (a request's
 * ack - delta, or - previous_delta); with delta = previous_delta both branches are the synproxy's
 * translation, whatever init_seq. So a kernel backup reads the option as meaning exactly what it
 * means here, and never applies it wrongly: it applies out_seq only through an application helper
 * bound to the connection (ip_vs_ftp), which a synproxied HTTP service has none of (the
 * connection then breaks there, as it does without the option). The kernel's FTP helper never
 * produces this shape itself (vs_seq_update sets previous_delta to the old delta and adds a
 * non-zero diff: delta != previous_delta), so a backup can tell it from FTP data: ulvs restores
 * such a record's delta as a SYN-cookie connection and keeps every other shape as opaque data
 * (seq-store.ts), as before.
 */
import { KFlag } from '../../wire/ipvs-sync/constants.js';
import type { SyncRecord } from '../../wire/ipvs-sync/record.js';

/** Put delta D (int32, non-zero) in r's sequence data; returns the kernel flag bit to add. */
export function fillSynProxySeq(r: SyncRecord, delta: number): number {
  r.hasSeq = true;
  r.inSeqInit = r.inSeqDelta = r.inSeqPrevDelta = 0;
  r.outSeqInit = 0;
  r.outSeqDelta = r.outSeqPrevDelta = delta >>> 0;
  return KFlag.OUT_SEQ;
}

/** The SYN-cookie delta r carries (int32), or 0 when its sequence data is of another shape
 *  (or absent). */
export function synProxyDeltaOf(r: SyncRecord): number {
  if (!r.hasSeq || (r.connFlags & KFlag.SEQ_MASK) !== KFlag.OUT_SEQ) return 0;
  if (r.outSeqDelta !== r.outSeqPrevDelta) return 0;
  return r.outSeqDelta | 0;
}
