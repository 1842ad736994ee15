/**
 * ipvsadm 1.31's command line (ipvs-spec §6.1-6.4), parsed into a Command without side effects.
 *
 * Behaviour reproduced: the first option must be a command (else the "Try ..." line, exit 255);
 * one command per invocation (a later one is an invalid option, exit 2); short options
 * bundle (-Lnc) and take values attached or separate; long options take `--opt=value` or
 * `--opt value`; `-p` has an optional value (default 360); `--set` takes three values; each
 * option at most once; the command-by-option matrix with ipvsadm's messages; `-r` without a
 * port takes the service port parsed so far; DR/TUN servers of a non-fwmark service get the
 * service port. Validation failures are `fail()`s: message, exit 2.
 */
import { tryParseIPv4 } from '../../wire/addr.js';
import { schedFlagBit } from '../../core/service.js';
import { COMMANDS, MATRIX, OPT, OPTIONS, SHORT, type CommandName, type OptName } from './options.js';

export type { CommandName, OptName } from './options.js';

export class CliError extends Error {
  constructor(
    message: string,
    /** ipvsadm's exit status: 2 for fail(), 255 for popt errors and "Try ..." */
    readonly exit: number,
    /** print the "Try ..." line instead of (or after) the message */
    readonly tryHelp = false,
  ) {
    super(message);
  }
}
const fail = (msg: string): never => {
  throw new CliError(msg, 2);
};

export interface Endpoint {
  addr: number;
  port: number;
}

export interface Command {
  name: CommandName;
  options: Set<OptName>;
  proto?: number; // 6 tcp, 17 udp, 132 sctp, 0 fwmark
  service?: Endpoint;
  fwmark?: number;
  ipv6?: boolean;
  scheduler?: string;
  persistent?: number;
  netmask?: number;
  pe?: string;
  schedFlags?: number;
  schedFlagNames?: string[];
  ops?: boolean;
  server?: Endpoint;
  /** 'masq' | 'route' | 'tunnel' (ipvsadm's default: route) */
  method?: 'masq' | 'route' | 'tunnel';
  /** -i servers: --tun-type (default ipip), --tun-port, --tun-nocsum|--tun-csum|--tun-remcsum */
  tunType?: 'ipip' | 'gue' | 'gre';
  tunPort?: number;
  tunCsum?: 'nocsum' | 'csum' | 'remcsum';
  weight?: number;
  uThreshold?: number;
  lThreshold?: number;
  timeouts?: [number, number, number];
  daemonState?: string;
  /** --start-daemon / --stop-daemon options (ipvsadm's ce->daemon) */
  daemon?: { iface?: string; syncid?: number; maxlen?: number; group?: string; port?: number; ttl?: number };
  list?: ListOptions;
}

/** -L's display options */
export interface ListOptions {
  numeric: boolean;
  connection: boolean;
  timeout: boolean;
  daemon: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  nosort: boolean;
  exact: boolean;
  tunInfo: boolean;
}
/** option -> the ListOptions field it sets */
const LIST_FLAGS: Readonly<Record<string, keyof ListOptions>> = {
  numeric: 'numeric',
  connection: 'connection',
  timeout: 'timeout',
  daemon: 'daemon',
  stats: 'stats',
  rate: 'rate',
  thresholds: 'thresholds',
  'persistent-conn': 'persistentConn',
  nosort: 'nosort',
  exact: 'exact',
  'tun-info': 'tunInfo',
};

/** Well-known ports for service names (a subset of /etc/services; numbers always work). */
export const PORT_NAMES: Record<string, number> = { http: 80, https: 443, domain: 53, ftp: 21, ssh: 22, smtp: 25, imap: 143, pop3: 110, ntp: 123, ldap: 389, mysql: 3306, postgresql: 5432, 'http-alt': 8080 };

/** host[:port] as ipvsadm's parse_service: numeric IPv4 or a service name for the port. */
function endpoint(s: string, what: 'virtual server' | 'real server', defaultPort: number | null): Endpoint {
  const bad = () => fail(what === 'virtual server' ? 'illegal virtual server address[:port] specified' : 'illegal real server address[:port] specified');
  if (s.startsWith('[') || (s.match(/:/g) ?? []).length > 1) throw new CliError('IPv6 services are not supported by ulvs yet', 2);
  const i = s.lastIndexOf(':');
  const host = i >= 0 ? s.slice(0, i) : s;
  const portText = i >= 0 ? s.slice(i + 1) : null;
  if (/^\d+$/.test(host)) bad(); // an all-digit token is not an address
  const addr = tryParseIPv4(host);
  if (addr < 0) bad();
  let port: number;
  if (portText === null) port = defaultPort ?? 0;
  else if (/^\d+$/.test(portText)) {
    port = Number(portText);
    if (port > 65535) bad();
  } else if (Object.hasOwn(PORT_NAMES, portText)) port = PORT_NAMES[portText]!;
  else return bad();
  return { addr, port };
}

function integer(v: string, lo: number, hi: number, msg: string): number {
  if (!/^\d+$/.test(v)) fail(msg);
  const n = Number(v);
  if (n < lo || n > hi) fail(msg);
  return n;
}

/** One option or command as given, with its value if it took one. */
interface Item {
  flag: string;
  value?: string;
}

/** Expand bundles (-Lnc) and --opt=value into a flat list of flags with values, and the rest. */
function tokenize(argv: readonly string[]): { items: Item[]; positional: string[] } {
  const items: Item[] = [];
  const positional: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w.startsWith('--')) {
      const eq = w.indexOf('=');
      const name = eq >= 0 ? w.slice(2, eq) : w.slice(2);
      if (`--${name}` in COMMANDS) {
        items.push({ flag: `--${name}`, ...(eq >= 0 ? { value: w.slice(eq + 1) } : {}) });
        continue;
      }
      const spec = Object.hasOwn(OPTIONS, name) ? OPTIONS[name] : undefined;
      if (!spec) throw new CliError(`${w}: unknown option`, 255, true);
      if (eq >= 0) items.push({ flag: name, value: w.slice(eq + 1) });
      else if (spec.value === 'yes') {
        const v = argv[++i];
        if (v === undefined) throw new CliError(`${w}: missing argument`, 255, true);
        items.push({ flag: name, value: v });
      } else if (spec.value === 'optional' && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')) items.push({ flag: name, value: argv[++i]! });
      else items.push({ flag: name });
    } else if (w.startsWith('-') && w.length > 1) {
      for (let k = 1; k < w.length; k++) {
        const ch = w[k]!;
        if (`-${ch}` in COMMANDS) {
          items.push({ flag: `-${ch}` });
          continue;
        }
        const long = Object.hasOwn(SHORT, ch) ? SHORT[ch] : undefined;
        if (!long) throw new CliError(`-${ch}: unknown option`, 255, true);
        const kind = OPTIONS[long]!.value;
        const rest = w.slice(k + 1);
        if (kind === 'yes') {
          if (rest) items.push({ flag: long, value: rest });
          else {
            const v = argv[++i];
            if (v === undefined) throw new CliError(`-${ch}: missing argument`, 255, true);
            items.push({ flag: long, value: v });
          }
          break;
        }
        if (kind === 'optional') {
          if (rest) items.push({ flag: long, value: rest });
          else if (argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')) items.push({ flag: long, value: argv[++i]! });
          else items.push({ flag: long });
          if (rest) break;
          continue;
        }
        items.push({ flag: long });
      }
    } else positional.push(w);
  }

  return { items, positional };
}

/** Parse one ipvsadm invocation (without the program name). */
export function parseIpvsadm(argv: readonly string[]): Command {
  if (argv.length === 0) return finish({ name: 'list', options: new Set() }, {});
  const { items, positional } = tokenize(argv);
  const first = items[0];
  if (!first || !Object.hasOwn(COMMANDS, first.flag)) throw new CliError('', 255, true);
  const cmd: Command = { name: COMMANDS[first.flag]!, options: new Set() };
  let setValues: string[] = [];
  if (cmd.name === 'set') {
    setValues = first.value !== undefined ? [first.value, ...positional.splice(0, 2)] : positional.splice(0, 3);
    if (setValues.length < 3) fail('--set option requires 3 timeout values');
  }
  if (cmd.name === 'start-daemon' || cmd.name === 'stop-daemon') {
    const st = first.value ?? positional.shift();
    if (st !== 'master' && st !== 'backup') fail(`illegal ${cmd.name} parameter specified`);
    cmd.daemonState = st!;
  }
  const set = (o: OptName) => {
    if (cmd.options.has(o)) fail(`multiple '${o}' options specified`);
    cmd.options.add(o);
  };
  const list: Partial<ListOptions> = {};
  for (const it of items.slice(1)) {
    if (Object.hasOwn(COMMANDS, it.flag)) fail(`invalid option \`${it.flag}'`);
    const o = OPTIONS[it.flag]?.opt;
    if (it.flag === 'sort') continue;
    if (it.flag === 'ipv6') {
      if (cmd.proto !== 0) fail('-6 used before -f');
      cmd.ipv6 = true;
      throw new CliError('IPv6 services are not supported by ulvs yet', 2);
    }
    if (o) set(o);
    const v = it.value ?? '';
    const listFlag = Object.hasOwn(LIST_FLAGS, it.flag) ? LIST_FLAGS[it.flag]! : undefined;
    if (listFlag) {
      list[listFlag] = true;
      continue;
    }
    switch (it.flag) {
      case 'tcp-service':
      case 'udp-service':
      case 'sctp-service':
        cmd.proto = it.flag === 'tcp-service' ? 6 : it.flag === 'udp-service' ? 17 : 132;
        cmd.service = endpoint(v, 'virtual server', null);
        break;
      case 'fwmark-service':
        cmd.proto = 0;
        if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 0xffffffff) fail(`invalid fwmark value \`${v}' specified`);
        cmd.fwmark = Number(v);
        break;
      case 'scheduler':
        cmd.scheduler = v.slice(0, 15);
        break;
      case 'persistent':
        cmd.persistent = it.value === undefined ? 360 : integer(v, 1, 2678400, 'illegal timeout value specified');
        break;
      case 'netmask': {
        const m = tryParseIPv4(v);
        if (m < 0) fail('illegal virtual server persistent mask specified');
        cmd.netmask = m;
        break;
      }
      case 'real-server':
        cmd.server = endpoint(v, 'real server', cmd.service?.port ?? 0);
        break;
      case 'masquerading':
        cmd.method = 'masq';
        break;
      case 'gatewaying':
        cmd.method = 'route';
        break;
      case 'ipip':
        cmd.method = 'tunnel';
        break;
      case 'weight':
        cmd.weight = integer(v, 0, 65535, 'illegal weight specified');
        break;
      case 'u-threshold':
        cmd.uThreshold = integer(v, 0, 0x7fffffff, 'illegal u_threshold specified');
        break;
      case 'l-threshold':
        cmd.lThreshold = integer(v, 0, 0x7fffffff, 'illegal l_threshold specified');
        break;
      case 'ops':
        cmd.ops = true;
        break;
      case 'pe':
        cmd.pe = v;
        break;
      case 'sched-flags': {
        let f = 0;
        for (const n of v.split(',')) {
          const bit = schedFlagBit(n);
          if (bit === undefined) fail(`invalid scheduler flag \`${n}'`);
          f |= bit!;
        }
        cmd.schedFlags = f;
        cmd.schedFlagNames = v.split(',');
        break;
      }
      case 'tun-type':
        if (v !== 'ipip' && v !== 'gue' && v !== 'gre') fail('illegal tunnel type specified');
        cmd.tunType = v as Command['tunType'];
        break;
      case 'tun-port':
        cmd.tunPort = integer(v, 1, 65535, 'illegal tunnel port specified');
        break;
      case 'tun-nocsum':
      case 'tun-csum':
      case 'tun-remcsum':
        cmd.tunCsum = it.flag.slice(4) as Command['tunCsum'];
        break;
      case 'syncid':
        (cmd.daemon ??= {}).syncid = integer(v, 0, 255, 'illegal syncid specified');
        break;
      case 'mcast-interface':
        (cmd.daemon ??= {}).iface = v.slice(0, 15); // ipvsadm copies IP_VS_IFNAME_MAXLEN - 1 bytes
        break;
      case 'sync-maxlen':
        (cmd.daemon ??= {}).maxlen = integer(v, 1, 65535 - 20 - 8, 'illegal sync-maxlen specified');
        break;
      case 'mcast-port':
        (cmd.daemon ??= {}).port = integer(v, 1, 65535, 'illegal mcast-port specified');
        break;
      case 'mcast-ttl':
        (cmd.daemon ??= {}).ttl = integer(v, 1, 255, 'illegal mcast-ttl specified');
        break;
      case 'mcast-group': {
        if (v.includes(':')) throw new CliError('IPv6 sync groups are not supported by ulvs yet', 2);
        const g = tryParseIPv4(v);
        if (g < 0 || g >>> 28 !== 0xe) fail(`invalid IPv4 mcast-group \`${v}'`);
        (cmd.daemon ??= {}).group = v;
        break;
      }
      default:
        break; // other options: checked by the matrix
    }
  }
  if (positional.length > 0) fail(`unexpected argument ${positional[0]}`);
  if (cmd.name === 'set') cmd.timeouts = setValues.map((x) => integer(x, 0, 2678400, 'illegal timeout value specified')) as [number, number, number];
  return finish(cmd, list);
}

function finish(cmd: Command, list: Partial<ListOptions>): Command {
  const row = MATRIX[cmd.name];
  if (row) {
    let last = -1;
    for (let j = 0; j < OPT.length; j++) {
      const has = cmd.options.has(OPT[j]!);
      const rule = row[j] ?? 'x';
      if (!has && rule === '+') fail(`You need to supply the '${OPT[j]}' option for the '${cmd.name}' command`);
      if (has && rule === 'x') fail(`Illegal '${OPT[j]}' option with the '${cmd.name}' command`);
      if (has && rule === '1') {
        if (last >= 0) fail(`The option '${OPT[j]}' conflicts with the '${OPT[last]}' option in the '${cmd.name}' command`);
        last = j;
      }
    }
  }
  if (cmd.name === 'list') {
    const l = { numeric: false, connection: false, timeout: false, daemon: false, stats: false, rate: false, thresholds: false, persistentConn: false, nosort: false, exact: false, tunInfo: false, ...list };
    if ((l.connection || l.timeout || l.daemon) && (l.stats || l.rate || l.thresholds)) fail('options conflicts in the list command');
    if ((l.timeout || l.daemon) && l.persistentConn) fail('options conflicts in the list command');
    cmd.list = l;
  }
  if (cmd.name === 'add-service' || cmd.name === 'edit-service') {
    if (cmd.proto !== 0 && cmd.service && cmd.service.port === 0 && cmd.persistent === undefined) fail('Zero port specified for non-persistent service');
    if (cmd.ops && cmd.proto !== 17 && cmd.proto !== 0) fail('One-Packet Scheduling is only for UDP virtual services');
    const sched = cmd.scheduler ?? 'wlc';
    for (const n of cmd.schedFlagNames ?? []) {
      if ((n.startsWith('sh-') && sched !== 'sh') || (n.startsWith('mh-') && sched !== 'mh')) fail(`incompatible scheduler flag \`${n}'`);
    }
    cmd.scheduler = sched;
  }
  if (cmd.name === 'add-server' || cmd.name === 'edit-server') {
    if (cmd.proto !== 0 && cmd.method !== 'masq' && cmd.service && cmd.server) cmd.server.port = cmd.service.port; // DR/TUN: the server port is the service port
    checkTunnelOptions(cmd);
  }
  return cmd;
}

/** Tunnel options: only with -i, and as each tunnel type allows (ipvsadm's tunnel_opt_check:
 *  ipip takes none, gue needs --tun-port and one checksum mode at most, gre one of
 *  nocsum/csum). The messages are ipvsadm's. */
function checkTunnelOptions(cmd: Command): void {
  const given = (['tun-type', 'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'] as const).filter((o) => cmd.options.has(o));
  if (given.length === 0) return;
  if (cmd.method !== 'tunnel') fail('Tunnel options conflict with forward method');
  const type = cmd.tunType ?? 'ipip';
  // per option: '+' required, 'x' illegal, '1' at most one of them
  const rules: Record<string, string> = { ipip: 'xxxx', gue: '+111', gre: 'x11x' };
  const opts = ['tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'] as const;
  let one: string | null = null;
  opts.forEach((o, j) => {
    const rule = rules[type]![j]!;
    if (!cmd.options.has(o)) {
      if (rule === '+') fail(`You need to supply the '${o}' option for the '${type}' tunnel type`);
    } else if (rule === 'x') fail(`Illegal '${o}' option with the '${type}' tunnel type`);
    else if (rule === '1') {
      if (one !== null) fail(`The option '${o}' conflicts with the '${one}' option in the '${type}' tunnel type`);
      one = o;
    }
  });
}
