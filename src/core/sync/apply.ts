/**
 * The backup side: what the kernel's ip_vs_proc_conn does with one decoded record.
 *
 *  - a connection is looked up by <proto, caddr, cport, vaddr, vport>, a template by its key.
 *    A connection found with another daddr/dport: a record without INACTIVE replaces it (the old
 *    one expires now); one with INACTIVE is a late update of the replaced one and is ignored.
 *  - existing entry: only INACTIVE and the SEQ bits are updated (IP_VS_CONN_F_BACKUP_UPD_MASK),
 *    moving one count between its server's active and inactive counters when INACTIVE flips
 *    (the kernel moves only activeconns, leaving inactconns to drift; ulvs keeps both exact); an
 *    unbound one tries again to find its server (ip_vs_try_bind_dest).
 *  - new entry: bound to this director's server <vaddr, vport (or port 0), proto> / <daddr,
 *    dport (or 0)> if configured, and then takes that server's forwarding method (ip_vs_bind_dest
 *    for SYNC entries); otherwise created unbound "but still handled" with the master's method,
 *    on the stand-in server (dest-registry.ts UNBOUND_DEST_ID), its packets going to daddr:dport.
 *  - sequence data: a SYN-cookie connection's delta (OUT_SEQ, out_seq 0, D, D: synproxy-seq.ts)
 *    makes the entry translate as its master did (syn-proxy.ts restore); any other shape is kept
 *    as opaque data and announced on (seq-store.ts).
 *  - then: state from the record, timeout from the record (seconds, capped at MAX_TIMEOUT_S; the
 *    kernel's cap is near-infinite), or for v0 / timeout 0 the protocol's timeout of that state
 *    (templates 180 s); the sync packet count is set to sync_threshold and the announced state to
 *    the record's, so a backup that becomes master announces from there.
 * Records ulvs cannot carry are left out and counted (ApplySkip): IPv6, SCTP/AH/ESP, firewall
 * marks, LOCALNODE/BYPASS methods for an unbound entry, zero addresses, templates with a client
 * port, connections without one (NO_CPORT), a full table. Synced connections are not linked to their template (as the kernel).
 */
import { ConnFlag, FWD_SHIFT } from '../conn-flags.js';
import { TICKS_PER_SEC } from '../conn-table.js';
import { checkOverload, unbind } from '../conn/lifecycle.js';
import type { ConnLifecycle } from '../conn/lifecycle.js';
import type { Decider } from '../decide.js';
import { UNBOUND_DEST_ID } from '../dest-registry.js';
import type { EngineState } from '../engine-state.js';
import type { OffloadPolicy } from '../offload-policy.js';
import type { ProtoTable } from '../proto/ops.js';
import { Fwd, FWMARK_PROTO, type RealServer } from '../service.js';
import { MAX_TIMEOUT_S } from '../timeouts.js';
import { KFlag } from '../../wire/ipvs-sync/constants.js';
import { IPPROTO_TCP } from '../../wire/ipv4.js';
import type { SyncRecord } from '../../wire/ipvs-sync/record.js';
import { entryFlagsOf } from './conn-record.js';
import type { SeqStore } from './seq-store.js';
import { synProxyDeltaOf } from './synproxy-seq.js';

/** Why the backup left a well-formed record out, or what it noticed (index of `counters`). */
export const ApplyCounter = {
  Created: 0,
  Updated: 1,
  /** created without a server here (unbound, still forwarded) */
  CreatedUnbound: 2,
  /** an unbound entry found its server on a later record */
  Bound: 3,
  /** the entry had another server: expired, recreated */
  Replaced: 4,
  /** INACTIVE record for an entry already replaced: ignored (taken, as the kernel) */
  LateIgnored: 5,
  TimeoutCapped: 6,
  SkipIpv6: 7,
  SkipProtocol: 8,
  /** a record of a fwmark service this director does not have */
  SkipFwmark: 9,
  SkipMethod: 10,
  SkipZeroAddress: 11,
  SkipTemplateCport: 12,
  SkipTableFull: 13,
  /** sequence data not kept (store full) */
  SeqNotKept: 14,
  /** a connection without client port (IP_VS_CONN_F_NO_CPORT: the FTP helper's data
   *  connections, matched on any client port; ulvs has no FTP helper) */
  SkipNoCport: 15,
} as const;
export const APPLY_COUNTER_NAMES = Object.keys(ApplyCounter);

/** Timeout of a template from a v0 record (the kernel's 3 * 60 * HZ), seconds. */
const V0_TEMPLATE_TIMEOUT_S = 180;

export class SyncApplier {
  readonly #s: EngineState;
  readonly #protos: ProtoTable;
  readonly #life: ConnLifecycle;
  readonly #offload: OffloadPolicy;
  readonly #decider: Decider;
  readonly #seq: SeqStore;
  readonly counters = new Float64Array(APPLY_COUNTER_NAMES.length);
  /** the decoder's visitor, bound once */
  readonly visit = (r: SyncRecord): boolean => this.apply(r);

  constructor(s: EngineState, protos: ProtoTable, life: ConnLifecycle, offload: OffloadPolicy, decider: Decider, seq: SeqStore) {
    this.#s = s;
    this.#protos = protos;
    this.#life = life;
    this.#offload = offload;
    this.#decider = decider;
    this.#seq = seq;
  }

  #skip(k: number): false {
    this.counters[k]!++;
    return false;
  }

  #fail(k: number): number {
    this.counters[k]!++;
    return -1;
  }

  /** Apply one record (s.nowTick must be current). True when taken. */
  apply(r: SyncRecord): boolean {
    const s = this.#s;
    const conns = s.conns;
    const k = r.connFlags;
    const template = (k & KFlag.TEMPLATE) !== 0;
    if (r.af !== 4) return this.#skip(ApplyCounter.SkipIpv6);
    // a fwmark service's template has protocol IP (0): ip_vs_proc_conn checks the protocol of
    // connections only
    if (!(template && r.protocol === FWMARK_PROTO) && this.#protos.of(r.protocol) === undefined) return this.#skip(ApplyCounter.SkipProtocol);
    // a connection of a fwmark service this director does not have: skipped, not kept unbound
    // as the kernel keeps it, since ulvs keeps no mark per entry to bind it by later
    if (r.fwmark !== 0 && this.#decider.index.byMark(r.fwmark) === null) return this.#skip(ApplyCounter.SkipFwmark);
    if ((r.caddr === 0 && !template) || r.vaddr === 0 || r.daddr === 0) return this.#skip(ApplyCounter.SkipZeroAddress);
    if (template && r.cport !== 0) return this.#skip(ApplyCounter.SkipTemplateCport);
    if ((k & KFlag.NO_CPORT) !== 0 && !template) return this.#skip(ApplyCounter.SkipNoCport);
    let c: number;
    if (!template) {
      c = conns.findIn(r.protocol, r.caddr, r.cport, r.vaddr, r.vport);
      if (c >= 0 && (conns.dport(c) !== r.dport || conns.daddr(c) >>> 0 !== r.daddr)) {
        if ((k & KFlag.INACTIVE) !== 0) {
          this.counters[ApplyCounter.LateIgnored]!++;
          return true;
        }
        this.#life.unlink(c); // ip_vs_conn_expire_now
        this.counters[ApplyCounter.Replaced]!++;
        c = -1;
      }
    } else c = conns.findTemplate(r.protocol, r.caddr, r.vaddr, r.vport);
    if (c >= 0) this.#update(c, k);
    else {
      c = this.#create(r, k);
      if (c < 0) return false;
    }
    this.#settle(c, r, template);
    return true;
  }

  /** An existing entry: INACTIVE (and SEQ) from the record; an unbound one tries to bind. */
  #update(c: number, k: number): void {
    const conns = this.#s.conns;
    conns.setFlags(c, conns.flags(c) | ConnFlag.SYNCED);
    this.counters[ApplyCounter.Updated]!++;
    const f = conns.flags(c);
    const d = this.#s.dests.maybeById(conns.dest(c)); // a template's server may be gone (persist.ts)
    if (d === null) return;
    if ((f & ConnFlag.TEMPLATE) === 0) {
      const wasInactive = (f & ConnFlag.INACTIVE) !== 0;
      const inactive = (k & KFlag.INACTIVE) !== 0;
      if (wasInactive !== inactive) {
        if (inactive) {
          d.activeConns--;
          d.inactConns++;
        } else {
          d.inactConns--;
          d.activeConns++;
        }
        conns.setFlags(c, (f & ~ConnFlag.INACTIVE) | (inactive ? ConnFlag.INACTIVE : 0));
      }
    }
    if (d.id === UNBOUND_DEST_ID) this.#tryBind(c);
  }

  /** ip_vs_try_bind_dest: an unbound entry whose server now exists here takes it and its method. */
  #tryBind(c: number): void {
    const s = this.#s;
    const conns = s.conns;
    const fwmark = conns.proto(c) === FWMARK_PROTO ? conns.vaddr(c) >>> 0 : 0; // a fwmark template's address is its mark
    const d = this.#findDest(conns.proto(c), conns.vaddr(c), conns.vport(c), conns.daddr(c), conns.dport(c), fwmark);
    if (d === null) return;
    const f = conns.flags(c);
    if ((f & ConnFlag.OFFLOADED) !== 0) this.#offload.withdraw(c);
    this.#offload.removed(c);
    unbind(s.dests.unbound, f);
    conns.setDest(c, d.id);
    conns.setFlags(c, (conns.flags(c) & ~(ConnFlag.FWD_MASK | ConnFlag.NOOUTPUT)) | methodBits(d));
    bindCount(d, conns.flags(c));
    this.#offload.created(c);
    this.counters[ApplyCounter.Bound]!++;
  }

  #create(r: SyncRecord, k: number): number {
    const s = this.#s;
    const d = this.#findDest(r.protocol, r.vaddr, r.vport, r.daddr, r.dport, r.fwmark);
    let f = entryFlagsOf(k) | ConnFlag.SYNCED;
    if (d !== null) f = (f & ~(ConnFlag.FWD_MASK | ConnFlag.NOOUTPUT)) | methodBits(d);
    else {
      const fwd = k & KFlag.FWD_MASK;
      if (fwd !== Fwd.MASQ && fwd !== Fwd.TUNNEL && fwd !== Fwd.DROUTE) return this.#fail(ApplyCounter.SkipMethod);
    }
    const bound = d ?? s.dests.unbound;
    const c = s.conns.insert(r.protocol, r.caddr, r.cport, r.vaddr, r.vport, r.daddr, r.dport, bound.id, f, s.nowTick, s.nowTick);
    if (c < 0) return this.#fail(ApplyCounter.SkipTableFull);
    bindCount(bound, f); // no connection counted in the stats: ip_vs_conn_new does not either
    if ((f & ConnFlag.TEMPLATE) === 0) this.#offload.created(c);
    this.counters[d !== null ? ApplyCounter.Created : ApplyCounter.CreatedUnbound]!++;
    return c;
  }

  /** State, timeout, sequence data and the sync counters from the record (all entries). */
  #settle(c: number, r: SyncRecord, template: boolean): void {
    const s = this.#s;
    const conns = s.conns;
    if (template) conns.setFlags(c, r.state === 1 ? conns.flags(c) | ConnFlag.ASSURED : conns.flags(c) & ~ConnFlag.ASSURED);
    else if (conns.state(c) !== r.state) {
      this.#offload.beforeStateChange(c); // the kernel fast path carries ESTABLISHED only
      conns.setState(c, r.state);
    }
    let seconds = r.timeout;
    if (seconds > MAX_TIMEOUT_S) {
      seconds = MAX_TIMEOUT_S;
      this.counters[ApplyCounter.TimeoutCapped]!++;
    }
    let ticks = seconds * TICKS_PER_SEC;
    if (seconds === 0) ticks = template ? V0_TEMPLATE_TIMEOUT_S * TICKS_PER_SEC : this.#protos.of(r.protocol)!.timeoutTicks(c);
    conns.rearm(c, s.nowTick + ticks);
    const delta = template || r.protocol !== IPPROTO_TCP || (conns.flags(c) & ConnFlag.FWD_MASK) !== 0 ? 0 : synProxyDeltaOf(r);
    const deltas = this.#offload.seqDeltas;
    if (delta !== 0 && deltas !== null) {
      // a SYN-cookie connection's delta (synproxy-seq.ts): the engine translates with it
      if ((conns.flags(c) & ConnFlag.OFFLOADED) !== 0 && deltas.seqDelta(c) !== delta) this.#offload.withdraw(c);
      deltas.restore(c, delta);
    } else if (r.hasSeq && (r.connFlags & KFlag.SEQ_MASK) !== 0) {
      if (this.#seq.set(c, r, r.connFlags & KFlag.SEQ_MASK)) conns.setFlags(c, conns.flags(c) | ConnFlag.SEQ);
      else this.counters[ApplyCounter.SeqNotKept]!++;
    }
    const st = conns.sync;
    if (st !== null) {
      st.pkts[c] = s.sysctl.syncThreshold;
      st.meta[c] = r.state & 0x3f;
    }
  }

  /** ip_vs_find_dest: the service of `fwmark` (when not 0), else <proto, vaddr, vport> (or its
   *  port-0 service), then its server <daddr, dport> (or <daddr, 0>). */
  #findDest(proto: number, vaddr: number, vport: number, daddr: number, dport: number, fwmark: number): RealServer | null {
    const svc = this.#decider.index.byMark(fwmark) ?? this.#decider.index.find(proto, vaddr, vport);
    if (svc === null) return null;
    daddr >>>= 0;
    let any: RealServer | null = null;
    for (const d of svc.dests) {
      if (d.addr >>> 0 !== daddr) continue;
      if (d.port === dport) return d;
      if (d.port === 0) any = d;
    }
    return any;
  }
}

/** A server's method as entry flag bits (NOOUTPUT for DR and tunnelling). */
function methodBits(d: RealServer): number {
  return ((d.fwd << FWD_SHIFT) & ConnFlag.FWD_MASK) | (d.fwd === Fwd.MASQ ? 0 : ConnFlag.NOOUTPUT);
}

/** ip_vs_bind_dest's counters: a template counts as persistent, a connection as active or inactive. */
function bindCount(d: RealServer, f: number): void {
  if ((f & ConnFlag.TEMPLATE) !== 0) d.persistConns++;
  else if ((f & ConnFlag.INACTIVE) !== 0) d.inactConns++;
  else d.activeConns++;
  checkOverload(d);
}
