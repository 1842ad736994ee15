/**
 * IPVS's flood defences, per engine, with the kernel's knobs and rules:
 *
 *   update()        update_defense_level (ip_vs_ctl.c): from the memory available and the three
 *                   modes, which defences are on; the automatic modes write 1 <-> 2 back into
 *                   the sysctls (drop_entry, drop_packet, secure_tcp), as the kernel does
 *   todrop()        ip_vs_todrop (ip_vs_core.c): drop_packet's one-in-`rate` drop of packets
 *                   that would open a connection (the caller: director.ts, before scheduling,
 *                   where tcp_conn_schedule / udp_conn_schedule call it)
 *   dropEntries()   ip_vs_random_dropentry (ip_vs_conn.c) with todrop_entry: 1/32 of the table
 *                   at random, dropping half-open TCP entries (SYN_RECV, SYNACK), and
 *                   established TCP and UDP entries idle 60 s with 1..8 inbound packets (one of
 *                   every n entries with n packets), and templates no entry uses, not assured
 *   EngineState.tcpStatesDos   tcp_timeout_change: TCP moves by tcp_states_dos while on (tcp.ts);
 *                   the timeouts stay tcp_timeouts (the kernel changes only the state table)
 * defense_work_handler runs update() then, if drop_entry is on, dropEntries(), once a second:
 * here Director.defend(pages, random), which the data path calls with the memory it read.
 *
 * What "memory is low" means in ulvs. IPVS compares the host's free + buffer pages
 * (si_meminfo) with amemthresh (pages). ulvs has two things that run out, and counts memory as
 * low when either does, so the knob keeps its meaning (pages of memory left for new entries):
 *   - the host: MemAvailable from /proc/meminfo (the daemon reads it once a second and passes
 *     it in, in 4096-byte pages; until the first feed, the host's memory is not low);
 *   - the connection table, which is fixed in size and is what a flood actually fills: its free
 *     entries times the bytes one entry takes (ConnTable.byteLength / capacity, about 50), in
 *     4096-byte pages. With the default amemthresh (1024 pages, 4 MiB: about 84,000 entries)
 *     and --max-conns 1048576 over 2 workers, an engine's table counts as low above 84 % full.
 * The memory available is the smaller of the two, and drop_packet's automatic rate is the
 * kernel's amemthresh / (amemthresh - available). Each engine judges its own table (a worker's
 * share of --max-conns); the daemon shows the highest mode over the workers.
 *
 * Divergences, stated: offloaded entries (in the kernel fast path, whose timers ulvs learns
 * late) are never dropped; a one-packet-scheduling template is kept like an assured one (IPVS
 * tries todrop_entry on it). The random source is the caller's (core reads no randomness).
 */
import { ConnFlag, TICKS_PER_SEC, WHEEL_SLOTS } from './conn-table.js';
import type { ConnLifecycle } from './conn/lifecycle.js';
import type { EngineState } from './engine-state.js';
import { TcpState } from './tcp-states.js';
import { Event } from './verdict.js';
import { IPPROTO_TCP, IPPROTO_UDP } from '../wire/ipv4.js';

/** amemthresh's unit, bytes (the kernel's PAGE_SIZE on the machines IPVS documents) */
export const PAGE_BYTES = 4096;
/** todrop_entry: an entry whose timer was restarted less than this long ago is kept */
const IDLE_BEFORE_DROP_S = 60;

export const DEFENSES = ['drop_entry', 'drop_packet', 'secure_tcp'] as const;
export type DefenseName = (typeof DEFENSES)[number];

/** A defence switched on or off (by an automatic mode, or by a written mode). */
export interface DefenseChange {
  defense: DefenseName;
  on: boolean;
  /** the sysctl's value after the change (0..3) */
  mode: number;
  /** memory available when it happened, pages, and what it was made of */
  availPages: number;
  memPages: number;
  tablePages: number;
  amemthresh: number;
}

/** One engine's defences now (GET /v1/counters `defense`, the metrics' gauges). */
export interface DefenseStatus {
  /** each sysctl's value, 0..3 */
  mode: Record<DefenseName, number>;
  /** 1 while the defence acts */
  on: Record<DefenseName, number>;
  /** drop_packet: one of this many packets is dropped (0: none) */
  dropRate: number;
  /** memory available, pages: the smaller of the host's and the table's; -1 host not fed yet */
  availPages: number;
  memPages: number;
  tablePages: number;
  /** 1 when each source is below amemthresh */
  memLow: number;
  tableLow: number;
}

export class Defense {
  readonly #s: EngineState;
  /** MemAvailable, pages, as last fed; -1 before the first feed (not low) */
  #memPages = -1;
  #tablePages = 0;
  #availPages = 0;
  dropEntryOn = false;
  /** drop_packet: ipvs->drop_rate and drop_counter */
  dropRate = 0;
  #dropCounter = 0;
  /** ipvs->old_secure_tcp */
  #oldSecureTcp = 0;
  /** todrop_entry's counters, index = inbound packets (1..8) */
  readonly #entryCounters = new Int32Array(9);
  /** changes since the last takeChanges() (a few per second at most: one per defence per update) */
  #changes: DefenseChange[] = [];
  /** bytes one table entry takes (its typed arrays over its capacity: 50 and the buckets' rounding) */
  readonly #entryBytes: number;

  constructor(s: EngineState) {
    this.#s = s;
    // the wheel's sentinel heads are a fixed 64 KiB, not per entry
    this.#entryBytes = (s.conns.byteLength - WHEEL_SLOTS * 8) / s.conns.capacity;
  }

  /** MemAvailable in pages (the daemon's reading; negative: unknown, not low). */
  feed(memPages: number): void {
    this.#memPages = memPages >= 0 ? Math.floor(memPages) : -1;
  }

  /** update_defense_level, with the memory last fed and the table as it is now. */
  update(): void {
    const s = this.#s;
    const sys = s.sysctl;
    const conns = s.conns;
    this.#tablePages = Math.floor(((conns.capacity - conns.count) * this.#entryBytes) / PAGE_BYTES);
    const avail = (this.#availPages = this.#memPages >= 0 ? Math.min(this.#memPages, this.#tablePages) : this.#tablePages);
    const thresh = sys.amemthresh;
    const nomem = avail < thresh;
    const was = [this.dropEntryOn, this.dropRate > 0, s.tcpStatesDos];

    switch (sys.dropEntry) {
      case 0:
        this.dropEntryOn = false;
        break;
      case 1:
        this.dropEntryOn = nomem;
        if (nomem) sys.dropEntry = 2;
        break;
      case 2:
        this.dropEntryOn = nomem;
        if (!nomem) sys.dropEntry = 1;
        break;
      case 3:
        this.dropEntryOn = true;
        break;
    }

    switch (sys.dropPacket) {
      case 0:
        this.dropRate = 0;
        break;
      case 1:
      case 2:
        if (nomem) {
          this.dropRate = this.#dropCounter = Math.floor(thresh / (thresh - avail));
          sys.dropPacket = 2;
        } else {
          this.dropRate = 0;
          sys.dropPacket = 1;
        }
        break;
      case 3:
        this.dropRate = sys.amDroprate;
        break;
    }

    let toChange = -1;
    const old = this.#oldSecureTcp;
    switch (sys.secureTcp) {
      case 0:
        if (old >= 2) toChange = 0;
        break;
      case 1:
      case 2:
        if (nomem) {
          if (old < 2) toChange = 1;
          sys.secureTcp = 2;
        } else {
          if (old >= 2) toChange = 0;
          sys.secureTcp = 1;
        }
        break;
      case 3:
        if (old < 2) toChange = 1;
        break;
    }
    this.#oldSecureTcp = sys.secureTcp;
    if (toChange >= 0) s.tcpStatesDos = sys.secureTcp > 1;

    const now = [this.dropEntryOn, this.dropRate > 0, s.tcpStatesDos];
    const modes = [sys.dropEntry, sys.dropPacket, sys.secureTcp];
    for (let k = 0; k < DEFENSES.length; k++) {
      if (was[k] === now[k]) continue;
      this.#changes.push({ defense: DEFENSES[k]!, on: now[k]!, mode: modes[k]!, availPages: avail, memPages: this.#memPages, tablePages: this.#tablePages, amemthresh: thresh });
    }
  }

  /** ip_vs_todrop: true for one of every dropRate calls while drop_packet is on. Per packet. */
  todrop(): boolean {
    if (this.dropRate === 0) return false;
    if (--this.#dropCounter > 0) return false;
    this.#dropCounter = this.dropRate;
    return true;
  }

  /**
   * ip_vs_random_dropentry: look at capacity/32 entries chosen by `random` (uniform uint32;
   * the kernel picks 1/32 of its hash buckets, about one entry each) and drop those its rules
   * choose (file header). Returns how many were dropped (counted: defense_entry_dropped).
   */
  dropEntries(random: () => number, life: ConnLifecycle): number {
    const s = this.#s;
    const conns = s.conns;
    const n = conns.capacity;
    const looks = Math.max(1, n >>> 5);
    let dropped = 0;
    for (let k = 0; k < looks; k++) {
      const i = random() % n;
      if (!this.#chosen(i)) continue;
      const t = (conns.flags(i) & ConnFlag.TEMPLATE) === 0 ? conns.ctl[i]! : -1;
      life.unlink(i);
      dropped++;
      // ip_vs_conn_expire: the template that controlled it goes too once it controls nothing
      // and is not assured
      if (t >= 0 && conns.ctl[t] === 0 && (conns.flags(t) & ConnFlag.ASSURED) === 0) {
        life.unlink(t);
        dropped++;
      }
    }
    s.events[Event.DefenseEntryDropped]! += dropped;
    return dropped;
  }

  /** ip_vs_random_dropentry's choice for entry i. */
  #chosen(i: number): boolean {
    const conns = this.#s.conns;
    const f = conns.flags(i);
    if ((f & ConnFlag.LIVE) === 0 || (f & ConnFlag.OFFLOADED) !== 0) return false;
    if ((f & ConnFlag.TEMPLATE) !== 0) return conns.ctl[i] === 0 && (f & ConnFlag.ASSURED) === 0;
    const proto = conns.proto(i);
    if (proto === IPPROTO_TCP) {
      const st = conns.state(i);
      if (st === TcpState.SYN_RECV || st === TcpState.SYNACK) return true;
      return st === TcpState.ESTABLISHED && this.#todropEntry(i, this.#s.timeouts.tcpTicks[st]!);
    }
    return this.#todropEntry(i, proto === IPPROTO_UDP ? this.#s.timeouts.udpTicks : 0);
  }

  /** todrop_entry: idle for 60 s (its timer restarted that long ago) and 1..8 inbound packets,
   *  of which one entry in n with n packets is dropped. timeout: the entry's, ticks. */
  #todropEntry(i: number, timeout: number): boolean {
    const s = this.#s;
    if (s.nowTick + timeout < s.conns.expires(i) + IDLE_BEFORE_DROP_S * TICKS_PER_SEC) return false;
    const p = s.conns.inPkts[i]!;
    if (p < 1 || p > 8) return false;
    if (--this.#entryCounters[p]! > 0) return false;
    this.#entryCounters[p] = p;
    return true;
  }

  /** The changes since the last call (for the daemon's log), oldest first. */
  takeChanges(): DefenseChange[] {
    const c = this.#changes;
    this.#changes = [];
    return c;
  }

  status(): DefenseStatus {
    const sys = this.#s.sysctl;
    const thresh = sys.amemthresh;
    return {
      mode: { drop_entry: sys.dropEntry, drop_packet: sys.dropPacket, secure_tcp: sys.secureTcp },
      on: { drop_entry: +this.dropEntryOn, drop_packet: +(this.dropRate > 0), secure_tcp: +this.#s.tcpStatesDos },
      dropRate: this.dropRate,
      availPages: this.#availPages,
      memPages: this.#memPages,
      tablePages: this.#tablePages,
      memLow: +(this.#memPages >= 0 && this.#memPages < thresh),
      tableLow: +(this.#tablePages < thresh),
    };
  }
}

/**
 * The director's view over its engines (GET /v1/counters, the metrics): each defence's mode and
 * state is the highest of any engine (an automatic mode shows 2 while any engine's table or the
 * host is low), the drop rate the highest, the memory available the smallest. null: no engine.
 */
export function mergeDefense(all: readonly DefenseStatus[]): DefenseStatus | null {
  if (all.length === 0) return null;
  const max = (f: (d: DefenseStatus) => number) => Math.max(...all.map(f));
  const min = (f: (d: DefenseStatus) => number) => Math.min(...all.map(f));
  const per = (f: (d: DefenseStatus) => Record<DefenseName, number>) => Object.fromEntries(DEFENSES.map((k) => [k, max((d) => f(d)[k])])) as Record<DefenseName, number>;
  return {
    mode: per((d) => d.mode),
    on: per((d) => d.on),
    dropRate: max((d) => d.dropRate),
    availPages: min((d) => d.availPages),
    memPages: max((d) => d.memPages),
    tablePages: min((d) => d.tablePages),
    memLow: max((d) => d.memLow),
    tableLow: max((d) => d.tableLow),
  };
}
