/**
 * The connection table: struct-of-arrays in typed arrays, preallocated to `capacity` entries.
 *
 * Hashing (as IPVS, ipvs-spec §2.2): every entry is hashed ONCE, on (protocol, client address,
 * client port). An inbound packet (client -> VIP) hashes its source; a reply (RS -> client)
 * hashes its destination; both land in the same bucket, so one chain serves both lookups.
 * Templates hash on (protocol, masked client, 0). Buckets = next power of two >= capacity, so
 * chains average <= 1 entry at full load. The hash is seeded (injected) against flooding.
 *
 * Expiry: an intrusive doubly-linked timer wheel of WHEEL_SLOTS slots of TICK_MS each. An entry
 * sits in slot (queuedTick & mask). Extending an expiry touches only `expires` (lazy: re-queued
 * when its slot comes round); shortening re-links it. WHEEL_SLOTS sentinel heads follow.
 *
 * Layout: the fields a packet touches live together in one 32-byte record of an Int32Array
 * (array of structs), so a lookup plus update costs one cache line instead of a dozen scattered
 * ones; the rarely touched fields (timer-wheel links, template control) are separate arrays.
 *
 *   word 0  caddr                      client address (int32, see readI32)
 *   word 1  vaddr                      virtual address
 *   word 2  daddr                      real server address
 *   word 3  cport << 16 | vport
 *   word 4  dport << 16 | dest         dest = RealServer id (1..65535)
 *   word 5  proto | state << 8 | flags << 16   (flags: 16 bits, ConnFlag)
 *   word 6  expires                    tick of the caller's clock
 *   word 7  hash-chain next (or free-list next)
 *   ctl[i]      normal entry: index of its controlling template, or -1;
 *               template: number of entries it controls (n_control)
 *   wprev/wnext timer-wheel links (WHEEL_SLOTS sentinel heads after the entries)
 *   buckets     chain heads
 *   seen        packets forwarded in a state that may be offloaded (saturates at 255)
 *   inPkts      inbound packets (IPVS's in_pkts, saturates at 255; drop_entry reads it)
 *   sync        per-entry state of connection synchronisation (core/sync/conn-state.ts), null
 *               until a sync master first starts: +9 bytes per entry from then on
 *
 * Memory per entry: 32 + 4 (ctl) + 8 (wheel) + 4 (bucket) + 1 (seen) + 1 (inPkts) = 50 bytes.
 * Addresses are int32 (uint32 `| 0`); methods normalise those given, accessors return int32.
 */
import { ConnFlag } from './conn-flags.js';
import type { SyncConnState } from './sync/conn-state.js';

export const TICK_MS = 125;
export const TICKS_PER_SEC = 1000 / TICK_MS;
export const WHEEL_BITS = 13;
export const WHEEL_SLOTS = 1 << WHEEL_BITS; // 8192 ticks = 1024 s per revolution
const WHEEL_MASK = WHEEL_SLOTS - 1;

export { ConnFlag, FWD_SHIFT } from './conn-flags.js';

/** capacity: entries; seed: 32-bit hash seed (inject a random one in production) */
export interface ConnTableOptions { capacity: number; seed: number }

const STRIDE = 8;
const W_CADDR = 0;
const W_VADDR = 1;
const W_DADDR = 2;
const W_PORTS = 3;
const W_DPORT_DEST = 4;
const W_META = 5;
const W_EXPIRES = 6;
const W_HNEXT = 7;
const META_TEMPLATE = ConnFlag.TEMPLATE << 16;

export class ConnTable {
  readonly capacity: number;
  /** the records, STRIDE int32 words per entry (see the layout above) */
  readonly #e: Int32Array;
  readonly ctl: Int32Array;
  readonly seen: Uint8Array;
  readonly inPkts: Uint8Array;
  sync: SyncConnState | null = null;
  readonly #wprev: Int32Array;
  readonly #wnext: Int32Array;
  readonly #buckets: Int32Array;
  readonly #bmask: number;
  readonly #seed: number;
  #freeHead: number;
  #count = 0;
  #templates = 0;
  /** last tick whose slot has been processed (valid once #wheelStarted) */
  #wheelTick = 0;
  #wheelStarted = false;

  constructor(o: ConnTableOptions) {
    const n = o.capacity;
    if (!Number.isInteger(n) || n < 1 || n > 1 << 26) throw new RangeError(`connection table capacity ${n} not in 1..2^26`);
    this.capacity = n;
    this.#e = new Int32Array(n * STRIDE);
    this.ctl = new Int32Array(n);
    this.seen = new Uint8Array(n);
    this.inPkts = new Uint8Array(n);
    this.#wprev = new Int32Array(n + WHEEL_SLOTS);
    this.#wnext = new Int32Array(n + WHEEL_SLOTS);
    let b = 1;
    while (b < n) b <<= 1;
    this.#buckets = new Int32Array(b).fill(-1);
    this.#bmask = b - 1;
    this.#seed = o.seed | 0;
    for (let s = 0; s < WHEEL_SLOTS; s++) {
      this.#wprev[n + s] = n + s;
      this.#wnext[n + s] = n + s;
    }
    // Free list threaded through the hash-next word, lowest index first.
    for (let i = 0; i < n; i++) this.#e[i * STRIDE + W_HNEXT] = i + 1 < n ? i + 1 : -1;
    this.#freeHead = 0;
  }

  // Field accessors (int32 addresses; ports and ids unsigned).
  caddr(i: number): number {
    return this.#e[i * STRIDE + W_CADDR]!;
  }
  vaddr(i: number): number {
    return this.#e[i * STRIDE + W_VADDR]!;
  }
  daddr(i: number): number {
    return this.#e[i * STRIDE + W_DADDR]!;
  }
  cport(i: number): number {
    return this.#e[i * STRIDE + W_PORTS]! >>> 16;
  }
  vport(i: number): number {
    return this.#e[i * STRIDE + W_PORTS]! & 0xffff;
  }
  dport(i: number): number {
    return this.#e[i * STRIDE + W_DPORT_DEST]! >>> 16;
  }
  dest(i: number): number {
    return this.#e[i * STRIDE + W_DPORT_DEST]! & 0xffff;
  }
  proto(i: number): number {
    return this.#e[i * STRIDE + W_META]! & 0xff;
  }
  state(i: number): number {
    return (this.#e[i * STRIDE + W_META]! >>> 8) & 0xff;
  }
  flags(i: number): number {
    return (this.#e[i * STRIDE + W_META]! >>> 16) & 0xffff;
  }
  expires(i: number): number {
    return this.#e[i * STRIDE + W_EXPIRES]! >>> 0;
  }
  setState(i: number, s: number): void {
    const k = i * STRIDE + W_META;
    this.#e[k] = (this.#e[k]! & ~0xff00) | (s << 8);
  }
  setFlags(i: number, f: number): void {
    const k = i * STRIDE + W_META;
    this.#e[k] = (this.#e[k]! & 0xffff) | (f << 16);
  }

  /** live entries (connections + templates) */
  get count(): number {
    return this.#count;
  }
  get templates(): number {
    return this.#templates;
  }
  get bucketCount(): number {
    return this.#bmask + 1;
  }
  /** total bytes held by the table's typed arrays (not sync's, made when a master starts) */
  get byteLength(): number {
    return this.#e.byteLength + this.ctl.byteLength + this.#wprev.byteLength + this.#wnext.byteLength + this.#buckets.byteLength + this.seen.byteLength + this.inPkts.byteLength;
  }

  /** Bucket for (protocol, client address, client port). murmur3-style mixing, seeded. */
  bucketOf(proto: number, addr: number, port: number): number {
    let h = Math.imul(addr ^ this.#seed, 0xcc9e2d51);
    h = Math.imul((h << 15) | (h >>> 17), 0x1b873593);
    h ^= (port << 8) | proto;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) & this.#bmask;
  }

  /** Inbound lookup (ip_vs_conn_in_get): packet client -> VIP. Returns index or -1. */
  findIn(proto: number, caddr: number, cport: number, vaddr: number, vport: number): number {
    const e = this.#e;
    caddr |= 0;
    vaddr |= 0;
    const ports = (cport << 16) | vport;
    let i = this.#buckets[this.bucketOf(proto, caddr, cport)]!;
    while (i >= 0) {
      const b = i * STRIDE;
      if (e[b + W_CADDR] === caddr && e[b + W_PORTS] === ports && e[b + W_VADDR] === vaddr && (e[b + W_META]! & (0xff | META_TEMPLATE)) === proto) return i;
      i = e[b + W_HNEXT]!;
    }
    return -1;
  }

  /** Reply lookup (ip_vs_conn_out_get for MASQ): packet RS -> client. Returns index or -1. */
  findOut(proto: number, caddr: number, cport: number, raddr: number, rport: number): number {
    const e = this.#e;
    caddr |= 0;
    raddr |= 0;
    let i = this.#buckets[this.bucketOf(proto, caddr, cport)]!;
    while (i >= 0) {
      const b = i * STRIDE;
      if (
        e[b + W_CADDR] === caddr &&
        e[b + W_PORTS]! >>> 16 === cport &&
        e[b + W_DADDR] === raddr &&
        e[b + W_DPORT_DEST]! >>> 16 === rport &&
        (e[b + W_META]! & (0xff | META_TEMPLATE)) === proto
      )
        return i;
      i = e[b + W_HNEXT]!;
    }
    return -1;
  }

  /** Template lookup (ip_vs_ct_in_get): (protocol, masked client, 0, vaddr, vport). */
  findTemplate(proto: number, snet: number, vaddr: number, vport: number): number {
    const e = this.#e;
    snet |= 0;
    vaddr |= 0;
    let i = this.#buckets[this.bucketOf(proto, snet, 0)]!;
    while (i >= 0) {
      const b = i * STRIDE;
      if (e[b + W_CADDR] === snet && e[b + W_PORTS] === vport && e[b + W_VADDR] === vaddr && (e[b + W_META]! & (0xff | META_TEMPLATE)) === (proto | META_TEMPLATE)) return i;
      i = e[b + W_HNEXT]!;
    }
    return -1;
  }

  /**
   * Take a free entry, fill it, hash it and queue it to expire at `expiresTick` (`nowTick` is
   * the caller's current tick; the first insert starts the wheel there).
   * Returns the index, or -1 when the table is full (the caller counts the drop).
   */
  insert(
    proto: number,
    caddr: number,
    cport: number,
    vaddr: number,
    vport: number,
    daddr: number,
    dport: number,
    dest: number,
    flags: number,
    expiresTick: number,
    nowTick: number,
  ): number {
    const i = this.#freeHead;
    if (i < 0) return -1;
    if (!this.#wheelStarted) this.#startWheel(nowTick); // the wheel starts with the first entry
    const e = this.#e;
    const b = i * STRIDE;
    this.#freeHead = e[b + W_HNEXT]!;
    e[b + W_CADDR] = caddr;
    e[b + W_VADDR] = vaddr;
    e[b + W_DADDR] = daddr;
    e[b + W_PORTS] = (cport << 16) | vport;
    e[b + W_DPORT_DEST] = (dport << 16) | dest;
    e[b + W_META] = proto | ((flags | ConnFlag.LIVE) << 16);
    e[b + W_EXPIRES] = expiresTick;
    this.ctl[i] = (flags & ConnFlag.TEMPLATE) !== 0 ? 0 : -1;
    this.seen[i] = this.inPkts[i] = 0;
    if (this.sync !== null) this.sync.reset(i, nowTick);
    const h = this.bucketOf(proto, caddr | 0, cport);
    e[b + W_HNEXT] = this.#buckets[h]!;
    this.#buckets[h] = i;
    this.#wheelLink(i, expiresTick);
    this.#count++;
    if (flags & ConnFlag.TEMPLATE) this.#templates++;
    return i;
  }

  /** Unhash, dequeue and free entry i. */
  remove(i: number): void {
    const e = this.#e;
    const b = i * STRIDE;
    const h = this.bucketOf(e[b + W_META]! & 0xff, e[b + W_CADDR]!, e[b + W_PORTS]! >>> 16);
    let p = this.#buckets[h]!;
    if (p === i) this.#buckets[h] = e[b + W_HNEXT]!;
    else {
      while (p >= 0 && e[p * STRIDE + W_HNEXT] !== i) p = e[p * STRIDE + W_HNEXT]!;
      if (p >= 0) e[p * STRIDE + W_HNEXT] = e[b + W_HNEXT]!;
    }
    this.#wheelUnlink(i);
    if (this.flags(i) & ConnFlag.TEMPLATE) this.#templates--;
    e[b + W_META] = 0;
    e[b + W_HNEXT] = this.#freeHead;
    this.#freeHead = i;
    this.#count--;
  }

  /** Change the virtual and real ports in place (template invalidation; the hash key is
   *  (protocol, client, client port), which does not change). */
  setPorts(i: number, vport: number, dport: number): void {
    const b = i * STRIDE;
    this.#e[b + W_PORTS] = (this.#e[b + W_PORTS]! & ~0xffff) | vport;
    this.#e[b + W_DPORT_DEST] = (dport << 16) | (this.#e[b + W_DPORT_DEST]! & 0xffff);
  }

  /** Bind entry i to another server id (a synced entry finding its server: core/sync/apply.ts). */
  setDest(i: number, dest: number): void {
    const k = i * STRIDE + W_DPORT_DEST;
    this.#e[k] = (this.#e[k]! & ~0xffff) | dest;
  }

  /** Set a new expiry. Extending is O(1) with no list work; shortening re-queues the entry. */
  rearm(i: number, expiresTick: number): void {
    const k = i * STRIDE + W_EXPIRES;
    const old = this.#e[k]!;
    this.#e[k] = expiresTick;
    if (expiresTick < old) {
      this.#wheelUnlink(i);
      this.#wheelLink(i, expiresTick);
    }
  }

  #startWheel(nowTick: number): void {
    this.#wheelTick = nowTick - 1;
    this.#wheelStarted = true;
  }

  #wheelLink(i: number, tick: number): void {
    // Never queue behind the wheel: a slot already passed would only be seen a revolution later.
    const t = tick <= this.#wheelTick ? this.#wheelTick + 1 : tick;
    const head = this.capacity + (t & WHEEL_MASK);
    const last = this.#wprev[head]!;
    this.#wnext[last] = i;
    this.#wprev[i] = last;
    this.#wnext[i] = head;
    this.#wprev[head] = i;
  }

  #wheelUnlink(i: number): void {
    const p = this.#wprev[i]!;
    const n = this.#wnext[i]!;
    if (p === i) return; // detached (being processed)
    this.#wnext[p] = n;
    this.#wprev[n] = p;
    this.#wprev[i] = i;
    this.#wnext[i] = i;
  }

  /**
   * Advance the wheel to `nowTick`, calling `onDue(i)` for every entry whose expiry is
   * <= nowTick. `onDue` must either `remove(i)` or `rearm(i, later)` (or leave it, in which
   * case it is re-queued at its current expiry). Entries not yet due are re-queued. At most
   * one revolution of slots is walked per call, so a long pause costs O(entries), not O(time).
   * Returns the number of entries examined.
   */
  advance(nowTick: number, onDue: (i: number) => void): number {
    if (!this.#wheelStarted) this.#startWheel(nowTick);
    let examined = 0;
    let slots = 0;
    const n = this.capacity;
    while (this.#wheelTick < nowTick && slots < WHEEL_SLOTS) {
      const t = ++this.#wheelTick;
      slots++;
      const head = n + (t & WHEEL_MASK);
      const first = this.#wnext[head]!;
      if (first === head) continue;
      // Detach the whole slot so re-queued entries are not seen again in this pass.
      const last = this.#wprev[head]!;
      this.#wnext[head] = head;
      this.#wprev[head] = head;
      let i = first;
      for (;;) {
        const isLast = i === last;
        const next = this.#wnext[i]!;
        this.#wprev[i] = i; // detached: unlink is a no-op, link works
        this.#wnext[i] = i;
        examined++;
        if (this.#e[i * STRIDE + W_EXPIRES]! <= nowTick) {
          onDue(i);
          // onDue removed it (LIVE cleared) or re-armed it; re-queue if still live and detached.
          if (this.flags(i) & ConnFlag.LIVE && this.#wprev[i] === i) this.#wheelLink(i, this.#e[i * STRIDE + W_EXPIRES]!);
        } else this.#wheelLink(i, this.#e[i * STRIDE + W_EXPIRES]!);
        if (isLast) break;
        i = next;
      }
    }
    if (this.#wheelTick < nowTick) this.#wheelTick = nowTick; // skipped a full revolution or more
    return examined;
  }

  /** The first entry with `pick(i)`, in queue order from the next slot due (a lazily extended
   *  entry sits at its earlier tick), within `maxSlots` slots and `maxEntries` entries; else -1. */
  soonest(maxSlots: number, maxEntries: number, pick: (i: number) => boolean): number {
    if (!this.#wheelStarted) return -1;
    const n = this.capacity;
    let seen = 0;
    for (let s = 1; s <= maxSlots && s <= WHEEL_SLOTS; s++) {
      const head = n + ((this.#wheelTick + s) & WHEEL_MASK);
      for (let i = this.#wnext[head]!; i !== head; i = this.#wnext[i]!) {
        if (pick(i)) return i;
        if (++seen >= maxEntries) return -1;
      }
    }
    return -1;
  }

  /** Visit every live entry (control plane: listings, flush). */
  forEach(fn: (i: number) => void): void {
    for (let i = 0; i < this.capacity; i++) if (this.flags(i) & ConnFlag.LIVE) fn(i);
  }
}
