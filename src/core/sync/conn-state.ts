/**
 * What the sync master keeps per connection-table entry (the kernel's cp->in_pkts,
 * cp->sync_endtime and cp->old_state), in arrays indexed like the table. Allocated when a master
 * first starts (ConnTable.sync), so a director that never syncs pays nothing; 9 bytes per entry.
 */
export class SyncConnState {
  /** inbound packets counted for the sync rules (in_pkts; wraps at 2^32 like the kernel's atomic_t) */
  readonly pkts: Uint32Array;
  /** expiry last announced, in table ticks (sync_endtime) */
  readonly endTick: Uint32Array;
  /** state last announced (old_state, bits 0-5) | retries of the refresh rule << 6 (the kernel
   *  keeps the retries in sync_endtime's low 2 bits) */
  readonly meta: Uint8Array;

  constructor(capacity: number, nowTick: number) {
    this.pkts = new Uint32Array(capacity);
    this.endTick = new Uint32Array(capacity).fill(nowTick >>> 0);
    this.meta = new Uint8Array(capacity);
  }

  /** A new entry (ip_vs_conn_new): no packets, expiry "announced" now, old state NONE. */
  reset(i: number, nowTick: number): void {
    this.pkts[i] = 0;
    this.endTick[i] = nowTick;
    this.meta[i] = 0;
  }
}
