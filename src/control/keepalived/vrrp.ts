/**
 * The VRRP part of keepalived.conf that ulvsd needs (keepalived.conf(5) of keepalived 2.2.7;
 * ha-scaleout.md §1.12, §2): enough of `vrrp_instance` and `vrrp_sync_group` to check them and
 * to know which instance drives the sync daemon, the global_defs keywords `lvs_sync_daemon`,
 * `notify_fifo` and `vrrp_notify_fifo`, and the names of `vrrp_script` / `vrrp_track_process`
 * blocks that instances track. keepalived (`keepalived -P`) runs VRRP; ulvsd only follows it.
 *
 * Read per instance: interface, state, virtual_router_id, priority, advert_int, nopreempt,
 * virtual_ipaddress (ADDR[/LEN] [dev IF] ...), track_script, track_process, track_interface,
 * lvs_sync_daemon_interface (refused: its global_defs form replaces it). Other keywords are
 * keepalived's business: they are listed in one warning per block.
 *
 * `lvs_sync_daemon IFACE [[inst] INSTANCE] [id 0..255] [maxlen 1..65507] [port 1..65535]
 * [ttl 1..255] [group MULTICAST]` follows keepalived's global_parser.c lvs_syncd_handler: the
 * instance may also be the bare third word, and a bare fourth word the sync id (deprecated);
 * the interface name is at most 15 characters (IP_VS_IFNAME_MAXLEN 16); the sync id defaults to
 * the instance's virtual_router_id (0 without an instance, vrrp.c vrrp_complete_init). Where
 * keepalived reports an error and carries on, ulvs refuses the file with the position. It is
 * meant to be written `@ulvs lvs_sync_daemon ...`: keepalived then skips it (see conditional.ts).
 */
import { tryParseIPv4 } from '../../wire/addr.js';
import { ConfigError, type Node, type Pos } from './syntax.js';
import { at, intArg, one, timerArg } from './args.js';

export interface VirtualAddress {
  /** as written (IPv4 checked: ADDR or ADDR/0..32; IPv6 kept as text) */
  addr: string;
  dev?: string;
}

export interface VrrpInstanceConfig {
  name: string;
  interface: string;
  /** the initial state asked for (keepalived starts every instance as BACKUP but the address owner) */
  state: 'MASTER' | 'BACKUP';
  vrid: number;
  priority: number;
  advertInt: number;
  nopreempt: boolean;
  vips: VirtualAddress[];
  trackScripts: string[];
  trackProcesses: string[];
  trackInterfaces: string[];
  pos: Pos;
}

export interface SyncGroupConfig {
  name: string;
  members: string[];
  pos: Pos;
}

/** Defaults of the kernel's sync daemon (ip_vs_sync.c; ipvsadm(8)) when a keyword is absent. */
export const SYNC_DEFAULTS = { port: 8848, ttl: 1, group: '224.0.0.81' } as const;

export interface LvsSyncDaemonConfig {
  interface: string;
  /** the VRRP instance whose MASTER/BACKUP state the daemon's role follows; absent: both roles */
  instance?: string;
  syncId: number;
  /** absent: from the interface's MTU, as the kernel */
  maxlen?: number;
  port: number;
  ttl: number;
  group: string;
  /** false when written without `@ID`: keepalived reads it too (keepalived 2.2.7 then drives
   *  the kernel's daemon; without kernel IPVS its VRRP process crashes in a loop) */
  conditional: boolean;
  pos: Pos;
}

export interface VrrpConfig {
  instances: VrrpInstanceConfig[];
  groups: SyncGroupConfig[];
  syncDaemon: LvsSyncDaemonConfig | null;
  /** where keepalived writes `INSTANCE "NAME" STATE PRIO` lines: vrrp_notify_fifo, else notify_fifo */
  notifyFifo: string | null;
}

const warn = (warnings: string[], n: Node, msg: string) => warnings.push(`${n.pos.file}:${n.pos.line}:${n.pos.col}: ${msg}`);
/** The words of a block's entries (`{ A B }` on one line or one per line). */
const words = (n: Node): string[] => (n.children ?? []).flatMap((c) => [c.key, ...c.args]);

function vipArg(n: Node): VirtualAddress {
  const addr = n.key;
  if (!addr.includes(':')) {
    const m = /^([^/]+)(?:\/(\d{1,2}))?$/.exec(addr);
    if (!m || tryParseIPv4(m[1]!) < 0 || (m[2] !== undefined && Number(m[2]) > 32)) throw new ConfigError(at(n), `virtual_ipaddress: ${JSON.stringify(addr)} is not ADDR or ADDR/PREFIX`);
  }
  const i = n.args.indexOf('dev');
  if (i >= 0 && n.args[i + 1] === undefined) throw new ConfigError(at(n), `virtual_ipaddress ${addr}: dev needs an interface name`);
  return i >= 0 ? { addr, dev: n.args[i + 1]! } : { addr };
}

function instance(n: Node, warnings: string[]): VrrpInstanceConfig {
  const name = one(n, 'a name');
  const v: Partial<VrrpInstanceConfig> & { skipped: string[] } = { name, state: 'BACKUP', priority: 100, advertInt: 1, nopreempt: false, vips: [], trackScripts: [], trackProcesses: [], trackInterfaces: [], pos: n.pos, skipped: [] };
  for (const x of n.children ?? []) {
    switch (x.key) {
      case 'interface':
        v.interface = one(x, 'an interface name');
        break;
      case 'state': {
        const s = one(x, 'MASTER or BACKUP').toUpperCase();
        if (s !== 'MASTER' && s !== 'BACKUP') throw new ConfigError(at(x), `state: ${JSON.stringify(x.args[0])} is MASTER or BACKUP`);
        v.state = s;
        break;
      }
      case 'virtual_router_id':
        v.vrid = intArg(x, 1, 255);
        break;
      case 'priority':
        v.priority = intArg(x, 1, 255);
        break;
      case 'advert_int':
        v.advertInt = timerArg(x);
        if (v.advertInt <= 0) throw new ConfigError(at(x), 'advert_int must be more than 0 seconds');
        break;
      case 'nopreempt':
        v.nopreempt = true;
        break;
      case 'virtual_ipaddress':
        v.vips = (x.children ?? []).map(vipArg);
        break;
      case 'track_script':
        v.trackScripts = (x.children ?? []).map((c) => c.key);
        break;
      case 'track_process':
        v.trackProcesses = (x.children ?? []).map((c) => c.key);
        break;
      case 'track_interface':
        v.trackInterfaces = (x.children ?? []).map((c) => c.key);
        break;
      case 'lvs_sync_daemon_interface':
        throw new ConfigError(at(x), 'lvs_sync_daemon_interface is the deprecated form: write `@ulvs lvs_sync_daemon IFACE INSTANCE` in global_defs');
      default:
        if (!v.skipped.includes(x.key)) v.skipped.push(x.key);
    }
  }
  if (v.interface === undefined) throw new ConfigError(at(n), `vrrp_instance ${name}: interface is missing`);
  if (v.vrid === undefined) throw new ConfigError(at(n), `vrrp_instance ${name}: virtual_router_id is missing`);
  if (v.skipped.length) warn(warnings, n, `vrrp_instance ${name}: left to keepalived: ${v.skipped.join(', ')}`);
  const { skipped: _, ...inst } = v;
  return inst as VrrpInstanceConfig;
}

function syncGroup(n: Node, warnings: string[]): SyncGroupConfig {
  const name = one(n, 'a name');
  const g = (n.children ?? []).find((c) => c.key === 'group');
  if (!g || g.children === null) throw new ConfigError(at(n), `vrrp_sync_group ${name}: group { INSTANCE ... } is missing`);
  const other = (n.children ?? []).filter((c) => c.key !== 'group').map((c) => c.key);
  if (other.length) warn(warnings, n, `vrrp_sync_group ${name}: left to keepalived: ${[...new Set(other)].join(', ')}`);
  return { name, members: words(g), pos: n.pos };
}

/** `lvs_sync_daemon` (keepalived global_parser.c lvs_syncd_handler); vrids: instance -> VRID. */
function syncDaemon(n: Node): Omit<LvsSyncDaemonConfig, 'syncId'> & { syncId?: number } {
  const a = n.args;
  const bad = (msg: string): never => {
    throw new ConfigError(at(n), `lvs_sync_daemon: ${msg}`);
  };
  if (a.length < 1) bad('needs an interface (lvs_sync_daemon IFACE INSTANCE [id N] [maxlen N] [port N] [ttl N] [group ADDR])');
  if (a[0]!.length >= 16) bad(`interface name ${JSON.stringify(a[0])} is longer than 15 characters`);
  const d: Omit<LvsSyncDaemonConfig, 'syncId'> & { syncId?: number } = { interface: a[0]!, port: SYNC_DEFAULTS.port, ttl: SYNC_DEFAULTS.ttl, group: SYNC_DEFAULTS.group, conditional: n.conditional === true, pos: n.pos };
  const num = (i: number, what: string, lo: number, hi: number): number => {
    const s = a[i + 1];
    if (s === undefined) bad(`${what} needs a value`);
    if (!/^\d+$/.test(s!) || Number(s) < lo || Number(s) > hi) bad(`${what} ${JSON.stringify(s)} is not an integer in ${lo}..${hi}`);
    return Number(s);
  };
  for (let i = 1; i < a.length; i++) {
    const w = a[i]!;
    if (w === 'inst') {
      if (a[i + 1] === undefined) bad('inst needs an instance name');
      if (d.instance !== undefined) bad(`the instance is given twice (${d.instance}, ${a[i + 1]})`);
      d.instance = a[++i]!;
    } else if (w === 'id') d.syncId = num(i++, 'id', 0, 255);
    else if (w === 'maxlen') d.maxlen = num(i++, 'maxlen', 1, 65535 - 20 - 8);
    else if (w === 'port') d.port = num(i++, 'port', 1, 65535);
    else if (w === 'ttl') d.ttl = num(i++, 'ttl', 1, 255);
    else if (w === 'group') {
      const g = a[++i];
      if (g === undefined) bad('group needs a multicast address');
      const v = tryParseIPv4(g!);
      if (v < 0) bad(`group ${JSON.stringify(g)} is not an IPv4 address (IPv6 sync is not supported by ulvs yet)`);
      if (v >>> 28 !== 14) bad(`group ${g} is not a multicast address (224.0.0.0/4)`);
      d.group = g!;
    } else if (i === 1 && d.instance === undefined) d.instance = w; // lvs_sync_daemon IF INSTANCE [SYNCID]
    else if (i === 2 && /^\d+$/.test(w) && d.syncId === undefined) d.syncId = num(i - 1, 'sync id', 0, 255);
    else bad(`unknown option ${JSON.stringify(w)}`);
  }
  return d;
}

/** Read the VRRP sections among the top-level `nodes`; returns null parts when absent. */
export function readVrrp(nodes: Node[], warnings: string[]): VrrpConfig {
  const instances: VrrpInstanceConfig[] = [];
  const groups: SyncGroupConfig[] = [];
  const scripts = new Set<string>();
  const processes = new Set<string>();
  let daemonNode: Node | null = null;
  let fifo: string | null = null;
  let vrrpFifo: string | null = null;
  for (const n of nodes) {
    if (n.key === 'vrrp_instance') {
      const v = instance(n, warnings);
      if (instances.some((o) => o.name === v.name)) throw new ConfigError(at(n), `vrrp_instance ${v.name} is defined twice`);
      instances.push(v);
    } else if (n.key === 'vrrp_sync_group') {
      const g = syncGroup(n, warnings);
      if (groups.some((o) => o.name === g.name)) throw new ConfigError(at(n), `vrrp_sync_group ${g.name} is defined twice`);
      groups.push(g);
    } else if (n.key === 'vrrp_script') scripts.add(one(n, 'a name'));
    else if (n.key === 'vrrp_track_process') processes.add(one(n, 'a name'));
    else if (n.key === 'global_defs') {
      const skipped: string[] = [];
      for (const x of n.children ?? []) {
        if (x.key === 'lvs_sync_daemon') {
          if (daemonNode) throw new ConfigError(at(x), `lvs_sync_daemon is given twice (first at line ${daemonNode.pos.line})`);
          daemonNode = x;
        } else if (x.key === 'notify_fifo') fifo = fifoArg(x);
        else if (x.key === 'vrrp_notify_fifo') vrrpFifo = fifoArg(x);
        else if (!skipped.includes(x.key)) skipped.push(x.key);
      }
      if (skipped.length) warn(warnings, n, `global_defs: left to keepalived: ${skipped.join(', ')}`);
    }
  }
  const byName = new Map(instances.map((v) => [v.name, v]));
  const groupOf = new Map<string, string>();
  for (const g of groups) {
    if (g.members.length === 0) throw new ConfigError(g.pos, `vrrp_sync_group ${g.name}: the group has no instances`);
    for (const m of g.members) {
      if (!byName.has(m)) throw new ConfigError(g.pos, `vrrp_sync_group ${g.name}: no vrrp_instance ${m}`);
      if (groupOf.has(m)) throw new ConfigError(g.pos, `vrrp_instance ${m} is in two sync groups (${groupOf.get(m)}, ${g.name})`);
      groupOf.set(m, g.name);
    }
  }
  for (const v of instances) {
    for (const s of v.trackScripts) if (!scripts.has(s)) warnings.push(`${v.pos.file}:${v.pos.line}:${v.pos.col}: vrrp_instance ${v.name}: track_script ${s}: no vrrp_script of that name (keepalived ignores it)`);
    for (const p of v.trackProcesses) if (!processes.has(p)) warnings.push(`${v.pos.file}:${v.pos.line}:${v.pos.col}: vrrp_instance ${v.name}: track_process ${p}: no vrrp_track_process of that name (keepalived ignores it)`);
  }
  let syncDaemonCfg: LvsSyncDaemonConfig | null = null;
  if (daemonNode) {
    const d = syncDaemon(daemonNode);
    const inst = d.instance === undefined ? undefined : byName.get(d.instance);
    if (d.instance !== undefined && !inst) throw new ConfigError(at(daemonNode), `lvs_sync_daemon: no vrrp_instance ${d.instance}`);
    syncDaemonCfg = { ...d, syncId: d.syncId ?? inst?.vrid ?? 0 };
    if (!syncDaemonCfg.conditional) warn(warnings, daemonNode, 'lvs_sync_daemon without @ulvs is read by keepalived too: keepalived 2.2.7 then drives the kernel\'s sync daemon (without kernel IPVS its VRRP process crashes in a loop); write `@ulvs lvs_sync_daemon ...`');
  }
  const notifyFifo = vrrpFifo ?? fifo;
  if (syncDaemonCfg?.instance !== undefined && notifyFifo === null)
    throw new ConfigError(syncDaemonCfg.pos, 'lvs_sync_daemon follows a VRRP instance, but ulvsd learns VRRP states from keepalived\'s notify FIFO: add `notify_fifo PATH` to global_defs');
  if (instances.length > 0 && notifyFifo === null && syncDaemonCfg === null) warnings.push(`${instances[0]!.pos.file}: vrrp instances without notify_fifo in global_defs: ulvsd does not follow their states`);
  return { instances, groups, syncDaemon: syncDaemonCfg, notifyFifo };
}

function fifoArg(n: Node): string {
  const p = one(n, 'a FIFO path');
  if (!p.startsWith('/')) throw new ConfigError(at(n), `${n.key}: ${JSON.stringify(p)} is not an absolute path`);
  return p;
}
