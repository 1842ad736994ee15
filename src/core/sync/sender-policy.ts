/**
 * Whether a master announces a connection now: the kernel's ip_vs_sync_conn_needed, with time in
 * connection-table ticks (125 ms) instead of jiffies. Called per inbound packet while a master
 * runs: a few comparisons, no allocation.
 *
 * Rules (ha-scaleout.md §1.8; T = sync_threshold, P = sync_period, R = sync_refresh_period):
 *  - templates: no state filter, never "forced"; exempt from the P rule.
 *  - sync_persist_mode: an entry controlled by a template is never announced (its template is).
 *  - TCP: only in ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT, TIME_WAIT. A change into one of these
 *    other than ESTABLISHED since the last announcement is announced at once ("forced"). (SCTP has
 *    the same rule over its states; ulvs carries no SCTP.) UDP: no state filter.
 *  - R > 0: skip while the new expiry (now + timeout) is within min(R, max(timeout/2, 10 s)) of the
 *    one last announced, except for up to sync_retries retries, each at least R/8 after it.
 *  - P > 0: a non-template only when pkts % P == T (packets 3, 53, 103, ...), also with R > 0.
 *    P = 0 and R = 0: only when pkts == T. P = 0 and R > 0: the R rule alone.
 *  - when announced: remember the state and the expiry (and the retry count).
 * Differences: the kernel keeps the retry count in sync_endtime's low 2 bits and rounds the
 * expiry down to 4 jiffies; ulvs keeps both apart (SyncConnState.meta) and exact.
 */
import type { ConnTable } from '../conn-table.js';
import { ConnFlag } from '../conn-flags.js';
import type { Sysctls } from '../sysctl.js';
import { TcpState } from '../tcp-states.js';
import { TICKS_PER_SEC } from '../conn-table.js';
import type { SyncConnState } from './conn-state.js';

/** TCP states in which a connection is announced (bit per IP_VS_TCP_S_*). */
const TCP_SYNC_STATES = (1 << TcpState.ESTABLISHED) | (1 << TcpState.FIN_WAIT) | (1 << TcpState.CLOSE) | (1 << TcpState.CLOSE_WAIT) | (1 << TcpState.TIME_WAIT);
const IPPROTO_TCP = 6;
const STATE_BITS = 0x3f;
const RETRY_SHIFT = 6;
/** the refresh rule never filters below this much movement of the expiry: 10 s */
const MIN_DIFF_TICKS = 10 * TICKS_PER_SEC;

/** Where the policy gets an entry's current timeout, ticks, when it needs it (the common case,
 *  a packet the period rule does not select, never asks). */
export interface TimeoutSource {
  timeoutTicks(c: number): number;
}

/**
 * Should entry c be announced now? `pkts` is its inbound packet count (a template: its own count;
 * an entry whose controller was just announced: T), `state` the state a record would carry.
 * Updates st when it answers true. The period rule is tested before the refresh rule (the kernel
 * tests it after): the answer is the same, since the refresh rule only ever says no or counts a
 * retry that is kept only when announcing, and the common packet costs no timeout lookup.
 */
export function syncNeeded(conns: ConnTable, st: SyncConnState, c: number, pkts: number, state: number, nowTick: number, sys: Sysctls, timeouts: TimeoutSource): boolean {
  const f = conns.flags(c);
  const template = (f & ConnFlag.TEMPLATE) !== 0;
  const meta = st.meta[c]!;
  if (!template) {
    if (sys.syncPersistMode && conns.ctl[c]! >= 0) return false; // in_persistence
    if (conns.proto(c) === IPPROTO_TCP) {
      if (((1 << state) & TCP_SYNC_STATES) === 0) return false;
      if (state !== (meta & STATE_BITS) && state !== TcpState.ESTABLISHED) return announce(st, c, (nowTick + timeouts.timeoutTicks(c)) >>> 0, state, 0); // forced
    }
  }
  const R = sys.syncRefreshPeriod * TICKS_PER_SEC;
  const P = sys.syncPeriod;
  if (P > 0) {
    if (!template && pkts % P !== sys.syncThreshold) return false;
  } else if (R === 0 && pkts !== sys.syncThreshold) return false;
  const timeoutTicks = timeouts.timeoutTicks(c);
  const n = (nowTick + timeoutTicks) >>> 0;
  let retries = 0;
  if (R > 0) {
    const orig = st.endTick[c]!;
    const diff = Math.abs((n - orig) | 0);
    if (diff < Math.min(R, Math.max(timeoutTicks >>> 1, MIN_DIFF_TICKS))) {
      const done = meta >>> RETRY_SHIFT;
      if (done >= sys.syncRetries) return false;
      if (((nowTick - (orig - timeoutTicks + (R >>> 3))) | 0) < 0) return false; // too soon after the last
      retries = done + 1;
    }
  }
  return announce(st, c, n, state, retries);
}

function announce(st: SyncConnState, c: number, endTick: number, state: number, retries: number): true {
  st.endTick[c] = endTick;
  st.meta[c] = (state & STATE_BITS) | (retries << RETRY_SHIFT);
  return true;
}
