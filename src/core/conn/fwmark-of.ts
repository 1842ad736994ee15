/**
 * Which fwmark service an entry of the connection table belongs to: the table keeps no mark per
 * entry (the key is the packet's own tuple, as IPVS's), so it comes from the entry's server.
 * Carried by sync messages (sync/conn-record.ts) and restart records (conn/handover.ts).
 */
import { ConnFlag } from '../conn-flags.js';
import { UNBOUND_DEST_ID } from '../dest-registry.js';
import type { EngineState } from '../engine-state.js';
import { FWMARK_PROTO } from '../service.js';

/** The mark of entry c's fwmark service (0: an address service's), which the sync message
 *  carries (ip_vs_sync_conn_v1: cp->fwmark): its server's service, or for a template whose
 *  server is gone, the template's address (a fwmark template's address is the mark). */
export function fwmarkOf(s: EngineState, c: number): number {
  const d = s.dests.maybeById(s.conns.dest(c));
  if (d !== null && d.id !== UNBOUND_DEST_ID) return d.svc.fwmark;
  return (s.conns.flags(c) & ConnFlag.TEMPLATE) !== 0 && s.conns.proto(c) === FWMARK_PROTO ? s.conns.vaddr(c) >>> 0 : 0;
}
