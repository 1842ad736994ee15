/**
 * The connection table: struct-of-arrays in typed arrays, preallocated to `capacity` entries.
 *
 * Hashing (as IPVS, ipvs-spec §2.2): every entry is hashed ONCE, on (protocol, client address,
 * client port). An inbound packet (client -> VIP) hashes its source; a reply (RS -> client)
 * hashes its destination; both land in the same bucket, so one chain serves both lookups.
 * Templates hash on (protocol, masked client, 0). Buckets = next power of two >= capacity, so
 * chains average <= 1 entry at full load. The hash is seeded (injected) against flooding.
 *
 * Expiry: an intrusive doubly-linked timer wheel of WHEEL_SLOTS slots of TICK_MS each. An
 * entry sits in slot (queuedTick & mask). Extending an expiry touches only `expires` (lazy:
 * the entry is re-queued when its slot comes round); shortening it re-links the entry. The
 * wheel arrays have WHEEL_SLOTS extra sentinel heads after the entries.
 *
 * Memory per entry: 3x4 (addrs) + 4x2 (ports, dest id) + 3x1 (proto, state, flags)
 * + 4 (expires) + 4 (hash next) + 8 (wheel links) + 4 (control) + 4 (bucket) = 47 bytes.
 *
 * Addresses are stored as int32 (the uint32 value `| 0`): see readI32 in wire/ipv4.ts. Every
 * method normalises the addresses it is given, so callers may pass either form.
 *
 * Field meanings:
 *   caddr/cport  client; vaddr/vport virtual; daddr/dport real server (after port mapping)
 *   dest         RealServer id (1..65535)
 *   state        TCP state (TcpState), 0 for UDP; templates: 0
 *   flags        ConnFlag bits
 *   ctl          normal entry: index of its controlling template, or -1
 *                template: number of entries it controls (n_control)
 */

export const TICK_MS = 125;
export const TICKS_PER_SEC = 1000 / TICK_MS;
export const WHEEL_BITS = 13;
export const WHEEL_SLOTS = 1 << WHEEL_BITS; // 8192 ticks = 1024 s per revolution
const WHEEL_MASK = WHEEL_SLOTS - 1;

export const ConnFlag = {
  /** counted in the dest's inactive counter (else active) */
  INACTIVE: 0x01,
  TEMPLATE: 0x02,
  /** template state ASSURED */
  ASSURED: 0x04,
  /** template kept past its timeout because it still controlled entries: timeout is 60 s */
  EXPIRE_LATER: 0x08,
  /** one-packet scheduling: freed right after forwarding */
  ONE_PACKET: 0x10,
  /** slot in use */
  LIVE: 0x80,
} as const;

export interface ConnTableOptions {
  capacity: number;
  /** 32-bit hash seed (inject a random one in production) */
  seed: number;
}

export class ConnTable {
  readonly capacity: number;
  readonly caddr: Int32Array;
  readonly vaddr: Int32Array;
  readonly daddr: Int32Array;
  readonly cport: Uint16Array;
  readonly vport: Uint16Array;
  readonly dport: Uint16Array;
  readonly dest: Uint16Array;
  readonly proto: Uint8Array;
  readonly state: Uint8Array;
  readonly flags: Uint8Array;
  /** expiry, in ticks of the caller's clock */
  readonly expires: Uint32Array;
  readonly ctl: Int32Array;
  readonly #hnext: Int32Array;
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
    if (!Number.isInteger(n) || n < 1 || n > 1 << 27) throw new RangeError(`connection table capacity ${n} not in 1..2^27`);
    this.capacity = n;
    this.caddr = new Int32Array(n);
    this.vaddr = new Int32Array(n);
    this.daddr = new Int32Array(n);
    this.cport = new Uint16Array(n);
    this.vport = new Uint16Array(n);
    this.dport = new Uint16Array(n);
    this.dest = new Uint16Array(n);
    this.proto = new Uint8Array(n);
    this.state = new Uint8Array(n);
    this.flags = new Uint8Array(n);
    this.expires = new Uint32Array(n);
    this.ctl = new Int32Array(n);
    this.#hnext = new Int32Array(n);
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
    // Free list threaded through #hnext, lowest index first.
    for (let i = 0; i < n - 1; i++) this.#hnext[i] = i + 1;
    this.#hnext[n - 1] = -1;
    this.#freeHead = 0;
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
  /** total bytes held by the table's typed arrays */
  get byteLength(): number {
    return (
      this.caddr.byteLength + this.vaddr.byteLength + this.daddr.byteLength + this.cport.byteLength + this.vport.byteLength +
      this.dport.byteLength + this.dest.byteLength + this.proto.byteLength + this.state.byteLength + this.flags.byteLength +
      this.expires.byteLength + this.ctl.byteLength + this.#hnext.byteLength + this.#wprev.byteLength + this.#wnext.byteLength +
      this.#buckets.byteLength
    );
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
    caddr |= 0;
    vaddr |= 0;
    let i = this.#buckets[this.bucketOf(proto, caddr, cport)]!;
    while (i >= 0) {
      if (
        this.caddr[i] === caddr &&
        this.cport[i] === cport &&
        this.vport[i] === vport &&
        this.vaddr[i] === vaddr &&
        this.proto[i] === proto &&
        (this.flags[i]! & ConnFlag.TEMPLATE) === 0
      )
        return i;
      i = this.#hnext[i]!;
    }
    return -1;
  }

  /** Reply lookup (ip_vs_conn_out_get for MASQ): packet RS -> client. Returns index or -1. */
  findOut(proto: number, caddr: number, cport: number, raddr: number, rport: number): number {
    caddr |= 0;
    raddr |= 0;
    let i = this.#buckets[this.bucketOf(proto, caddr, cport)]!;
    while (i >= 0) {
      if (
        this.caddr[i] === caddr &&
        this.cport[i] === cport &&
        this.dport[i] === rport &&
        this.daddr[i] === raddr &&
        this.proto[i] === proto &&
        (this.flags[i]! & ConnFlag.TEMPLATE) === 0
      )
        return i;
      i = this.#hnext[i]!;
    }
    return -1;
  }

  /** Template lookup (ip_vs_ct_in_get): (protocol, masked client, 0, vaddr, vport). */
  findTemplate(proto: number, snet: number, vaddr: number, vport: number): number {
    snet |= 0;
    vaddr |= 0;
    let i = this.#buckets[this.bucketOf(proto, snet, 0)]!;
    while (i >= 0) {
      if (
        (this.flags[i]! & ConnFlag.TEMPLATE) !== 0 &&
        this.caddr[i] === snet &&
        this.cport[i] === 0 &&
        this.vaddr[i] === vaddr &&
        this.vport[i] === vport &&
        this.proto[i] === proto
      )
        return i;
      i = this.#hnext[i]!;
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
    if (!this.#wheelStarted) this.#startWheel(nowTick); // the wheel starts with the first entry
    if (i < 0) return -1;
    this.#freeHead = this.#hnext[i]!;
    this.proto[i] = proto;
    this.caddr[i] = caddr;
    this.cport[i] = cport;
    this.vaddr[i] = vaddr;
    this.vport[i] = vport;
    this.daddr[i] = daddr;
    this.dport[i] = dport;
    this.dest[i] = dest;
    this.state[i] = 0;
    this.flags[i] = flags | ConnFlag.LIVE;
    this.ctl[i] = (flags & ConnFlag.TEMPLATE) !== 0 ? 0 : -1;
    const b = this.bucketOf(proto, caddr | 0, cport);
    this.#hnext[i] = this.#buckets[b]!;
    this.#buckets[b] = i;
    this.expires[i] = expiresTick;
    this.#wheelLink(i, expiresTick);
    this.#count++;
    if (flags & ConnFlag.TEMPLATE) this.#templates++;
    return i;
  }

  /** Unhash, dequeue and free entry i. */
  remove(i: number): void {
    const b = this.bucketOf(this.proto[i]!, this.caddr[i]!, this.cport[i]!);
    let p = this.#buckets[b]!;
    if (p === i) this.#buckets[b] = this.#hnext[i]!;
    else {
      while (p >= 0 && this.#hnext[p] !== i) p = this.#hnext[p]!;
      if (p >= 0) this.#hnext[p] = this.#hnext[i]!;
    }
    this.#wheelUnlink(i);
    if (this.flags[i]! & ConnFlag.TEMPLATE) this.#templates--;
    this.flags[i] = 0;
    this.#hnext[i] = this.#freeHead;
    this.#freeHead = i;
    this.#count--;
  }

  /** Re-key an entry in place (template invalidation changes ports but not the hash key). */
  setPorts(i: number, vport: number, dport: number): void {
    this.vport[i] = vport;
    this.dport[i] = dport;
  }

  /** Set a new expiry. Extending is O(1) with no list work; shortening re-queues the entry. */
  rearm(i: number, expiresTick: number): void {
    const old = this.expires[i]!;
    this.expires[i] = expiresTick;
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
        if (this.expires[i]! <= nowTick) {
          onDue(i);
          // onDue removed it (LIVE cleared) or re-armed it; re-queue if still live and detached.
          if (this.flags[i]! & ConnFlag.LIVE && this.#wprev[i] === i) this.#wheelLink(i, this.expires[i]!);
        } else this.#wheelLink(i, this.expires[i]!);
        if (isLast) break;
        i = next;
      }
    }
    if (this.#wheelTick < nowTick) this.#wheelTick = nowTick; // skipped a full revolution or more
    return examined;
  }

  /** Visit every live entry (control plane: listings, flush). */
  forEach(fn: (i: number) => void): void {
    for (let i = 0; i < this.capacity; i++) if (this.flags[i]! & ConnFlag.LIVE) fn(i);
  }
}
