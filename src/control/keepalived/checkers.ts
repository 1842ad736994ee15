/**
 * keepalived's checkers (TCP_CHECK, HTTP_GET, SSL_GET, MISC_CHECK, UDP_CHECK, DNS_CHECK,
 * SMTP_CHECK, PING_CHECK; ecosystem.md §1.4) read into what health/ runs, with keepalived's
 * defaults per type (check_api.c: retry 1, delay_before_retry 1 s unless the type says
 * otherwise).
 *
 * SMTP_CHECK (check_smtp.c): `helo_name` (default smtpchecker.keepalived.org) and the common
 * options; the port is connect_port or the real server's. Its deprecated `host { ... }` blocks
 * are still read as keepalived reads them: each block is a checker of its own with the block's
 * connection options (connect_ip, default the real server's address; connect_port, default the
 * real server's port; bindto; connect_timeout, default the real server's, not the SMTP_CHECK's)
 * and the SMTP_CHECK's other settings; when the SMTP_CHECK itself sets no connection option,
 * its first host block stands for it instead of a check of the real server itself.
 * PING_CHECK (check_ping.c): connect_ip, bindto, connect_timeout and the retry options.
 */
import type { CheckerSpec, CheckerType } from '../../health/checker-spec.js';
import { at, inherit, ipArg, one, portArg, scriptArg, timerArg, type Inherited } from './args.js';
import { ConfigError, type Node, type Pos } from './syntax.js';

/** A checker as keepalived.conf declares it: what health/ runs, and where it was written. */
export interface CheckerConfig extends CheckerSpec {
  pos: Pos;
}


export const CHECKERS = new Set(['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'UDP_CHECK', 'DNS_CHECK', 'SMTP_CHECK', 'PING_CHECK']);
/** the checkers ulvs refuses, and why */
export const UNSUPPORTED_CHECKERS: ReadonlyMap<string, string> = new Map([
  ['BFD_CHECK', 'it follows a bfd_instance of keepalived\'s BFD process, which ulvs does not run'],
  ['FILE_CHECK', 'track_file weights are not implemented by ulvs'],
]);
/** keepalived's default helo_name (check_smtp.h SMTP_DEFAULT_HELO) */
export const SMTP_DEFAULT_HELO = 'smtpchecker.keepalived.org';
/** the connection options of a checker (check_api.c install_checker_common_keywords) */
const CONNECTION_KEYS = new Set(['connect_ip', 'connect_port', 'bindto', 'connect_timeout']);


function statusCodes(n: Node): [number, number][] {
  if (n.args.length === 0) throw new ConfigError(at(n), 'status_code needs codes (200, 200-299 ...)');
  return n.args.map((s) => {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(s);
    if (!m) throw new ConfigError(at(n), `status_code: bad code ${JSON.stringify(s)}`);
    return [Number(m[1]), Number(m[2] ?? m[1])] as [number, number];
  });
}

/** The checkers of checker block `n` (one, or for an SMTP_CHECK with host blocks several). */
export function checkers(n: Node, rs: { addr: number; port: number }, up: Inherited, warnings: string[]): CheckerConfig[] {
  const hosts = n.key === 'SMTP_CHECK' ? (n.children ?? []).filter((x) => x.key === 'host') : [];
  const main = checker(n, rs, up, warnings);
  if (hosts.length === 0) return [main];
  const own = (n.children ?? []).some((x) => CONNECTION_KEYS.has(x.key));
  const fromHosts = hosts.map((h) => {
    const c: CheckerConfig = { ...main, connectIp: rs.addr, connectPort: rs.port, connectTimeout: up.connectTimeout, pos: h.pos };
    delete c.bindTo;
    for (const x of h.children ?? []) {
      if (x.key === 'connect_timeout') c.connectTimeout = timerArg(x);
      else if (!connection(x, c)) warnings.push(`${x.pos.file}:${x.pos.line}:${x.pos.col}: ${x.key} in an SMTP_CHECK host block is ignored (keepalived takes only connection options from it)`);
    }
    return c;
  });
  return own ? [main, ...fromHosts] : fromHosts;
}

/** connect_ip, connect_port, bindto into `c`; true if `x` was one of them */
function connection(x: Node, c: CheckerConfig): boolean {
  switch (x.key) {
    case 'connect_ip':
      c.connectIp = ipArg(x, x.args[0]);
      return true;
    case 'connect_port':
      c.connectPort = portArg(x, x.args[0], null);
      return true;
    case 'bindto':
      c.bindTo = ipArg(x, x.args[0]);
      return true;
  }
  return false;
}

function checker(n: Node, rs: { addr: number; port: number }, up: Inherited, warnings: string[]): CheckerConfig {
  const type = n.key as CheckerType;
  const o: Inherited = { ...up };
  const c: CheckerConfig = {
    type,
    connectIp: rs.addr,
    connectPort: rs.port,
    connectTimeout: 0,
    retry: 0,
    delayBeforeRetry: 0,
    delayLoop: 0,
    warmup: 0,
    alpha: false,
    urls: [],
    miscTimeout: 0,
    miscDynamic: false,
    requireReply: false,
    dnsType: 'SOA',
    dnsName: '.',
    heloName: SMTP_DEFAULT_HELO,
    pos: n.pos,
  };
  let miscTimeout: number | null = null;
  for (const x of n.children ?? []) {
    if (inherit(x, o) || connection(x, c)) continue;
    switch (x.key) {
      case 'helo_name':
        if (type !== 'SMTP_CHECK') warnings.push(`${x.pos.file}:${x.pos.line}:${x.pos.col}: unknown keyword ${x.key} in ${type}, ignored`);
        c.heloName = one(x, 'a name');
        break;
      case 'host':
        if (type !== 'SMTP_CHECK') warnings.push(`${x.pos.file}:${x.pos.line}:${x.pos.col}: unknown keyword ${x.key} in ${type}, ignored`);
        break; // read by checkers()
      case 'url': {
        const u: CheckerConfig['urls'][number] = { path: '/', statusCodes: [] };
        for (const y of x.children ?? []) {
          if (y.key === 'path') u.path = one(y);
          else if (y.key === 'digest') u.digest = one(y).toLowerCase();
          else if (y.key === 'status_code') u.statusCodes = statusCodes(y);
          else warnings.push(`${y.pos.file}:${y.pos.line}:${y.pos.col}: url keyword ${y.key} is not supported by ulvs, ignored`);
        }
        c.urls.push(u);
        break;
      }
      case 'misc_path':
        c.miscPath = scriptArg(x);
        break;
      case 'misc_timeout':
        miscTimeout = timerArg(x);
        break;
      case 'misc_dynamic':
        c.miscDynamic = true;
        break;
      case 'payload':
        c.payload = one(x);
        break;
      case 'require_reply':
        c.requireReply = true;
        break;
      case 'type':
        c.dnsType = one(x).toUpperCase();
        break;
      case 'name':
        c.dnsName = one(x);
        break;
      case 'http_protocol':
      case 'fast_recovery':
      case 'enable_sni':
      case 'sni_name':
      case 'log_all_failures':
      case 'user':
        warnings.push(`${x.pos.file}:${x.pos.line}:${x.pos.col}: ${x.key} accepted and ignored by ulvs`);
        break;
      default:
        warnings.push(`${x.pos.file}:${x.pos.line}:${x.pos.col}: unknown keyword ${x.key} in ${type}, ignored`);
    }
  }
  if (type === 'MISC_CHECK' && !c.miscPath) throw new ConfigError(at(n), 'MISC_CHECK needs misc_path');
  if ((type === 'HTTP_GET' || type === 'SSL_GET') && c.urls.length === 0) throw new ConfigError(at(n), `${type} needs at least one url { path ... }`);
  for (const u of c.urls) if (u.statusCodes.length === 0) u.statusCodes = [[200, 299]]; // keepalived's default
  c.connectTimeout = o.connectTimeout;
  c.retry = o.retry ?? (type === 'MISC_CHECK' ? 0 : type === 'DNS_CHECK' ? 3 : 1);
  c.delayLoop = o.delayLoop;
  c.delayBeforeRetry = o.delayBeforeRetry ?? (type === 'HTTP_GET' || type === 'SSL_GET' ? 3 : type === 'DNS_CHECK' ? o.delayLoop : 1);
  c.warmup = o.warmup ?? 0;
  c.alpha = o.alpha;
  c.miscTimeout = miscTimeout ?? o.delayLoop;
  if (o.virtualhost !== undefined) c.virtualhost = o.virtualhost;
  return c;
}

