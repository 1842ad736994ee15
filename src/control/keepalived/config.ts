/**
 * The `virtual_server` part of keepalived.conf (ecosystem.md §1.2-1.4) as ulvs's model.
 *
 * Read: virtual_server IP PORT / group NAME (with virtual_server_group), lvs_sched|lb_algo,
 * lvs_method|lb_kind (NAT; DR/TUN refused clearly), persistence_timeout [s] (bare = 360),
 * persistence_granularity, protocol (TCP|UDP), delay_loop, quorum, hysteresis, quorum_up,
 * quorum_down, alpha, omega, sorry_server, sorry_server_inhibit, inhibit_on_failure,
 * connect_timeout, retry, delay_before_retry, warmup, virtualhost, weight, ops, scheduler
 * flags; real_server with weight, uthreshold, lthreshold, notify_up, notify_down and the
 * inherited options; checkers TCP_CHECK, HTTP_GET, SSL_GET (url path/digest/status_code),
 * MISC_CHECK (misc_path, misc_timeout, misc_dynamic), UDP_CHECK, DNS_CHECK.
 * Inheritance: a virtual_server option is the default of its real_servers, a real_server's
 * of its checkers. Sections ulvs does not act on (global_defs, vrrp_*, ...) are skipped with
 * one warning each; unknown keywords inside a virtual_server give a warning, as keepalived's.
 */
import { tryParseIPv4 } from '../../wire/addr.js';
import { schedFlagBit } from '../../core/service.js';
import { ConfigError, parseConfigFile, type Node, type Pos } from './syntax.js';
import type { CheckerSpec, CheckerType } from '../../health/checker-spec.js';

export type { CheckerType } from '../../health/checker-spec.js';

/** A checker as keepalived.conf declares it: what health/ runs, and where it was written. */
export interface CheckerConfig extends CheckerSpec {
  pos: Pos;
}

export interface RealServerConfig {
  addr: number;
  port: number;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  inhibitOnFailure: boolean;
  alpha: boolean;
  notifyUp?: string;
  notifyDown?: string;
  checkers: CheckerConfig[];
  pos: Pos;
}

export interface VirtualServerConfig {
  proto: number;
  addr: number;
  port: number;
  scheduler: string;
  schedFlags: number;
  ops: boolean;
  persistent: number;
  netmask?: number;
  delayLoop: number;
  quorum: number;
  hysteresis: number;
  quorumUp?: string;
  quorumDown?: string;
  alpha: boolean;
  omega: boolean;
  sorryServer?: { addr: number; port: number };
  sorryServerInhibit: boolean;
  inhibitOnFailure: boolean;
  realServers: RealServerConfig[];
  pos: Pos;
}

export interface KeepalivedConfig {
  services: VirtualServerConfig[];
  warnings: string[];
  files: string[];
}

const SCHEDULERS = ['rr', 'wrr', 'lc', 'wlc', 'lblc', 'lblcr', 'dh', 'sh', 'sed', 'nq', 'fo', 'ovf', 'mh', 'twos'];
const SKIPPED = /^(global_defs|vrrp_\w+|static_\w+|linkbeat_use_polling|net_namespace\w*|SSL|bfd_instance|garp_group|track_\w+|instance|use_\w+)$/;

const at = (n: Node) => n.pos;
function one(n: Node, what = 'a value'): string {
  if (n.args.length < 1) throw new ConfigError(at(n), `${n.key} needs ${what}`);
  return n.args[0]!;
}
function ipArg(n: Node, s: string | undefined): number {
  const a = s === undefined ? -1 : tryParseIPv4(s);
  if (a < 0) throw new ConfigError(at(n), `${n.key}: ${JSON.stringify(s ?? '')} is not an IPv4 address (IPv6 is not supported by ulvs yet)`);
  return a;
}
function portArg(n: Node, s: string | undefined, dflt: number | null): number {
  if (s === undefined) {
    if (dflt === null) throw new ConfigError(at(n), `${n.key} needs a port`);
    return dflt;
  }
  if (!/^\d{1,5}$/.test(s) || Number(s) > 65535) throw new ConfigError(at(n), `${n.key}: bad port ${JSON.stringify(s)}`);
  return Number(s);
}
function intArg(n: Node, lo: number, hi: number): number {
  const s = one(n, 'a number');
  if (!/^-?\d+$/.test(s) || Number(s) < lo || Number(s) > hi) throw new ConfigError(at(n), `${n.key}: ${JSON.stringify(s)} is not an integer in ${lo}..${hi}`);
  return Number(s);
}
/** <TIMER>: seconds, fractions allowed. */
function timerArg(n: Node): number {
  const s = one(n, 'a time in seconds');
  if (!/^\d+(\.\d+)?$/.test(s)) throw new ConfigError(at(n), `${n.key}: ${JSON.stringify(s)} is not a time in seconds`);
  return Number(s);
}
/** A script: its arguments joined back into one command line. */
const scriptArg = (n: Node) => n.args.join(' ');

/** Options that flow down virtual_server -> real_server -> checker. */
interface Inherited {
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
function inherit(n: Node, o: Inherited): boolean {
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

function statusCodes(n: Node): [number, number][] {
  if (n.args.length === 0) throw new ConfigError(at(n), 'status_code needs codes (200, 200-299 ...)');
  return n.args.map((s) => {
    const m = /^(\d{3})(?:-(\d{3}))?$/.exec(s);
    if (!m) throw new ConfigError(at(n), `status_code: bad code ${JSON.stringify(s)}`);
    return [Number(m[1]), Number(m[2] ?? m[1])] as [number, number];
  });
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
    pos: n.pos,
  };
  let miscTimeout: number | null = null;
  for (const x of n.children ?? []) {
    if (inherit(x, o)) continue;
    switch (x.key) {
      case 'connect_ip':
        c.connectIp = ipArg(x, x.args[0]);
        break;
      case 'connect_port':
        c.connectPort = portArg(x, x.args[0], null);
        break;
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

const CHECKERS = new Set(['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'UDP_CHECK', 'DNS_CHECK']);
const UNSUPPORTED_CHECKERS = new Set(['SMTP_CHECK', 'BFD_CHECK', 'PING_CHECK', 'FILE_CHECK']);

function realServer(n: Node, vs: VirtualServerConfig, up: Inherited, vsWeight: number, warnings: string[]): RealServerConfig {
  const addr = ipArg(n, n.args[0]);
  const port = portArg(n, n.args[1], vs.port);
  const o: Inherited = { ...up };
  const rs: RealServerConfig = { addr, port, weight: vsWeight, uThreshold: 0, lThreshold: 0, inhibitOnFailure: false, alpha: false, checkers: [], pos: n.pos };
  const checkerNodes: Node[] = [];
  for (const x of n.children ?? []) {
    if (inherit(x, o)) continue;
    if (CHECKERS.has(x.key)) checkerNodes.push(x);
    else if (UNSUPPORTED_CHECKERS.has(x.key)) throw new ConfigError(at(x), `${x.key} is not supported by ulvs yet`);
    else
      switch (x.key) {
        case 'weight':
          rs.weight = intArg(x, 0, 65535);
          break;
        case 'uthreshold':
          rs.uThreshold = intArg(x, 0, 0x7fffffff);
          break;
        case 'lthreshold':
          rs.lThreshold = intArg(x, 0, 0x7fffffff);
          break;
        case 'notify_up':
          rs.notifyUp = scriptArg(x);
          break;
        case 'notify_down':
          rs.notifyDown = scriptArg(x);
          break;
        case 'lvs_method':
        case 'lb_kind':
          if (one(x).toUpperCase() !== 'NAT') throw new ConfigError(at(x), `${x.key} ${x.args.join(' ')}: only NAT is supported by ulvs yet`);
          break;
        default:
          warnings.push(`${x.pos.file}:${x.pos.line}:${x.pos.col}: unknown keyword ${x.key} in real_server, ignored`);
      }
  }
  rs.inhibitOnFailure = o.inhibitOnFailure;
  rs.alpha = o.alpha;
  rs.checkers = checkerNodes.map((x) => checker(x, rs, o, warnings));
  return rs;
}

function virtualServer(n: Node, keys: { addr: number; port: number }[], warnings: string[]): VirtualServerConfig[] {
  const inh: Inherited = { connectTimeout: 5, retry: null, delayBeforeRetry: null, delayLoop: 60, warmup: null, alpha: false, inhibitOnFailure: false };
  const vs: VirtualServerConfig = { proto: 6, addr: 0, port: 0, scheduler: 'wlc', schedFlags: 0, ops: false, persistent: 0, delayLoop: 60, quorum: 1, hysteresis: 0, alpha: false, omega: false, sorryServerInhibit: false, inhibitOnFailure: false, realServers: [], pos: n.pos };
  let vsWeight = 1;
  const rsNodes: Node[] = [];
  for (const x of n.children ?? []) {
    if (inherit(x, inh)) continue;
    switch (x.key) {
      case 'lvs_sched':
      case 'lb_algo': {
        const s = one(x);
        if (!SCHEDULERS.includes(s)) throw new ConfigError(at(x), `${x.key}: unknown scheduler ${JSON.stringify(s)}`);
        vs.scheduler = s;
        break;
      }
      case 'lvs_method':
      case 'lb_kind':
        if (one(x).toUpperCase() !== 'NAT') throw new ConfigError(at(x), `${x.key} ${x.args.join(' ')}: only NAT is supported by ulvs yet (DR and TUN are planned)`);
        break;
      case 'protocol': {
        const p = one(x).toUpperCase();
        if (p === 'TCP') vs.proto = 6;
        else if (p === 'UDP') vs.proto = 17;
        else throw new ConfigError(at(x), `protocol ${p} is not supported by ulvs (TCP or UDP)`);
        break;
      }
      case 'persistence_timeout':
        vs.persistent = x.args.length === 0 ? 360 : intArg(x, 1, 2678400);
        break;
      case 'persistence_granularity':
        vs.netmask = ipArg(x, x.args[0]);
        break;
      case 'quorum':
        vs.quorum = intArg(x, 1, 0x7fffffff);
        break;
      case 'hysteresis':
        vs.hysteresis = intArg(x, 0, 0x7fffffff);
        break;
      case 'quorum_up':
        vs.quorumUp = scriptArg(x);
        break;
      case 'quorum_down':
        vs.quorumDown = scriptArg(x);
        break;
      case 'omega':
        vs.omega = true;
        break;
      case 'sorry_server':
        vs.sorryServer = { addr: ipArg(x, x.args[0]), port: portArg(x, x.args[1], 0) };
        break;
      case 'sorry_server_inhibit':
        vs.sorryServerInhibit = true;
        break;
      case 'weight':
        vsWeight = intArg(x, 0, 65535);
        break;
      case 'ops':
        vs.ops = true;
        break;
      case 'real_server':
        rsNodes.push(x);
        break;
      case 'ha_suspend':
      case 'smtp_alert':
      case 'snmp_name':
        warnings.push(`${x.pos.file}:${x.pos.line}:${x.pos.col}: ${x.key} accepted and ignored by ulvs (no VRRP/alerting)`);
        break;
      default: {
        const bit = schedFlagBit(x.key);
        if (bit !== undefined) {
          if ((x.key.startsWith('sh-') && vs.scheduler !== 'sh') || (x.key.startsWith('mh-') && vs.scheduler !== 'mh'))
            throw new ConfigError(at(x), `${x.key} needs lvs_sched ${x.key.slice(0, 2)} on an earlier line`);
          vs.schedFlags |= bit;
        } else warnings.push(`${x.pos.file}:${x.pos.line}:${x.pos.col}: unknown keyword ${x.key} in virtual_server, ignored`);
      }
    }
  }
  vs.delayLoop = inh.delayLoop;
  vs.alpha = inh.alpha;
  vs.inhibitOnFailure = inh.inhibitOnFailure;
  return keys.map((k) => {
    if (k.port === 0 && vs.persistent === 0) throw new ConfigError(at(n), 'the port may only be omitted for a persistent service');
    const one: VirtualServerConfig = { ...vs, addr: k.addr, port: k.port };
    one.realServers = rsNodes.map((x) => realServer(x, one, inh, vsWeight, warnings));
    return one;
  });
}

export function loadKeepalived(path: string, readFile?: (p: string) => string): KeepalivedConfig {
  const { nodes, files } = parseConfigFile(path, readFile);
  const warnings: string[] = [];
  const groups = new Map<string, { addr: number; port: number }[]>();
  for (const n of nodes) {
    if (n.key !== 'virtual_server_group') continue;
    const name = one(n, 'a group name');
    const members: { addr: number; port: number }[] = [];
    for (const m of n.children ?? []) {
      if (m.key === 'fwmark') throw new ConfigError(at(m), 'fwmark members are not supported by ulvs');
      const range = /^(\d+\.\d+\.\d+\.)(\d+)-(\d+)$/.exec(m.key);
      const port = portArg(m, m.args[0], 0);
      if (range) {
        for (let k = Number(range[2]); k <= Number(range[3]); k++) members.push({ addr: ipArg(m, `${range[1]}${k}`), port });
      } else members.push({ addr: ipArg(m, m.key), port });
    }
    groups.set(name, members);
  }
  const services: VirtualServerConfig[] = [];
  const skipped = new Set<string>();
  for (const n of nodes) {
    if (n.key === 'virtual_server') {
      let keys: { addr: number; port: number }[];
      if (n.args[0] === 'group') {
        const g = groups.get(n.args[1] ?? '');
        if (!g) throw new ConfigError(at(n), `virtual_server group ${n.args[1] ?? ''}: no virtual_server_group of that name`);
        keys = g;
      } else if (n.args[0] === 'fwmark') throw new ConfigError(at(n), 'fwmark virtual servers are not supported by ulvs');
      else keys = [{ addr: ipArg(n, n.args[0]), port: portArg(n, n.args[1], 0) }];
      services.push(...virtualServer(n, keys, warnings));
    } else if (n.key === 'virtual_server_group') continue;
    else if (!skipped.has(n.key)) {
      skipped.add(n.key);
      warnings.push(`${n.pos.file}:${n.pos.line}:${n.pos.col}: ${n.key} ${SKIPPED.test(n.key) ? 'is not used by ulvs' : 'is not a keyword ulvs knows'}, skipped`);
    }
  }
  const seen = new Set<string>();
  for (const s of services) {
    const k = `${s.proto}/${s.addr}/${s.port}`;
    if (seen.has(k)) throw new ConfigError(s.pos, 'this virtual server is defined twice');
    seen.add(k);
  }
  return { services, warnings, files };
}
