/**
 * A worker's side of the kernel fast path (fastpath.ts): implements the engine's OffloadPort
 * (core/offload.ts) over the two maps, and reports what the kernel forwarded.
 *
 *   offer(c)     takes a free slot of this worker's range, queues the connection's flow entries:
 *                NAT, two (request tuple client -> VIP:vport, reply tuple RIP:rport -> client;
 *                a SYN-cookie connection's sequence delta in both);
 *                direct routing, one (the request tuple, FLOW_DR); tunnelling likewise (FLOW_TUN,
 *                with its real server's tunnel type and GUE port)
 *   withdraw(c)  queues the deletion of a NAT connection's entries (a DR connection's entry goes
 *                back to FLOW_DR_ROUTE), reports the slot's counts since the last report, frees
 *                the slot once the map change is done
 *   route(c)     queues a DR (tunnelled) connection's request tuple as FLOW_DR_ROUTE
 *                (FLOW_TUN_ROUTE, with the tunnel type and port): the TUN's way out
 *                (tun_out.bpf.c) sends the packets ulvsd writes back to its real server
 *   retunnel()   after a configuration change: queues every tunnelled connection's entry again
 *                with its server's tunnel type and port now (IPVS's ip_vs_tunnel_xmit reads the
 *                server's type for every packet, so an edited server's connections follow it)
 *   dropRoutes(cs) deletes the way-out entries of live DR/TUN connections now (backup_only)
 *   unroute(c)   queues the deletion of that entry, carried out one flush later (after the
 *                packets written back meanwhile have left), and not at all if a live DR
 *                connection of this engine has the tuple again by then
 *   flush()      carries out what is queued: deferred deletions, updates in the order they were
 *                queued, then deletions (BPF_MAP_*_BATCH, one system call each). The worker calls
 *                it after each batch of packets and before that batch's writes are submitted, so
 *                a DR entry exists before its first packet is written and a withdrawal takes
 *                effect before the packet that caused it (a FIN, say) reaches the other side.
 *   harvest()    reads the slots (an mmap'd array: no system call) and hands the engine each
 *                connection's new packets and bytes and the time of its last packet.
 *   adoptKernel(c, slot)  holds a kernel-made connection in its kernel-range slot (kernel-slots.ts,
 *                nothing written); the flush that deleted its entries pushes the slot back.
 *
 * A flow entry the kernel refuses at the flush (E2BIG: the map is full; ENOMEM) leaves its
 * connection in user space: its slot is given back, the entry it got written deleted, its
 * OFFLOADED flag cleared and its packet count restarted, so the engine forwards it and offers it
 * again `after` packets later (it goes to the kernel once entries have freed); counted as
 * map_full. A refused way-out entry (DR/TUN route) only counts (route_errors).
 *
 * Every worker owns a disjoint range of slots, so workers never coordinate; the flow map is
 * shared (its keys are tuples, and a connection belongs to exactly one worker).
 * Nothing here is allocated per packet or per connection.
 */
import { ConnFlag, ConnTable, FWD_SHIFT } from '../../core/conn-table.js';
import { Fwd } from '../../core/service.js';
import { OffloadReport, type OffloadPort } from '../../core/offload.js';
import { MapOps } from './bpf.js';
import { FLOW_KEY_SIZE, FLOW_VALUE_SIZE } from './fastpath.js';
import { SlotCounts } from './slot-counts.js';
import { KernelSlots } from './kernel-slots.js';
import { DeferredUnroutes } from './unroutes.js';
import { FreeSlots } from './free-slots.js';
import { requestKeys, writeKey, writeValue } from './flow-entry.js';
import { FLOW_DIR } from './layouts.gen.js';
import { E2BIG, ENOMEM } from './syscalls.js';
import { IPIP_ONLY, type ActivitySink, type OffloaderInit, type TunnelSource } from './offloader-parts.js';

/** Connections queued between flushes (each is at most two flow entries). */
const QUEUE = 256;
const DR_BITS = Fwd.DROUTE << FWD_SHIFT;
const TUN_BITS = Fwd.TUNNEL << FWD_SHIFT;

export type { OffloaderInit, TunnelSource, ActivitySink } from './offloader-parts.js';

export class Offloader implements OffloadPort {
  /** counters for the metrics: queued entries written, deleted, failures */
  readonly counters = { offered: 0, withdrawn: 0, update_errors: 0, delete_errors: 0, harvests: 0, map_full: 0, route_errors: 0 };
  readonly #conns: ConnTable;
  readonly #dests: TunnelSource;
  readonly #flows: MapOps;
  /** the kernel's counts per slot, and what of them was reported (slot-counts.ts) */
  readonly #slots: SlotCounts;
  readonly #base: number;
  readonly #count: number;
  /** connection -> slot (this worker's index), -1 none */
  readonly #slotOf: Int32Array;
  /** slot -> connection, -1 free */
  readonly #connOf: Int32Array;
  readonly #free: FreeSlots;
  readonly #freshMaps: boolean;
  /** the kernel set-up slots this worker holds (OffloaderInit.kernel), or null. A connection's
   *  slot in #slotOf, #addSlot, #delSlots, #relSlots: >= 0 this worker's own index, -1 none,
   *  <= -2 the kernel range's index k as -2 - k */
  readonly #kernel: KernelSlots | null;
  /** own slots held by connections (the kernel's are counted by #kernel) */
  #inUse = 0;
  readonly #addKeys = Buffer.alloc(QUEUE * 2 * FLOW_KEY_SIZE);
  readonly #addValues = Buffer.alloc(QUEUE * 2 * FLOW_VALUE_SIZE);
  #adds = 0;
  /** per queued update: its connection, its slot (this worker's index; -1: a way-out entry
   *  only), and 1 for the first of a NAT pair */
  readonly #addConn = new Int32Array(QUEUE * 2);
  readonly #addSlot = new Int32Array(QUEUE * 2);
  readonly #addFirst = new Uint8Array(QUEUE * 2);
  readonly #delKeys = Buffer.alloc(QUEUE * 2 * FLOW_KEY_SIZE);
  readonly #delSlots = new Int32Array(QUEUE);
  #dels = 0;
  /** slots of DR connections withdrawn (their entry updated, not deleted): freed at the flush */
  readonly #relSlots = new Int32Array(QUEUE);
  #rels = 0;
  /** removed DR/TUN tuples whose way-out entries go one flush later (unroutes.ts) */
  readonly #unroutes: DeferredUnroutes;
  readonly #scratch = new OffloadReport();

  constructor(conns: ConnTable, o: OffloaderInit, dests: TunnelSource = IPIP_ONLY) {
    this.#conns = conns;
    this.#dests = dests;
    this.#flows = new MapOps(o.flowsFd);
    this.#unroutes = new DeferredUnroutes(conns, this.#flows);
    this.#slots = new SlotCounts(o.slotsFd, o.slots, o.slotBase, o.slotCount);
    this.#base = o.slotBase;
    this.#count = o.slotCount;
    this.#slotOf = new Int32Array(conns.capacity).fill(-1);
    this.#connOf = new Int32Array(o.slotCount).fill(-1);
    this.#free = new FreeSlots(o.slotCount);
    this.#freshMaps = o.freshMaps ?? true;
    const k = o.kernel;
    this.#kernel = k ? new KernelSlots(k.slotBase, k.slotCount, new MapOps(k.freeFd), new SlotCounts(o.slotsFd, o.slots, k.slotBase, k.slotCount)) : null;
  }

  /** Slot v (the encoding of #kernel) has no entry pointing at it any more: free it. */
  #freed(v: number): void {
    if (v >= 0) this.#free.push(v);
    else if (v <= -2) this.#kernel!.giveBack(-2 - v);
  }

  kernelSlotFree = (slot: number): boolean => this.#kernel !== null && this.#kernel.free(slot); // OffloadPort's

  /** OffloadPort.adoptKernel: c, set up by the kernel, counts in `slot` (kernelSlotFree). */
  adoptKernel(c: number, slot: number): void {
    this.#slotOf[c] = -2 - this.#kernel!.hold(c, slot);
  }

  /** OffloadPort.moveKernel: removed `from`'s kernel slot is `to`'s (nothing written). */
  moveKernel(from: number, to: number, out: OffloadReport): void {
    const v = this.#slotOf[from]!;
    out.clear();
    if (v > -2) return;
    this.#slotOf[from] = -1;
    this.#slotOf[to] = v;
    this.#kernel!.reassign(-2 - v, to, out);
  }

  /** Restart (OffloadPort.adopt): keep c in `slot` when that slot is this worker's and free,
   *  with the previous process's `reported` counts (zero when the maps are new); else offer it
   *  a slot of its own. Its flow entries are written again either way (the same tuples, now
   *  pointing at the slot it has). False when no slot is free: its entries are deleted. */
  adopt(c: number, slot: number, reported: Float64Array, seqDelta = 0): boolean {
    if (this.#kernel !== null && this.#kernel.free(slot)) {
      // a kernel set-up slot: kept, its entries written again (as this process's: no kflags)
      this.#take(c, -2 - this.#kernel.hold(c, slot, this.#freshMaps ? new Float64Array(4) : reported), slot, seqDelta);
      return true;
    }
    const s = slot - this.#base;
    if (s < 0 || s >= this.#count || !this.#free.has(s)) {
      if (this.offer(c, seqDelta)) return true;
      if (!this.#dr(c)) {
        if (this.#dels === QUEUE) this.#write();
        this.#writeKeys(this.#delKeys, this.#dels * 2, c);
        this.#delSlots[this.#dels++] = -1; // no slot to free
      } else this.route(c);
      return false;
    }
    this.#free.take(s);
    this.#take(c, s, this.#base + s, seqDelta);
    if (!this.#freshMaps) this.#slots.setReported(s, reported);
    return true;
  }

  /** Entry c's slot (whole array) and the counts reported from it so far (OffloadPort.slotOf). */
  slotOf(c: number, reported: Float64Array): number {
    const s = this.#slotOf[c]!;
    if (s <= -2) {
      this.#kernel!.reported(-2 - s, reported);
      return this.#kernel!.base - 2 - s;
    }
    if (s < 0) return -1;
    this.#slots.reported(s, reported);
    return this.#base + s;
  }

  /** Connections in the fast path now. */
  get active(): number {
    return this.#inUse + (this.#kernel?.held ?? 0);
  }

  /** Whether entry c is a direct-routing or tunnelled connection: one flow entry, the request
   *  tuple, which the TUN's way out reads too. */
  #dr(c: number): boolean {
    const m = this.#conns.flags(c) & ConnFlag.FWD_MASK;
    return m === DR_BITS || m === TUN_BITS;
  }

  /** The flow direction of DR/TUN entry c: offloaded (FLOW_DR, FLOW_TUN) or the way out only. */
  #dirOf(c: number, offloaded: boolean): number {
    const tun = (this.#conns.flags(c) & ConnFlag.FWD_MASK) === TUN_BITS;
    return offloaded ? (tun ? FLOW_DIR.FLOW_TUN : FLOW_DIR.FLOW_DR) : tun ? FLOW_DIR.FLOW_TUN_ROUTE : FLOW_DIR.FLOW_DR_ROUTE;
  }

  offer(c: number, seqDelta = 0): boolean {
    if (this.#free.size === 0) return false;
    const s = this.#free.pop();
    this.#slots.clear(s); // no flow points here: freed slots were deleted first
    this.#take(c, s, this.#base + s, seqDelta);
    return true;
  }

  /** Give c slot s (encoded as #kernel says; `abs` its index in the whole array) and queue its
   *  flow entries (a NAT pair with `seqDelta` in both). */
  #take(c: number, s: number, abs: number, seqDelta = 0): void {
    if (this.#adds + 2 > QUEUE * 2) this.#write();
    this.#slotOf[c] = s;
    if (s >= 0) {
      this.#connOf[s] = c;
      this.#inUse++;
    }
    const t = this.#conns;
    const at = this.#adds;
    if (this.#dr(c)) {
      this.#queueDr(c, this.#dirOf(c, true), abs, s);
    } else {
      this.#writeKeys(this.#addKeys, at, c);
      this.#addConn[at] = this.#addConn[at + 1] = c;
      this.#addSlot[at] = this.#addSlot[at + 1] = s;
      this.#addFirst[at] = 1;
      this.#addFirst[at + 1] = 0;
      writeValue(this.#addValues, at * FLOW_VALUE_SIZE, t.daddr(c), t.dport(c), FLOW_DIR.FLOW_REQUEST, abs, 0, seqDelta); //  to RIP:rport
      writeValue(this.#addValues, (at + 1) * FLOW_VALUE_SIZE, t.vaddr(c), t.vport(c), FLOW_DIR.FLOW_REPLY, abs, 0, seqDelta); // from VIP:vport
      this.#adds += 2;
    }
    this.counters.offered++;
  }

  /** Queue DR/TUN entry c's request tuple -> (RIP, dir, slot; a tunnel's type and GUE port)
   *  as the next update; `own`: c's slot as #addSlot keeps it. */
  #queueDr(c: number, dir: number, slot: number, own = -1): void {
    if (this.#adds + 1 > QUEUE * 2) this.#write();
    const t = this.#conns;
    this.#addConn[this.#adds] = c;
    this.#addSlot[this.#adds] = own;
    this.#addFirst[this.#adds] = 0;
    writeKey(this.#addKeys, this.#adds * FLOW_KEY_SIZE, t.caddr(c), t.vaddr(c), t.cport(c), t.vport(c), t.proto(c));
    const o = this.#adds * FLOW_VALUE_SIZE;
    if (dir === FLOW_DIR.FLOW_TUN || dir === FLOW_DIR.FLOW_TUN_ROUTE) {
      const d = this.#dests.byId(t.dest(c));
      writeValue(this.#addValues, o, t.daddr(c), d.tunPort, dir, slot, d.tunType);
    } else writeValue(this.#addValues, o, t.daddr(c), 0, dir, slot, 0);
    this.#adds++;
  }

  route(c: number): void {
    this.#queueDr(c, this.#dirOf(c, false), 0);
  }

  /**
   * Update `i` of the batch was refused with errno `e`: the connection stays in user space (file
   * header). Returns how many of the next updates to skip (the second of a NAT pair).
   */
  #refused(i: number, e: number): number {
    if (e === E2BIG || e === ENOMEM) this.counters.map_full++;
    else this.counters.update_errors++;
    const c = this.#addConn[i]!;
    const s = this.#addSlot[i]!;
    const skip = this.#addFirst[i]!;
    if (s === -1) {
      this.counters.route_errors++;
      return skip;
    }
    if (this.#slotOf[c] !== s) return skip; // withdrawn since the offer: its deletion is queued
    if (!this.#dr(c) && skip === 0) this.#flows.delete(this.#addKeys.subarray((i - 1) * FLOW_KEY_SIZE, i * FLOW_KEY_SIZE)); // the pair's first half was written
    this.#slotOf[c] = -1;
    if (s >= 0) {
      this.#connOf[s] = -1;
      this.#inUse--;
      this.#free.push(s); // no entry points at it
    } else this.#kernel!.drop(-2 - s);
    const t = this.#conns;
    t.setFlags(c, t.flags(c) & ~ConnFlag.OFFLOADED);
    t.seen[c] = 0; // offered again after `after` more packets
    return skip;
  }

  /** Re-queue the way-out entry of every live tunnelled connection (none is offloaded: called
   *  after withdrawAll, before the next flush) with its server's current tunnel; returns how
   *  many. O(connections), as the withdrawal before a change is. */
  retunnel(): number {
    const t = this.#conns;
    let n = 0;
    t.forEach((c) => {
      if ((t.flags(c) & (ConnFlag.FWD_MASK | ConnFlag.TEMPLATE)) !== TUN_BITS || this.#slotOf[c]! >= 0) return;
      this.#queueDr(c, FLOW_DIR.FLOW_TUN_ROUTE, 0);
      n++;
    });
    return n;
  }

  unroute(c: number): void {
    this.counters.delete_errors += this.#unroutes.queue(c);
  }

  /** Carry out what is queued, then delete these live DR/TUN connections' way-out entries. */
  dropRoutes(cs: readonly number[]): void {
    this.flush();
    const done = cs.length > 0 ? this.#flows.deleteBatch(requestKeys(this.#conns, cs), cs.length, FLOW_KEY_SIZE) : 0;
    this.counters.delete_errors += cs.length - done;
  }


  withdraw(c: number, out: OffloadReport): void {
    const s = this.#slotOf[c]!;
    out.clear();
    if (s === -1) return;
    if (s >= 0) {
      this.#slots.report(s, out);
      this.#connOf[s] = -1;
      this.#inUse--;
    } else this.#kernel!.release(-2 - s, out); // given back to the kernel at the flush below
    this.#slotOf[c] = -1;
    if (this.#dr(c)) {
      // back to the way out only; the slot is free once the kernel has stopped counting in it
      if (this.#rels === QUEUE) this.#write();
      this.#queueDr(c, this.#dirOf(c, false), 0);
      this.#relSlots[this.#rels++] = s;
      this.counters.withdrawn++;
      return;
    }
    if (this.#dels === QUEUE) this.#write();
    this.#writeKeys(this.#delKeys, this.#dels * 2, c);
    this.#delSlots[this.#dels++] = s;
    this.counters.withdrawn++;
  }

  /** Entry c's two flow keys at key positions `at` and `at + 1` of `b`: the request as it
   *  arrives (client -> VIP:vport), then the reply (RIP:rport -> client). */
  #writeKeys(b: Buffer, at: number, c: number): void {
    const t = this.#conns;
    const proto = t.proto(c);
    writeKey(b, at * FLOW_KEY_SIZE, t.caddr(c), t.vaddr(c), t.cport(c), t.vport(c), proto);
    writeKey(b, (at + 1) * FLOW_KEY_SIZE, t.daddr(c), t.caddr(c), t.dport(c), t.cport(c), proto);
  }

  /**
   * At a batch boundary: delete the DR tuples unrouted before the previous flush, then carry out
   * the queued updates and deletions (#write). Cheap when nothing is queued.
   */
  flush(): void {
    if (this.#unroutes.pending) this.counters.delete_errors += this.#unroutes.advance();
    this.#write();
  }

  /**
   * Carry out the queued updates in their order, then the queued deletions. This order is the
   * safe one: a connection offered and withdrawn between two flushes ends up out of the kernel
   * (a DR one back at FLOW_DR_ROUTE). The other case, a NAT tuple withdrawn and offered again
   * between two flushes (a new connection from the same client port), leaves the new one
   * without kernel entries: its packets simply keep going through the engine.
   */
  #write(): void {
    if (this.#adds > 0) {
      const n = this.#adds;
      // a refused update ends the batch: handle it and go on with the next ones (rare: a full map)
      for (let at = 0; at < n; ) {
        const r = this.#flows.updateBatch(this.#addKeys, this.#addValues, n - at, at, FLOW_KEY_SIZE, FLOW_VALUE_SIZE);
        at += r.done;
        if (at < n) at += 1 + this.#refused(at, r.errno);
      }
      this.#adds = 0;
      for (let i = 0; i < this.#rels; i++) this.#freed(this.#relSlots[i]!);
      this.#rels = 0;
    }
    if (this.#dels > 0) {
      const n = this.#dels * 2;
      const done = this.#flows.deleteBatch(this.#delKeys, n, FLOW_KEY_SIZE);
      if (done < n) this.counters.delete_errors += n - done;
      for (let i = 0; i < this.#dels; i++) this.#freed(this.#delSlots[i]!); // -1: none
      this.#dels = 0;
    }
  }

  /** Report every offloaded connection's new activity to `sink`. */
  harvest(sink: ActivitySink): void {
    this.counters.harvests++;
    const r = this.#scratch;
    for (let s = 0; s < this.#count; s++) {
      const c = this.#connOf[s]!;
      if (c < 0) continue;
      if (this.#slots.report(s, r)) sink.offloadActivity(c, r);
    }
    this.#kernel?.harvest(sink, r);
  }

  /** the kernel set-up slots' counters (kernel-slots.ts), or null without them */
  get kernelCounters(): KernelSlots['counters'] | null { return this.#kernel?.counters ?? null; }

  close(): void {
    this.#slots.close();
    this.#kernel?.close();
  }
}

