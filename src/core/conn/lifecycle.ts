/**
 * A connection's life (ip_vs_conn.c): creation bound to its server (ip_vs_conn_new,
 * ip_vs_bind_dest), expiry by timer (ip_vs_conn_expire: templates that still control entries
 * are kept), and removal (ip_vs_unbind_dest, with the overload flag cleared below the low-water
 * mark and a deleted server freed with its last reference).
 */
import { countConn } from '../accounting.js';
import { ConnFlag, FWD_SHIFT, TICKS_PER_SEC } from '../conn-table.js';
import type { EngineState } from '../engine-state.js';
import type { OffloadPolicy } from '../offload-policy.js';
import type { SchedContext } from '../scheduler.js';
import { Fwd, type RealServer } from '../service.js';
import { TCP_DEFAULT_TIMEOUTS, TcpState } from '../tcp-states.js';
import { Event } from '../verdict.js';
import { IPPROTO_TCP } from '../../wire/ipv4.js';

/** Initial timeout of a new connection before its first state transition (ip_vs_conn_new). */
const NEW_CONN_TIMEOUT_S = 3;
/** A template that expires while it still controls connections is re-armed for this long. */
export const EXPIRE_LATER_S = 60;

/** Result of creating an entry: its index, or TableFull. */
export const TABLE_FULL = -1;

/** How far a full table looks for a half-open entry to evict: queue slots (of TICK_MS) and
 *  entries. The slots cover SYN_RECV's whole timeout (a flood's entries wait there, re-queued,
 *  once their creation timer has passed: the 8 s this was once missed them 11 s after a flood);
 *  the entry bound keeps a full table of live connections cheap to refuse from. */
const EVICT_SLOTS = (TCP_DEFAULT_TIMEOUTS[TcpState.SYN_RECV]! + NEW_CONN_TIMEOUT_S + 1) * TICKS_PER_SEC;
const EVICT_ENTRIES = 64;

export class ConnLifecycle {
  readonly #s: EngineState;
  readonly #offload: OffloadPolicy;
  /** the timer wheel's callback, bound once */
  readonly onDue = (i: number): void => this.expire(i);

  constructor(s: EngineState, offload: OffloadPolicy) {
    this.#s = s;
    this.#offload = offload;
  }

  /** A new entry for the flow in ctx to server d (real port dport), controlled by template t
   *  (-1: none). Returns its index, or TABLE_FULL. The entry keeps d's forwarding method from
   *  now on (ip_vs_bind_xmit: a later -e changes new connections only); DR and TUN entries
   *  never see replies (NOOUTPUT). */
  create(d: RealServer, ctx: SchedContext, dport: number, flags: number, t: number): number {
    const s = this.#s;
    const conns = s.conns;
    const method = (d.fwd << FWD_SHIFT) | (d.fwd === Fwd.MASQ ? 0 : ConnFlag.NOOUTPUT);
    const f = ConnFlag.INACTIVE | method | flags;
    const expires = s.nowTick + NEW_CONN_TIMEOUT_S * TICKS_PER_SEC;
    let c = conns.insert(ctx.proto, ctx.caddr, ctx.cport, ctx.vaddr, ctx.vport, d.addr, dport, d.id, f, expires, s.nowTick);
    if (c < 0 && s.sysctl.evictEmbryonic && this.#evictEmbryonic()) c = conns.insert(ctx.proto, ctx.caddr, ctx.cport, ctx.vaddr, ctx.vport, d.addr, dport, d.id, f, expires, s.nowTick);
    if (c < 0) return TABLE_FULL;
    d.inactConns++;
    checkOverload(d);
    countConn(d, s.stats);
    if (t >= 0) {
      conns.ctl[c] = t;
      conns.ctl[t]!++;
    }
    s.events[Event.ConnsCreated]!++;
    this.#offload.created(c);
    return c;
  }

  /**
   * The table is full: remove the half-open TCP entry due soonest (SYN_RECV: a SYN forwarded,
   * no handshake completed; not a template), if one is among the
   * first EVICT_ENTRIES queued. An offloaded one is a connection the kernel set up (the engine
   * offers only established ones), whose handshake ACK the kernel reports (docs/kernel-setup.md
   * KF_ACK): its state is the engine's; unlink() withdraws it, its kernel entries go and its slot
   * comes back. Without that a flood set up in the kernel filled the table with entries no
   * eviction could touch, and real clients were locked out (syn-flood.test with kernel set-up:
   * 0 of 20 answered during the flood). Under a SYN flood these are the flood's own entries, a few
   * seconds old (new entries stay queued at their creation timeout, NEW_CONN_TIMEOUT_S), while a
   * real client completes its handshake within a round trip. IPVS has no such rule (its
   * drop_entry drops at random when memory is low); nf_conntrack evicts unconfirmed entries
   * first in the same way. Returns whether one was removed (counted: embryonic_evicted).
   */
  #evictEmbryonic(): boolean {
    const v = this.#s.conns.soonest(EVICT_SLOTS, EVICT_ENTRIES, this.#embryonic);
    if (v < 0) return false;
    this.unlink(v);
    this.#s.events[Event.EmbryonicEvicted]!++;
    return true;
  }

  readonly #embryonic = (i: number): boolean => {
    const conns = this.#s.conns;
    return conns.proto(i) === IPPROTO_TCP && conns.state(i) === TcpState.SYN_RECV && (conns.flags(i) & ConnFlag.TEMPLATE) === 0;
  };

  /** Timer expiry of entry i (ip_vs_conn_expire). */
  expire(i: number): void {
    const s = this.#s;
    const conns = s.conns;
    if ((conns.flags(i) & ConnFlag.OFFLOADED) !== 0) {
      // The kernel may have forwarded packets since its last report: take the connection back
      // (which restarts the timer from its last packet) and keep it if it is still in use.
      this.#offload.withdraw(i);
      if (conns.expires(i) > s.nowTick) return;
    }
    const f = conns.flags(i);
    if ((f & ConnFlag.TEMPLATE) !== 0 && conns.ctl[i]! > 0) {
      // still controls connections: keep it, look again in 60 s
      conns.setFlags(i, f | ConnFlag.EXPIRE_LATER);
      conns.rearm(i, s.nowTick + EXPIRE_LATER_S * TICKS_PER_SEC);
      if (s.sync !== null) s.sync.keptAlive(i);
      return;
    }
    this.unlink(i);
  }

  /**
   * ip_vs_expire_nodest_conn_flush: remove every entry whose server is deleted (not available),
   * except a template that still controls entries; a template left controlling none by this is
   * removed with it. Counted as expire_nodest_conn's expiries (expired_nodest), one per entry.
   * O(table capacity): control plane only, once per change. Returns how many were removed.
   */
  expireNodest(): number {
    const s = this.#s;
    const conns = s.conns;
    // an entry can only name a deleted server that is in the trash (retire frees the others)
    if (s.dests.trash.length === 0) return 0;
    let n = 0;
    conns.forEach((i) => {
      if ((conns.flags(i) & ConnFlag.LIVE) === 0 || s.dests.byId(conns.dest(i)).available) return;
      if ((conns.flags(i) & ConnFlag.TEMPLATE) !== 0 && conns.ctl[i]! > 0) return;
      const t = (conns.flags(i) & ConnFlag.TEMPLATE) === 0 ? conns.ctl[i]! : -1;
      this.unlink(i);
      n++;
      if (t >= 0 && conns.ctl[t]! === 0 && (conns.flags(t) & ConnFlag.LIVE) !== 0) {
        this.unlink(t);
        n++;
      }
    });
    s.events[Event.ExpiredNoDest]! += n;
    return n;
  }

  /** Remove entry i now: detach from its template, unbind from its server, free the slot. */
  unlink(i: number): void {
    const s = this.#s;
    const conns = s.conns;
    const f = conns.flags(i);
    if ((f & ConnFlag.OFFLOADED) !== 0) this.#offload.withdraw(i);
    const d = s.dests.byId(conns.dest(i));
    if ((f & ConnFlag.TEMPLATE) !== 0) s.events[Event.TemplatesExpired]!++;
    else {
      const t = conns.ctl[i]!;
      if (t >= 0) conns.ctl[t]!--;
      s.events[Event.ConnsExpired]!++;
    }
    unbind(d, f);
    this.#offload.removed(i);
    conns.remove(i);
    if (!d.available && d.refs === 0) s.dests.release(d);
  }
}

/**
 * ip_vs_unbind_dest's accounting for an entry with connection flags f leaving server d: its
 * counter goes down, and the overload flag clears once below the low-water mark (the lower
 * threshold, else 3/4 of the upper one).
 */
export function unbind(d: RealServer, f: number): void {
  if ((f & ConnFlag.TEMPLATE) !== 0) d.persistConns--;
  else if ((f & ConnFlag.INACTIVE) !== 0) d.inactConns--;
  else d.activeConns--;
  const n = d.activeConns + d.inactConns;
  if (d.lThreshold !== 0) {
    if (n < d.lThreshold) d.overloaded = false;
  } else if (d.uThreshold !== 0) {
    if (n * 4 < d.uThreshold * 3) d.overloaded = false;
  } else d.overloaded = false;
}

/** ip_vs_bind_dest's overload check: at the upper threshold the server takes no new connections. */
export function checkOverload(d: RealServer): void {
  if (d.uThreshold !== 0 && d.activeConns + d.inactConns >= d.uThreshold) d.overloaded = true;
}
