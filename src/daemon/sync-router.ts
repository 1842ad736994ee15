/**
 * The backup's split of one received sync datagram between the data-path workers: each record
 * goes to the worker whose engine will see that connection's packets (the TUN's steering,
 * datapath/tun/steering.ts queueOf), so a synced entry sits in the table that the packets after
 * a takeover are looked up in.
 *
 *   route(buf, len, ownSyncId)   decodes the datagram with the kernel's checks (SyncDecoder,
 *                                ip_vs_process_message) and returns, per worker, a rebuilt
 *                                datagram of the same version holding that worker's records
 *                                (null for a worker with none). A record that fails its checks is
 *                                left out (counted by reason); a fault that ends the datagram
 *                                keeps the records read before it, as the kernel applies those.
 *   counters                     the decoder's, by SyncReason name (datagrams by verdict,
 *                                records by skip reason), plus records routed per worker
 *
 * The rebuilt datagram is the original header (count and size rewritten) and the original bytes
 * of each routed record, v1 records 4-byte aligned with zero padding before them.
 * Only well-formed records are copied, so a worker's own decode of it takes every record.
 * Pure: no I/O (the daemon's socket is in sync-daemon.ts).
 */
import { V0_HEADER_LEN, V1_HEADER_LEN } from '../wire/ipvs-sync/constants.js';
import { SyncDecoder } from '../wire/ipvs-sync/decode.js';
import type { SyncRecord } from '../wire/ipvs-sync/record.js';
import { SYNC_REASON_NAMES, type SyncReasonCode } from '../wire/ipvs-sync/reasons.js';

/** Which worker gets a connection: (protocol, caddr, cport, vaddr, vport) -> 0..workers-1. */
export type WorkerOf = (proto: number, caddr: number, cport: number, vaddr: number, vport: number, fwmark: number) => number;

export class SyncRouter {
  readonly #decoder = new SyncDecoder();
  /** records routed to each worker */
  readonly routed: number[];
  /** per worker: [offset, size] pairs of the current datagram's records */
  readonly #spans: number[][];
  /** the reason that ended the last datagram */
  last: SyncReasonCode = 0;

  constructor(
    readonly workers: number,
    readonly workerOf: WorkerOf,
  ) {
    this.routed = new Array<number>(workers).fill(0);
    this.#spans = Array.from({ length: workers }, () => []);
  }

  /** Split buf[0, len); see the file header. */
  route(buf: Uint8Array, len: number, ownSyncId: number): (Uint8Array | null)[] {
    for (const s of this.#spans) s.length = 0;
    this.last = this.#decoder.decode(buf, 0, len, ownSyncId, this.#visit);
    const v1 = this.#decoder.version === 1;
    return this.#spans.map((spans, w) => {
      if (spans.length === 0) return null;
      this.routed[w]! += spans.length / 2;
      return rebuild(buf, v1, spans);
    });
  }

  readonly #visit = (r: SyncRecord): boolean => {
    // IPv6 records carry no IPv4 addresses: they go to worker 0, whose engine counts and skips them
    const w = r.af === 4 && this.workers > 1 ? this.workerOf(r.protocol, r.caddr, r.cport, r.vaddr, r.vport, r.fwmark) : 0;
    this.#spans[w]!.push(r.offset, r.size);
    return true;
  };

  /** Datagrams by verdict (Ok, Drop*), records by skip reason (Skip*), records routed. */
  counters(): Record<string, number> {
    const out: Record<string, number> = {};
    SYNC_REASON_NAMES.forEach((n, i) => (out[n] = this.#decoder.counters[i]!));
    out['RecordsRouted'] = this.routed.reduce((a, b) => a + b, 0);
    return out;
  }
}

/** A datagram of the version `v1` with the records at `spans` ([offset, size]...) of `buf`;
 *  v1: each record after the first starts 4-byte aligned (padding before, never after, as the
 *  kernel's ip_vs_sync_conn writes it). */
function rebuild(buf: Uint8Array, v1: boolean, spans: number[]): Uint8Array {
  const hlen = v1 ? V1_HEADER_LEN : V0_HEADER_LEN;
  const at: number[] = [];
  let size = hlen;
  for (let i = 0; i < spans.length; i += 2) {
    if (v1) size = (size + 3) & ~3;
    at.push(size);
    size += spans[i + 1]!;
  }
  const out = new Uint8Array(size); // zero: the padding
  out.set(buf.subarray(0, hlen), 0);
  for (let i = 0; i < spans.length; i += 2) out.set(buf.subarray(spans[i]!, spans[i]! + spans[i + 1]!), at[i / 2]!);
  out[v1 ? 4 : 0] = spans.length / 2; // nr_conns (at most the original's, <= 255)
  out[2] = size >> 8; // size, network order
  out[3] = size & 0xff;
  return out;
}
