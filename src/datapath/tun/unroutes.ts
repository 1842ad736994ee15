/**
 * The Offloader's (offloader.ts) deferred deletion of way-out entries: a direct-routing or
 * tunnelled connection that is removed (OffloadPort.unroute) leaves its request tuple in the flow
 * map until the flush after next, so the packets the worker wrote back before the removal still
 * find their real server; a tuple that a live DR/TUN connection has again by then keeps its entry.
 * Nothing is allocated per call.
 */
import { ConnFlag, FWD_SHIFT, type ConnTable } from '../../core/conn-table.js';
import { Fwd } from '../../core/service.js';
import type { MapOps } from './bpf.js';
import { FLOW_KEY_SIZE } from './fastpath.js';
import { writeKey } from './flow-entry.js';

/** tuples whose deletion waits for the next flush (more in one batch: deleted one flush
 *  earlier, i.e. possibly before that batch's writes) */
export const UNROUTES = 1024;
const DR_BITS = Fwd.DROUTE << FWD_SHIFT;
const TUN_BITS = Fwd.TUNNEL << FWD_SHIFT;

export class DeferredUnroutes {
  readonly #conns: ConnTable;
  readonly #flows: MapOps;
  /** unrouted tuples (proto, caddr, cport, vaddr, vport): [0] queued since the last flush,
   *  [1] queued before it, deleted at the next flush */
  readonly #unr = [new Float64Array(UNROUTES * 5), new Float64Array(UNROUTES * 5)] as const;
  readonly #unrN = [0, 0];
  readonly #keys = Buffer.alloc(UNROUTES * FLOW_KEY_SIZE);

  constructor(conns: ConnTable, flows: MapOps) {
    this.#conns = conns;
    this.#flows = flows;
  }

  /** anything queued (advance() has work) */
  get pending(): boolean {
    return this.#unrN[0] > 0 || this.#unrN[1] > 0;
  }

  /** Entry c (DR/TUN, its fields still readable) is being removed: queue its tuple. Returns the
   *  deletions that failed when a full queue had to advance first. */
  queue(c: number): number {
    const failed = this.#unrN[0] === UNROUTES ? this.advance() : 0;
    const t = this.#conns;
    const u = this.#unr[0];
    const o = this.#unrN[0]++ * 5;
    u[o] = t.proto(c);
    u[o + 1] = t.caddr(c);
    u[o + 2] = t.cport(c);
    u[o + 3] = t.vaddr(c);
    u[o + 4] = t.vport(c);
    return failed;
  }

  /** Delete the tuples queued before the last flush (unless a live DR/TUN entry has one again),
   *  then make the ones queued since the next flush's. Returns how many deletions failed. */
  advance(): number {
    const old = this.#unr[1];
    const t = this.#conns;
    let n = 0;
    let failed = 0;
    for (let i = 0; i < this.#unrN[1]; i++) {
      const o = i * 5;
      const again = t.findIn(old[o]!, old[o + 1]!, old[o + 2]!, old[o + 3]!, old[o + 4]!);
      const m = again >= 0 ? t.flags(again) & ConnFlag.FWD_MASK : 0;
      if (m === DR_BITS || m === TUN_BITS) continue; // a new DR connection on the tuple: its entry stays
      writeKey(this.#keys, n++ * FLOW_KEY_SIZE, old[o + 1]!, old[o + 3]!, old[o + 2]!, old[o + 4]!, old[o]!);
    }
    if (n > 0) failed = n - this.#flows.deleteBatch(this.#keys, n, FLOW_KEY_SIZE);
    const now = this.#unr[0];
    for (let i = 0; i < this.#unrN[0] * 5; i++) old[i] = now[i]!;
    this.#unrN[1] = this.#unrN[0];
    this.#unrN[0] = 0;
    return failed;
  }
}
