/**
 * A connection-table entry as a sync record (what the kernel's ip_vs_sync_conn copies from a
 * struct ip_vs_conn), and the translation between ulvs's entry flags (conn-flags.ts) and the
 * kernel's IP_VS_CONN_F_* bits.
 *
 *  kernel bit            ulvs entry
 *  FWD_MASK (0..3)       the method bits (FWD_MASK >> FWD_SHIFT); templates: their server's method
 *  NOOUTPUT 0x80         NOOUTPUT; templates: set unless NAT (a kernel template takes its
 *                        server's conn_flags: method, INACTIVE, NOOUTPUT for DR/TUN)
 *  INACTIVE 0x100        INACTIVE; templates: always set
 *  IN/OUT_SEQ 0x600      SEQ (data kept by seq-store.ts); OUT_SEQ for SYNPROXY, its delta
 *                        (synproxy-seq.ts)
 *  TEMPLATE 0x1000       TEMPLATE
 *  SYNC 0x20             SYNCED (the kernel sends it for an entry it got by sync)
 *  state                 TCP state; UDP 0; template: ASSURED -> 1 (IP_VS_CTPL_S_ASSURED), else 0
 *  timeout               the entry's current state timeout in whole seconds (cp->timeout / HZ)
 */
import { ConnFlag, FWD_SHIFT } from '../conn-flags.js';
import { TICKS_PER_SEC } from '../conn-table.js';
import { UNBOUND_DEST_ID } from '../dest-registry.js';
import type { EngineState } from '../engine-state.js';
import { EXPIRE_LATER_S } from '../conn/lifecycle.js';
import type { ProtoTable } from '../proto/ops.js';
import { Fwd } from '../service.js';
import { fwmarkOf } from '../conn/fwmark-of.js';
import { KFlag } from '../../wire/ipvs-sync/constants.js';
import type { SyncRecord } from '../../wire/ipvs-sync/record.js';
import type { SeqDeltaSource } from '../offload.js';
import type { SeqStore } from './seq-store.js';
import { fillSynProxySeq } from './synproxy-seq.js';

/** The state a record of entry c carries. */
export function recordState(s: EngineState, c: number): number {
  const f = s.conns.flags(c);
  if ((f & ConnFlag.TEMPLATE) === 0) return s.conns.state(c);
  return (f & ConnFlag.ASSURED) !== 0 ? 1 : 0;
}

/** Entry c's current timeout, ticks: its state's (protocol table); a template's persistence
 *  timeout (60 s once kept past it); an unbound template's remaining time. */
export function timeoutTicksOf(s: EngineState, protos: ProtoTable, c: number): number {
  const conns = s.conns;
  const f = conns.flags(c);
  if ((f & ConnFlag.TEMPLATE) === 0) {
    const ops = protos.of(conns.proto(c));
    return ops !== undefined ? ops.timeoutTicks(c) : 0;
  }
  if ((f & ConnFlag.EXPIRE_LATER) !== 0) return EXPIRE_LATER_S * TICKS_PER_SEC;
  const d = s.dests.maybeById(conns.dest(c));
  if (d !== null && d.id !== UNBOUND_DEST_ID) return d.svc.timeout * TICKS_PER_SEC;
  return Math.max(0, conns.expires(c) - s.nowTick);
}

/** The kernel flags of entry c (HASHED never set). */
export function kernelFlagsOf(s: EngineState, c: number): number {
  const conns = s.conns;
  const f = conns.flags(c);
  let fwd = (f & ConnFlag.FWD_MASK) >>> FWD_SHIFT;
  let k: number;
  if ((f & ConnFlag.TEMPLATE) !== 0) {
    const d = s.dests.maybeById(conns.dest(c));
    if (d !== null && d.id !== UNBOUND_DEST_ID) fwd = d.fwd;
    k = KFlag.TEMPLATE | KFlag.INACTIVE | (fwd !== Fwd.MASQ ? KFlag.NOOUTPUT : 0);
  } else k = ((f & ConnFlag.INACTIVE) !== 0 ? KFlag.INACTIVE : 0) | ((f & ConnFlag.NOOUTPUT) !== 0 ? KFlag.NOOUTPUT : 0);
  if ((f & ConnFlag.SYNCED) !== 0) k |= KFlag.SYNC;
  return k | fwd;
}

/** ulvs entry flags for kernel flags `k` (the method and NOOUTPUT bits; INACTIVE for
 *  non-templates; TEMPLATE). */
export function entryFlagsOf(k: number): number {
  let f = ((k & KFlag.FWD_MASK) << FWD_SHIFT) & ConnFlag.FWD_MASK;
  if ((k & KFlag.NOOUTPUT) !== 0) f |= ConnFlag.NOOUTPUT;
  if ((k & KFlag.TEMPLATE) !== 0) f |= ConnFlag.TEMPLATE;
  else if ((k & KFlag.INACTIVE) !== 0) f |= ConnFlag.INACTIVE;
  return f;
}

/** Fill r with entry c (IPv4; the table holds nothing else yet); `deltas`: the SYN-cookie
 *  connections' sequence deltas. */
export function fillRecord(r: SyncRecord, s: EngineState, protos: ProtoTable, seq: SeqStore, c: number, deltas: SeqDeltaSource | null = null): void {
  const conns = s.conns;
  r.clearOptions();
  r.version = 1;
  r.af = 4;
  r.protocol = conns.proto(c);
  r.flags = kernelFlagsOf(s, c);
  if ((conns.flags(c) & ConnFlag.SEQ) !== 0) r.flags |= seq.fill(c, r);
  else if ((conns.flags(c) & ConnFlag.SYNPROXY) !== 0 && deltas !== null) {
    const delta = deltas.seqDelta(c);
    if (delta !== 0) r.flags |= fillSynProxySeq(r, delta);
  }
  r.connFlags = r.flags;
  r.state = recordState(s, c);
  r.cport = conns.cport(c);
  r.vport = conns.vport(c);
  r.dport = conns.dport(c);
  r.fwmark = fwmarkOf(s, c);
  r.timeout = Math.floor(timeoutTicksOf(s, protos, c) / TICKS_PER_SEC);
  r.caddr = conns.caddr(c) >>> 0;
  r.vaddr = conns.vaddr(c) >>> 0;
  r.daddr = conns.daddr(c) >>> 0;
}
