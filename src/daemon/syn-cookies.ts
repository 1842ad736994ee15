/**
 * ulvsd's side of SYN cookies (the syn_cookies sysctl, docs/syn-cookies.md): which services the
 * kernel fast path answers SYNs for, kept in its map (datapath/tun/syncookie-map.ts) from the
 * rules and the mode, and the refusals:
 *
 *   - syn_cookies=1 without the kernel fast path (--fast-path off, or it could not be
 *     installed): refused. The cookie answer and the ACK check are in its program, and only it
 *     clears the mark a client could otherwise forge.
 *   - syn_cookies=1 with a TCP service that has a direct-routing or tunnelled real server, or
 *     such a server added while it is 1: refused, naming both. The server's replies go straight
 *     to the client, so the director cannot translate their sequence numbers (from the cookie
 *     to the server's ISN); the handshake the cookie began could never complete.
 *
 * Every TCP service is covered while the mode is 1 (all its servers are NAT by the rule above;
 * fwmark services are not: the fast path's map is keyed by VIP and port). Mode 2 is automatic (syn-cookie-auto.ts): only the
 * fast path is required; while ulvsd's watch holds it active, the TCP services whose servers
 * are all NAT are covered (one with a DR or tunnelled server is left out, not refused), and
 * none while it is not. Mode changes are logged, at most one line per LOG_EVERY_MS (the
 * suppressed ones counted in the next); mode 2's switches each (they are at least QUIET_S apart). `check` throws without changing
 * anything; `apply` writes the map (after the workers have the rules).
 */
import { Fwd } from '../core/service.js';
import { IpvsError } from '../core/errors.js';
import { serviceLabel } from '../core/explain.js';
import { formatIPv4 } from '../wire/addr.js';
import type { Rules } from '../control/rules.js';
import { syncSyncookieMap, type CookieService } from '../datapath/tun/syncookie-map.js';

const IPPROTO_TCP = 6;
export const LOG_EVERY_MS = 10_000;

/** The services the map holds while cookies are on: every TCP service whose real servers are
 *  all NAT (under mode 1, check() has refused any other). */
export function cookieServices(r: Rules): CookieService[] {
  const bypassed = new Set(r.dests.filter((d) => d.dest.fwd !== undefined && d.dest.fwd !== Fwd.MASQ).map((d) => `${d.service.proto}/${d.service.addr}/${d.service.port}`));
  return r.services.filter((s) => s.proto === IPPROTO_TCP && !bypassed.has(`${s.proto}/${s.addr}/${s.port}`)).map((s) => ({ addr: s.addr, port: s.port }));
}

/** The mode a start takes: the one given (--sysctl syn_cookies=N), else 2 (automatic) when the
 *  kernel fast path is there to answer SYNs, else 0 — as Linux's own tcp_syncookies=1 sends
 *  cookies only while a listener's queue overflows. Since cookie connections are translated in
 *  the fast path and carried over restarts and sync, the mode costs nothing until a flood. */
export function startMode(given: number | undefined, fastPath: boolean): number {
  return given ?? (fastPath ? 2 : 0);
}

export class SynCookieGuard {
  #mode = 0;
  /** mode 2: whether the watch has switched cookies on (syn-cookie-auto.ts) */
  #active = false;
  #switches = 0;
  #rules: Rules | null = null;
  #lastLog = -Infinity;
  #suppressed = 0;
  /**
   * @param mapFd  the fast path's ulvs_syncookie_svcs (null: no fast path)
   * @param why    why there is no fast path, for the refusal
   */
  constructor(
    readonly mapFd: number | null,
    readonly why: string,
    readonly log: (msg: string) => void,
    readonly now: () => number = () => performance.now(),
    readonly write: (fd: number, want: readonly CookieService[]) => unknown = syncSyncookieMap,
  ) {}

  get mode(): number {
    return this.#mode;
  }

  /** Whether the kernel answers SYNs with cookies now (mode 1, or mode 2 switched on). */
  get active(): boolean {
    return this.#mode === 1 || (this.#mode === 2 && this.#active);
  }

  /** mode 2's switches since start, and whether on: for the counters. */
  counters(): Record<string, number> {
    return { syncookie_active: this.active ? 1 : 0, syncookie_auto_switches: this.#switches };
  }

  /** Mode 2: switch cookies on or off (the watch's decision), with the rules last applied. */
  setActive(on: boolean): void {
    if (this.#mode !== 2 || on === this.#active) return;
    this.#active = on;
    this.#switches++;
    const n = this.#rules ? this.apply(this.#rules) : 0;
    // not rate-limited: an off needs QUIET_S quiet seconds, so there is at most one pair per ~10 s
    this.log(on ? `syn_cookies 2: on, a SYN flood (the TUN's queue overflowed): the kernel answers SYNs with cookies for ${n} TCP service(s)` : 'syn_cookies 2: off, no flood for 10 s: SYNs go to the engine again');
  }

  /** Throws (IpvsError EINVAL) when `mode` cannot be in force with rules `r`; changes nothing. */
  check(r: Rules, mode = this.#mode): void {
    if (mode === 0) return;
    if (this.mapFd === null) throw new IpvsError('EINVAL', `sysctl syn_cookies=${mode} needs the kernel fast path, which answers the SYNs: ${this.why}`);
    if (mode === 2) return; // services with DR/TUN servers are left out (cookieServices)
    for (const { service, dest } of r.dests) {
      if (service.proto !== IPPROTO_TCP || dest.fwd === undefined || dest.fwd === Fwd.MASQ) continue;
      const how = dest.fwd === Fwd.TUNNEL ? 'tunnelled (-i)' : dest.fwd === Fwd.DROUTE ? 'direct-routing (-g)' : 'local';
      throw new IpvsError('EINVAL', `syn_cookies=${mode} and ${how} real server ${formatIPv4(dest.addr >>> 0)} of ${serviceLabel(service)} cannot go together: its replies bypass the director, which must translate their sequence numbers after a SYN-cookie handshake (set syn_cookies=0, or use NAT, -m)`);
    }
  }

  /** The mode at start (startMode: the one given, else the default), with rules `r`. */
  start(given: number | undefined, r: Rules): void {
    this.setMode(startMode(given, this.mapFd !== null), r);
  }

  /** The new mode, with rules `r` in force: checked, then the map written. */
  setMode(mode: number, r: Rules): void {
    this.check(r, mode);
    const was = this.#mode;
    this.#mode = mode;
    if (mode !== 2) this.#active = false;
    const n = this.apply(r);
    if (was !== mode) this.#logRateLimited(`syn_cookies ${was} -> ${mode}: ${mode === 0 ? 'SYNs go to the engine again' : mode === 2 ? 'the kernel will answer SYNs with cookies while a flood overflows the TUN' : `the kernel answers SYNs with cookies for ${n} TCP service(s)`}`);
  }

  /** Write the map for rules `r` under the current mode; returns the number of services in it. */
  apply(r: Rules): number {
    this.#rules = r;
    if (this.mapFd === null) return 0;
    const want = this.active ? cookieServices(r) : [];
    try {
      this.write(this.mapFd, want);
    } catch (e) {
      this.log(`syn_cookies: cannot write the fast path's service map: ${(e as Error).message}`);
    }
    return want.length;
  }

  #logRateLimited(msg: string): void {
    const t = this.now();
    if (t - this.#lastLog < LOG_EVERY_MS) {
      this.#suppressed++;
      return;
    }
    this.log(this.#suppressed > 0 ? `${msg} (${this.#suppressed} earlier change(s) not logged)` : msg);
    this.#lastLog = t;
    this.#suppressed = 0;
  }
}
