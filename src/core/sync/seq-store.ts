/**
 * Sequence-number adjustments received with synced connections (IPVS_OPT_SEQ_DATA; the kernel's
 * cp->in_seq / cp->out_seq, used by its FTP helper when it resizes NAT payloads). ulvs rewrites no
 * payload, so it never uses them; it keeps them so that a backup taking over announces them on
 * as it received them. Entries whose ConnFlag.SEQ is set have one here, keyed by table index and
 * checked against the client address and port (a freed and reused slot never inherits another
 * connection's data). Bounded: when full, stale entries are swept; if none, new data is not kept
 * (counted by the caller).
 */
import type { ConnTable } from '../conn-table.js';
import { ConnFlag } from '../conn-flags.js';
import type { SyncRecord } from '../../wire/ipvs-sync/record.js';

export const SEQ_STORE_MAX = 65536;

interface SeqEntry {
  caddr: number;
  cport: number;
  /** the kernel flag bits IN_SEQ / OUT_SEQ the record carried */
  seqFlags: number;
  /** in_seq init, delta, previous_delta; out_seq likewise */
  v: Uint32Array;
}

export class SeqStore {
  readonly #m = new Map<number, SeqEntry>();
  readonly #conns: ConnTable;

  constructor(conns: ConnTable) {
    this.#conns = conns;
  }

  get size(): number {
    return this.#m.size;
  }

  /** Keep r's sequence data for entry c (which the caller marks ConnFlag.SEQ). False when full. */
  set(c: number, r: SyncRecord, seqFlags: number): boolean {
    if (this.#m.size >= SEQ_STORE_MAX && !this.#m.has(c)) {
      for (const k of [...this.#m.keys()]) if (!this.#valid(k)) this.#m.delete(k);
      if (this.#m.size >= SEQ_STORE_MAX) return false;
    }
    const v = Uint32Array.of(r.inSeqInit, r.inSeqDelta, r.inSeqPrevDelta, r.outSeqInit, r.outSeqDelta, r.outSeqPrevDelta);
    this.#m.set(c, { caddr: this.#conns.caddr(c), cport: this.#conns.cport(c), seqFlags, v });
    return true;
  }

  /** Copy entry c's data into r (hasSeq) and return its IN_SEQ/OUT_SEQ flag bits, or 0 if none. */
  fill(c: number, r: SyncRecord): number {
    const e = this.#m.get(c);
    if (e === undefined || !this.#valid(c)) return 0;
    r.hasSeq = true;
    const v = e.v;
    r.inSeqInit = v[0]!;
    r.inSeqDelta = v[1]!;
    r.inSeqPrevDelta = v[2]!;
    r.outSeqInit = v[3]!;
    r.outSeqDelta = v[4]!;
    r.outSeqPrevDelta = v[5]!;
    return e.seqFlags;
  }

  #valid(c: number): boolean {
    const e = this.#m.get(c)!;
    const conns = this.#conns;
    return (conns.flags(c) & (ConnFlag.LIVE | ConnFlag.SEQ)) === (ConnFlag.LIVE | ConnFlag.SEQ) && conns.caddr(c) === e.caddr && conns.cport(c) === e.cport;
  }
}
