/**
 * The Offloader's (offloader.ts) construction parameters and the two interfaces it meets: the
 * real servers' tunnel settings and the engine's activity sink.
 */
import { TunType } from '../../core/service.js';
import type { OffloadReport } from '../../core/offload.js';

export interface OffloaderInit {
  flowsFd: number;
  slotsFd: number;
  /** slots in the whole array (all workers) */
  slots: number;
  /** this worker's range */
  slotBase: number;
  slotCount: number;
  /** the maps were made by this process (no counts of a previous one in the slots: adopt()
   *  starts from zero), rather than taken over from the previous process */
  freshMaps?: boolean;
  /** kernel connection set-up (docs/kernel-setup.md): the slot range [slotBase, slotBase +
   *  slotCount) of the whole array that the fast path takes slots from for the connections it
   *  sets up, shared by all workers, and its free queue (ulvs_kslot_free, a QUEUE map of u32) */
  kernel?: { slotBase: number; slotCount: number; freeFd: number };
}

/** The real servers by id (core/dest-registry.ts): a tunnelled connection's entry carries its
 *  server's tunnel type (TunType, the values of enum tun_type) and GUE port. */
export interface TunnelSource {
  byId(id: number): { tunType: number; tunPort: number };
}

/** Without a registry (tests of NAT and DR): every tunnelled connection is IPIP. */
export const IPIP_ONLY: TunnelSource = { byId: () => ({ tunType: TunType.IPIP, tunPort: 0 }) };

/** The engine's view of activity: Director.offloadActivity (the report is reused: read it now). */
export interface ActivitySink {
  offloadActivity(c: number, r: OffloadReport): void;
}
