/**
 * Connection timeouts (ipvs-spec §3.6): TCP's per-state table and UDP's single value, in
 * seconds as ipvsadm sets them (`--set tcp tcpfin udp`) and in ticks of the connection table's
 * clock as the packet path reads them (precomputed on every change, so a packet only indexes).
 */
import { TICKS_PER_SEC } from './conn-table.js';
import { errors } from './errors.js';
import { TCP_DEFAULT_TIMEOUTS, TCP_STATE_COUNT, TcpState, UDP_DEFAULT_TIMEOUT } from './tcp-states.js';

/** Largest timeout ipvsadm accepts (31 days), seconds. */
export const MAX_TIMEOUT_S = 2678400;

/** ipvsadm --set's three values, seconds. */
export interface Timeouts {
  tcp: number;
  tcpfin: number;
  udp: number;
}

export class TimeoutTable {
  readonly #tcpSeconds = Float64Array.from(TCP_DEFAULT_TIMEOUTS);
  /** timeout of each TCP state, ticks (index = TcpState) */
  readonly tcpTicks = new Uint32Array(TCP_STATE_COUNT);
  #udpSeconds = UDP_DEFAULT_TIMEOUT;
  /** UDP timeout, ticks */
  udpTicks = 0;

  constructor() {
    this.#recompute();
  }

  /** ipvsadm --set (seconds; 0 leaves a value unchanged). Validates everything first. */
  set(t: Partial<Timeouts>): void {
    for (const [k, x] of Object.entries(t)) {
      if (!['tcp', 'tcpfin', 'udp'].includes(k)) throw errors.invalid(`unknown timeout ${k}`);
      if (typeof x !== 'number' || !Number.isInteger(x) || x < 0 || x > MAX_TIMEOUT_S) throw errors.invalid(`timeout ${k} must be 0..${MAX_TIMEOUT_S}`);
    }
    if (t.tcp) this.#tcpSeconds[TcpState.ESTABLISHED] = t.tcp;
    if (t.tcpfin) this.#tcpSeconds[TcpState.FIN_WAIT] = t.tcpfin;
    if (t.udp) this.#udpSeconds = t.udp;
    this.#recompute();
  }

  get values(): Timeouts {
    return { tcp: this.#tcpSeconds[TcpState.ESTABLISHED]!, tcpfin: this.#tcpSeconds[TcpState.FIN_WAIT]!, udp: this.#udpSeconds };
  }

  #recompute(): void {
    for (let s = 0; s < TCP_STATE_COUNT; s++) this.tcpTicks[s] = this.#tcpSeconds[s]! * TICKS_PER_SEC;
    this.udpTicks = this.#udpSeconds * TICKS_PER_SEC;
  }
}
