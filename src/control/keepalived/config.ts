/**
 * The `virtual_server` part of keepalived.conf (ecosystem.md §1.2-1.4) as ulvs's model.
 *
 * Read: virtual_server IP PORT / fwmark MARK / group NAME (with virtual_server_group, whose
 * members are `IP PORT`, `IP-RANGE PORT` or `fwmark MARK`), lvs_sched|lb_algo,
 * lvs_method|lb_kind (NAT, DR, TUN with keepalived's tunnel options), persistence_timeout [s] (bare = 360),
 * persistence_granularity, protocol (TCP|UDP), delay_loop, quorum, hysteresis, quorum_up,
 * quorum_down, alpha, omega, sorry_server, sorry_server_inhibit, inhibit_on_failure,
 * connect_timeout, retry, delay_before_retry, warmup, virtualhost, weight, ops, scheduler
 * flags; real_server with weight, uthreshold, lthreshold, notify_up, notify_down and the
 * inherited options; checkers TCP_CHECK, HTTP_GET, SSL_GET (url path/digest/status_code),
 * MISC_CHECK (misc_path, misc_timeout, misc_dynamic), UDP_CHECK, DNS_CHECK, SMTP_CHECK
 * (helo_name, host blocks), PING_CHECK (checkers.ts).
 * Inheritance: a virtual_server option is the default of its real_servers, a real_server's
 * of its checkers. The VRRP sections and global_defs are read by vrrp.ts (what ulvsd follows of
 * keepalived's VRRP); other sections ulvs does not act on (static_*, ...) are skipped with one
 * warning each; unknown keywords inside a virtual_server give a warning, as keepalived's.
 * Conditional lines are applied for `configId` (conditional.ts; ulvsd's default `ulvs`).
 */
import { fwmarkKey, FWMARK_MAX, FWMARK_PROTO, schedFlagBit } from '../../core/service.js';
import { defaultRegistry } from '../../sched/index.js';
import { ConfigError, parseConfigFile, type Node, type Pos } from './syntax.js';
import { at, inherit, intArg, ipArg, methodArg, NAT_METHOD, one, portArg, scriptArg, type Inherited, type MethodConfig } from './args.js';
import { checkers, CHECKERS, UNSUPPORTED_CHECKERS, type CheckerConfig } from './checkers.js';
import { readVrrp, type VrrpConfig } from './vrrp.js';

export type { CheckerConfig } from './checkers.js';
export type { CheckerType } from '../../health/checker-spec.js';

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
  /** lvs_method of this real server (default: its virtual server's) */
  method?: MethodConfig;
  checkers: CheckerConfig[];
  pos: Pos;
}

export interface VirtualServerConfig {
  proto: number;
  addr: number;
  port: number;
  scheduler: string;
  /** lvs_method / lb_kind (default NAT) */
  method: MethodConfig;
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
  /** vrrp_instance, vrrp_sync_group, lvs_sync_daemon and the notify FIFO */
  vrrp: VrrpConfig;
  warnings: string[];
  files: string[];
}

/** the schedulers ulvs has (the one registry src/sched keeps) */
const SCHEDULERS = defaultRegistry().names();
/** read by vrrp.ts */
const VRRP_SECTIONS = new Set(['global_defs', 'vrrp_instance', 'vrrp_sync_group', 'vrrp_script', 'vrrp_track_process']);
const SKIPPED = /^(vrrp_\w+|static_\w+|linkbeat_use_polling|net_namespace\w*|SSL|bfd_instance|garp_group|track_\w+|instance|use_\w+)$/;

function realServer(n: Node, vs: VirtualServerConfig, up: Inherited, vsWeight: number, warnings: string[]): RealServerConfig {
  const addr = ipArg(n, n.args[0]);
  const port = portArg(n, n.args[1], vs.port);
  const o: Inherited = { ...up };
  const rs: RealServerConfig = { addr, port, weight: vsWeight, uThreshold: 0, lThreshold: 0, inhibitOnFailure: false, alpha: false, checkers: [], pos: n.pos };
  const checkerNodes: Node[] = [];
  for (const x of n.children ?? []) {
    if (inherit(x, o)) continue;
    if (CHECKERS.has(x.key)) checkerNodes.push(x);
    else if (UNSUPPORTED_CHECKERS.has(x.key)) throw new ConfigError(at(x), `${x.key} is not supported by ulvs: ${UNSUPPORTED_CHECKERS.get(x.key)!}`);
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
          rs.method = methodArg(x);
          break;
        default:
          warnings.push(`${x.pos.file}:${x.pos.line}:${x.pos.col}: unknown keyword ${x.key} in real_server, ignored`);
      }
  }
  rs.inhibitOnFailure = o.inhibitOnFailure;
  rs.alpha = o.alpha;
  rs.checkers = checkerNodes.flatMap((x) => checkers(x, rs, o, warnings));
  return rs;
}

/** A virtual server's identity: an address and port (the protocol from its `protocol` line), or
 *  a firewall mark (proto FWMARK_PROTO, core/service.ts fwmarkKey). */
type VsKey = { addr: number; port: number; proto?: number };

/** `fwmark MARK`: 1..2^32-1, as keepalived (a mark of 0 matches every unmarked packet). */
function markArg(n: Node, s: string | undefined): VsKey {
  if (s === undefined || !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > FWMARK_MAX) throw new ConfigError(at(n), `fwmark: ${JSON.stringify(s ?? '')} is not a mark in 1..${FWMARK_MAX}`);
  return fwmarkKey(Number(s));
}

function virtualServer(n: Node, keys: VsKey[], warnings: string[]): VirtualServerConfig[] {
  const inh: Inherited = { connectTimeout: 5, retry: null, delayBeforeRetry: null, delayLoop: 60, warmup: null, alpha: false, inhibitOnFailure: false };
  const vs: VirtualServerConfig = { proto: 6, addr: 0, port: 0, scheduler: 'wlc', method: NAT_METHOD, schedFlags: 0, ops: false, persistent: 0, delayLoop: 60, quorum: 1, hysteresis: 0, alpha: false, omega: false, sorryServerInhibit: false, inhibitOnFailure: false, realServers: [], pos: n.pos };
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
        vs.method = methodArg(x);
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
    const fwmark = k.proto === FWMARK_PROTO;
    if (k.port === 0 && vs.persistent === 0 && !fwmark) throw new ConfigError(at(n), 'the port may only be omitted for a persistent service');
    const one: VirtualServerConfig = { ...vs, proto: fwmark ? FWMARK_PROTO : vs.proto, addr: k.addr, port: k.port };
    one.realServers = rsNodes.map((x) => realServer(x, one, inh, vsWeight, warnings));
    return one;
  });
}

export function loadKeepalived(path: string, readFile?: (p: string) => string, configId?: string): KeepalivedConfig {
  const { nodes, files } = parseConfigFile(path, readFile, configId);
  const warnings: string[] = [];
  const vrrp = readVrrp(nodes, warnings);
  const groups = new Map<string, VsKey[]>();
  for (const n of nodes) {
    if (n.key !== 'virtual_server_group') continue;
    const name = one(n, 'a group name');
    const members: VsKey[] = [];
    for (const m of n.children ?? []) {
      if (m.key === 'fwmark') {
        members.push(markArg(m, m.args[0]));
        continue;
      }
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
      let keys: VsKey[];
      if (n.args[0] === 'group') {
        const g = groups.get(n.args[1] ?? '');
        if (!g) throw new ConfigError(at(n), `virtual_server group ${n.args[1] ?? ''}: no virtual_server_group of that name`);
        keys = g;
      } else if (n.args[0] === 'fwmark') keys = [markArg(n, n.args[1])];
      else keys = [{ addr: ipArg(n, n.args[0]), port: portArg(n, n.args[1], 0) }];
      services.push(...virtualServer(n, keys, warnings));
    } else if (n.key === 'virtual_server_group' || VRRP_SECTIONS.has(n.key)) continue;
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
  return { services, vrrp, warnings, files };
}
