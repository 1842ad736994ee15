/**
 * The fast path's route-lookup lease (bpf/ulvs_fib_mode.h; the daemon's side is
 * daemon/fib-lease.ts, the reasoning docs/fib-direct.md): while ulvsd holds that the namespace's
 * policy rules cannot change a lookup the fast path makes, the program looks up the main table
 * directly (BPF_FIB_LOOKUP_DIRECT) instead of walking every rule.
 *
 *   FibModeMaps      the program's two maps, found by its map ids: the lease (CLOCK_MONOTONIC ns
 *                    until which DIRECT may be used; 0 = never) and the namespace's IPv4
 *                    addresses (a local destination is looked up through the rules)
 *   directBlockers   the pure check: why the rules might answer otherwise (empty: they cannot)
 */
import { MapOps, progMapsByName } from './bpf.js';
import { sys } from './sys.js';
import { parseIPv4 } from '../../wire/addr.js';

/** FIB_LOCAL4_MAX (bpf/ulvs_fib_mode.h) */
export const FIB_LOCAL4_MAX = 1024;

/** One entry of `ip -j rule show` (iproute2's JSON; only what the check reads is named). */
export interface IpRule {
  priority: number;
  table?: string;
  action?: string;
  [selector: string]: unknown;
}

/** One interface of `ip -j -4 addr show`. */
export interface IpAddrLink {
  ifname?: string;
  addr_info?: { family?: string; local?: string }[];
}

/** What the check needs of the routing plan (routing.ts RoutingPlan). */
export interface FibPlan {
  pref: number;
  services: { addr: number }[];
  servers: { addr: number }[];
}

/** The kernel's own three rules: `from all lookup local|main|default` at 0, 32766, 32767. */
const DEFAULT_RULES = new Map<number, string>([
  [0, 'local'],
  [32766, 'main'],
  [32767, 'default'],
]);

/**
 * Why a lookup through the rules might differ from the main table's answer (one reason per
 * offending rule or address; empty: it cannot, for a destination that is not local):
 *   - a rule that is neither the kernel's three (with no selector) nor ulvsd's own (its
 *     preferences `pref` and `pref + 1`, routing.ts);
 *   - a VIP that is also a real server's address: ulvsd's `to VIP` and `from RIP` rules would
 *     then match a rewritten packet (docs/fib-direct.md);
 *   - more local addresses than the program's set holds.
 */
export function directBlockers(rules: readonly IpRule[], plan: FibPlan, locals: number): string[] {
  const out: string[] = [];
  for (const r of rules) {
    if (r.priority === plan.pref || r.priority === plan.pref + 1) continue;
    const table = DEFAULT_RULES.get(r.priority);
    const selectors = Object.keys(r).filter((k) => k !== 'priority' && k !== 'table' && !(k === 'src' && r[k] === 'all'));
    if (table !== undefined && r.table === table && selectors.length === 0) continue;
    out.push(`policy rule ${r.priority} (${JSON.stringify(r)})`);
  }
  const rips = new Set(plan.servers.map((s) => s.addr >>> 0));
  for (const v of new Set(plan.services.map((s) => s.addr >>> 0))) if (rips.has(v)) out.push(`a VIP is also a real server (${(v >>> 24) & 255}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255})`);
  if (locals > FIB_LOCAL4_MAX) out.push(`${locals} local addresses (the program's set holds ${FIB_LOCAL4_MAX})`);
  return out;
}

/** The IPv4 addresses of `ip -j -4 addr show` as host-order u32s (unparseable ones skipped). */
export function localAddrs(links: readonly IpAddrLink[]): number[] {
  const out = new Set<number>();
  for (const l of links)
    for (const a of l.addr_info ?? []) {
      if (a.family !== undefined && a.family !== 'inet') continue;
      try {
        if (a.local) out.add(parseIPv4(a.local) >>> 0);
      } catch {
        /* not an IPv4 address */
      }
    }
  return [...out];
}

/** The fast path program's lease and local-address maps (found by its map ids). */
export class FibModeMaps {
  readonly #mode: MapOps;
  readonly #locals: MapOps;
  readonly #zero = Buffer.alloc(4);
  readonly #value = Buffer.alloc(8);
  readonly #key = Buffer.alloc(4);
  readonly #one = Buffer.from([1]);
  /** the addresses in the local set now (host order) */
  #held = new Set<number>();

  /** Throws when the program has no such maps (an object of an older build). */
  constructor(progFd: number) {
    const maps = progMapsByName(progFd, ['ulvs_fib_mode', 'ulvs_local4']);
    const mode = maps.get('ulvs_fib_mode'), locals = maps.get('ulvs_local4');
    if (mode === undefined || locals === undefined) {
      for (const fd of maps.values()) sys.close(fd);
      throw new Error('the fast path program has no ulvs_fib_mode/ulvs_local4 maps');
    }
    this.#mode = new MapOps(mode);
    this.#locals = new MapOps(locals);
  }

  /** DIRECT lookups allowed until `untilNs` (CLOCK_MONOTONIC ns); 0n: from now on, never. Throws on a map error. */
  lease(untilNs: bigint): void {
    this.#value.writeBigUInt64LE(untilNs, 0);
    this.#mode.update(this.#zero, this.#value);
  }

  /** Make the local set exactly `addrs` (host order): the new ones added first, then the gone
   *  ones deleted (an address briefly in both is looked up through the rules: safe). Throws on
   *  a map error (the set may then be partly changed: the caller revokes the lease first). */
  setLocals(addrs: readonly number[]): void {
    const want = new Set(addrs.map((a) => a >>> 0));
    for (const a of want)
      if (!this.#held.has(a)) {
        this.#key.writeUInt32BE(a, 0); // network order, as the program's __be32 key
        this.#locals.update(this.#key, this.#one);
        this.#held.add(a);
      }
    for (const a of [...this.#held])
      if (!want.has(a)) {
        this.#key.writeUInt32BE(a, 0);
        this.#locals.delete(this.#key);
        this.#held.delete(a);
      }
  }

  close(): void {
    sys.close(this.#mode.fd);
    sys.close(this.#locals.fd);
  }
}
