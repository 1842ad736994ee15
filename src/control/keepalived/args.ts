/**
 * keepalived.conf argument readers (each a clear ConfigError naming the keyword and the file
 * position) and the options that flow down virtual_server -> real_server -> checker.
 */
import { tryParseIPv4 } from '../../wire/addr.js';
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

