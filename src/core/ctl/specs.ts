/**
 * What the control plane asks for (ipvsadm -A/-E and -a/-e, as plain structured-clone-safe
 * data), and the checks every request passes before anything changes.
 */
import type { ServiceKey } from '../service.js';

export interface ServiceSpec extends ServiceKey {
  /** default 'wlc' */
  scheduler?: string;
  /** persistence timeout in seconds; 0/undefined = not persistent */
  persistent?: number;
  /** persistence granularity (IPv4 mask); default 255.255.255.255 */
  netmask?: number;
  /** SvcFlag.SCHED1..3 bits (-b) */
  schedFlags?: number;
  /** one-packet scheduling (UDP only) */
  ops?: boolean;
  /**
   * Index of this service's slot in DirectorOptions.sharedState (assigned by the control plane,
   * a fresh one for each new scheduler); ignored without sharedState.
   */
  stateSlot?: number;
}

export interface DestSpec {
  addr: number;
  port: number;
  /** default 1 */
  weight?: number;
  /** Fwd.MASQ (default), Fwd.DROUTE or Fwd.TUNNEL; DR and TUN servers take the service port */
  fwd?: number;
  /** Fwd.TUNNEL only: TunType (default IPIP), GUE's UDP port (required for GUE), TunFlags */
  tunType?: number;
  tunPort?: number;
  tunFlags?: number;
  uThreshold?: number;
  lThreshold?: number;
}

/** x is an integer in [lo, hi] (request fields arrive untyped from the API). */
export function isIntIn(x: unknown, lo: number, hi: number): x is number {
  return typeof x === 'number' && Number.isInteger(x) && x >= lo && x <= hi;
}
