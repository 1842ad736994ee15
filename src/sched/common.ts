/**
 * Helpers shared by the schedulers, with the kernel's exact semantics (ipvs-spec §5).
 */
import type { RealServer } from '../core/service.js';

/** ip_vs_dest_conn_overhead: an active connection weighs as 256 inactive ones. */
export function overhead(d: RealServer): number {
  return d.activeConns * 256 + d.inactConns;
}

/** May take a new connection: not OVERLOAD-flagged and weight > 0. */
export function usable(d: RealServer): boolean {
  return !d.overloaded && d.weight > 0;
}

/** Kernel hash_32: multiply by the 32-bit golden ratio, keep the top `bits` bits. */
export function hash32(v: number, bits: number): number {
  return Math.imul(v, 0x61c88647) >>> (32 - bits);
}

export function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/**
 * The weighted-least-connection choice used by wlc, lblc and lblcr: the first usable server
 * is the initial best; a later non-overloaded server replaces it when
 * overhead(best) * weight(d) > overhead(d) * weight(best) (cross-multiplied, no division;
 * strict, so ties keep the earlier server in list order).
 */
export function weightedLeast(dests: readonly RealServer[], cost: (d: RealServer) => number): RealServer | null {
  let i = 0;
  const n = dests.length;
  while (i < n && !usable(dests[i]!)) i++;
  if (i === n) return null;
  let least = dests[i]!;
  let loh = cost(least);
  for (i++; i < n; i++) {
    const d = dests[i]!;
    if (d.overloaded) continue;
    const doh = cost(d);
    if (loh * d.weight > doh * least.weight) {
      least = d;
      loh = doh;
    }
  }
  return least;
}
