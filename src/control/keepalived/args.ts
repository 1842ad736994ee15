/**
 * keepalived.conf argument readers (each a clear ConfigError naming the keyword and the file
 * position) and the options that flow down virtual_server -> real_server -> checker.
 */
import { tryParseIPv4 } from '../../wire/addr.js';
import { Fwd, TUN_FLAG_NAMES, TUN_TYPE_NAMES, TunFlags, TunType } from '../../core/service.js';
import { ConfigError, type Node } from './syntax.js';

export const at = (n: Node) => n.pos;
export function one(n: Node, what = 'a value'): string {
  if (n.args.length < 1) throw new ConfigError(at(n), `${n.key} needs ${what}`);
  return n.args[0]!;
}
export function ipArg(n: Node, s: string | undefined): number {
  const a = s === undefined ? -1 : tryParseIPv4(s);
  if (a < 0) throw new ConfigError(at(n), `${n.key}: ${JSON.stringify(s ?? '')} is not an IPv4 address (IPv6 is not supported by ulvs yet)`);
  return a;
}
export function portArg(n: Node, s: string | undefined, dflt: number | null): number {
  if (s === undefined) {
    if (dflt === null) throw new ConfigError(at(n), `${n.key} needs a port`);
    return dflt;
  }
  if (!/^\d{1,5}$/.test(s) || Number(s) > 65535) throw new ConfigError(at(n), `${n.key}: bad port ${JSON.stringify(s)}`);
  return Number(s);
}
export function intArg(n: Node, lo: number, hi: number): number {
  const s = one(n, 'a number');
  if (!/^-?\d+$/.test(s) || Number(s) < lo || Number(s) > hi) throw new ConfigError(at(n), `${n.key}: ${JSON.stringify(s)} is not an integer in ${lo}..${hi}`);
  return Number(s);
}
/** <TIMER>: seconds, fractions allowed. */
export function timerArg(n: Node): number {
  const s = one(n, 'a time in seconds');
  if (!/^\d+(\.\d+)?$/.test(s)) throw new ConfigError(at(n), `${n.key}: ${JSON.stringify(s)} is not a time in seconds`);
  return Number(s);
}
/** A script: its arguments joined back into one command line. */
export const scriptArg = (n: Node) => n.args.join(' ');

/** Options that flow down virtual_server -> real_server -> checker. */
export interface Inherited {
  connectTimeout: number;
  retry: number | null;
  delayBeforeRetry: number | null;
  delayLoop: number;
  warmup: number | null;
  alpha: boolean;
  inhibitOnFailure: boolean;
  virtualhost?: string;
}

/** Apply an inheritable option; true if `n` was one. */
export function inherit(n: Node, o: Inherited): boolean {
  switch (n.key) {
    case 'connect_timeout':
      o.connectTimeout = timerArg(n);
      return true;
    case 'retry':
    case 'nb_get_retry':
      o.retry = intArg(n, 0, 1000000);
      return true;
    case 'delay_before_retry':
      o.delayBeforeRetry = timerArg(n);
      return true;
    case 'delay_loop':
      o.delayLoop = timerArg(n);
      return true;
    case 'warmup':
      o.warmup = timerArg(n);
      return true;
    case 'alpha':
      o.alpha = n.args[0] === undefined || /^(on|true|yes)$/.test(n.args[0]);
      return true;
    case 'inhibit_on_failure':
      o.inhibitOnFailure = n.args[0] === undefined || /^(on|true|yes)$/.test(n.args[0]);
      return true;
    case 'virtualhost':
      o.virtualhost = one(n);
      return true;
  }
  return false;
}

/** A forwarding method as keepalived writes it (Fwd.* and, for TUN, the tunnel). */
export interface MethodConfig {
  fwd: number;
  tunType: number;
  tunPort: number;
  tunFlags: number;
}
export const NAT_METHOD: MethodConfig = { fwd: Fwd.MASQ, tunType: TunType.IPIP, tunPort: 0, tunFlags: TunFlags.NOCSUM };

/** `lvs_method` / `lb_kind`: NAT | DR | TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]
 *  (keepalived.conf(5)); whether the tunnel options fit the type is the engine's check. */
export function methodArg(n: Node): MethodConfig {
  const kind = one(n, 'NAT, DR or TUN').toUpperCase();
  const bad = (why: string): never => {
    throw new ConfigError(at(n), `${n.key} ${n.args.join(' ')}: ${why}`);
  };
  if (kind === 'NAT' || kind === 'DR') {
    if (n.args.length > 1) bad(`${kind} takes no options`);
    return { ...NAT_METHOD, fwd: kind === 'NAT' ? Fwd.MASQ : Fwd.DROUTE };
  }
  if (kind !== 'TUN') return bad('the method is NAT, DR or TUN');
  const m: MethodConfig = { ...NAT_METHOD, fwd: Fwd.TUNNEL };
  const rest = n.args.slice(1);
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i]!.toLowerCase();
    if (w === 'type') {
      const t = TUN_TYPE_NAMES.indexOf((rest[++i] ?? '').toLowerCase() as (typeof TUN_TYPE_NAMES)[number]);
      if (t < 0) bad('type is ipip, gue or gre');
      m.tunType = t;
    } else if (w === 'port') {
      const p = rest[++i] ?? '';
      if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) bad(`bad tunnel port ${JSON.stringify(p)}`);
      m.tunPort = Number(p);
    } else if ((TUN_FLAG_NAMES as readonly string[]).includes(w)) m.tunFlags = TUN_FLAG_NAMES.indexOf(w as (typeof TUN_FLAG_NAMES)[number]);
    else bad(`unknown tunnel option ${JSON.stringify(rest[i])}`);
  }
  return m;
}
