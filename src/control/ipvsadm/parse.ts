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

export type CommandName =
  | 'add-service'
  | 'edit-service'
  | 'delete-service'
  | 'flush'
  | 'list'
  | 'add-server'
  | 'delete-server'
  | 'edit-server'
  | 'set'
  | 'start-daemon'
  | 'stop-daemon'
  | 'restore'
  | 'save'
  | 'zero'
  | 'help'
  | 'version';

/** ipvsadm's option names, in its optnames[] order (error messages use them). */
export const OPT = [
  'numeric',
  'connection',
  'service-address',
  'scheduler',
  'persistent',
  'netmask',
  'real-server',
  'forwarding-method',
  'weight',
  'u-threshold',
  'l-threshold',
  'mcast-interface',
  'timeout',
  'daemon',
  'stats',
  'rate',
  'thresholds',
  'persistent-conn',
  'nosort',
  'syncid',
  'exact',
  'ops',
  'pe',
  'sched-flags',
  'mcast-group',
  'mcast-port',
  'mcast-ttl',
  'sync-maxlen',
  'tun-info',
  'tun-type',
  'tun-port',
  'tun-nocsum',
  'tun-csum',
  'tun-remcsum',
] as const;
export type OptName = (typeof OPT)[number];

// commands_v_options: '+' required, 'x' illegal, '1' at most one of the group, ' ' optional.
const row = (req: OptName[], opt: OptName[] = [], one: OptName[] = []): string =>
  OPT.map((o) => (req.includes(o) ? '+' : one.includes(o) ? '1' : opt.includes(o) ? ' ' : 'x')).join('');
const SVC_OPTS: OptName[] = ['scheduler', 'persistent', 'netmask', 'ops', 'pe', 'sched-flags'];
const SRV_OPTS: OptName[] = ['forwarding-method', 'weight', 'u-threshold', 'l-threshold', 'tun-type', 'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'];
const MATRIX: Partial<Record<CommandName, string>> = {
  'add-service': row(['service-address'], SVC_OPTS),
  'edit-service': row(['service-address'], SVC_OPTS),
  'delete-service': row(['service-address']),
  flush: row([]),
  list: row([], ['numeric', 'stats', 'rate', 'thresholds', 'persistent-conn', 'nosort', 'syncid', 'exact', 'tun-info'], ['connection', 'service-address', 'timeout', 'daemon']),
  'add-server': row(['service-address', 'real-server'], SRV_OPTS),
  'edit-server': row(['service-address', 'real-server'], SRV_OPTS),
  'delete-server': row(['service-address', 'real-server']),
  set: row([]),
  'start-daemon': row([], ['mcast-interface', 'syncid', 'mcast-group', 'mcast-port', 'mcast-ttl', 'sync-maxlen']),
  'stop-daemon': row([], ['syncid']),
  restore: row([]),
  save: row([], ['numeric']),
  zero: row([], ['service-address']),
};

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
  weight?: number;
  uThreshold?: number;
  lThreshold?: number;
  timeouts?: [number, number, number];
  daemonState?: string;
  list?: { numeric: boolean; connection: boolean; timeout: boolean; daemon: boolean; stats: boolean; rate: boolean; thresholds: boolean; persistentConn: boolean; nosort: boolean; exact: boolean; tunInfo: boolean };
}

const COMMANDS: Record<string, CommandName> = {
  '-A': 'add-service',
  '--add-service': 'add-service',
  '-E': 'edit-service',
  '--edit-service': 'edit-service',
  '-D': 'delete-service',
  '--delete-service': 'delete-service',
  '-C': 'flush',
  '--clear': 'flush',
  '-L': 'list',
  '-l': 'list',
  '--list': 'list',
  '-a': 'add-server',
  '--add-server': 'add-server',
  '-e': 'edit-server',
  '--edit-server': 'edit-server',
  '-d': 'delete-server',
  '--delete-server': 'delete-server',
  '--set': 'set',
  '--start-daemon': 'start-daemon',
  '--stop-daemon': 'stop-daemon',
  '-R': 'restore',
  '--restore': 'restore',
  '-S': 'save',
  '--save': 'save',
  '-Z': 'zero',
  '--zero': 'zero',
  '-h': 'help',
  '--help': 'help',
  '-v': 'version',
  '--version': 'version',
};

/** Options: long name -> [short letter or '', takes a value: 'no' | 'yes' | 'optional'] */
const OPTIONS: Record<string, [string, 'no' | 'yes' | 'optional']> = {
  'tcp-service': ['t', 'yes'],
  'udp-service': ['u', 'yes'],
  'sctp-service': ['', 'yes'],
  'fwmark-service': ['f', 'yes'],
  scheduler: ['s', 'yes'],
  persistent: ['p', 'optional'],
  netmask: ['M', 'yes'],
  'real-server': ['r', 'yes'],
  masquerading: ['m', 'no'],
  ipip: ['i', 'no'],
  gatewaying: ['g', 'no'],
  weight: ['w', 'yes'],
  'u-threshold': ['x', 'yes'],
  'l-threshold': ['y', 'yes'],
  numeric: ['n', 'no'],
  connection: ['c', 'no'],
  'mcast-interface': ['', 'yes'],
  syncid: ['', 'yes'],
  timeout: ['', 'no'],
  daemon: ['', 'no'],
  stats: ['', 'no'],
  rate: ['', 'no'],
  thresholds: ['', 'no'],
  'persistent-conn': ['', 'no'],
  'tun-info': ['', 'no'],
  nosort: ['', 'no'],
  sort: ['', 'no'],
  exact: ['X', 'no'],
  ipv6: ['6', 'no'],
  ops: ['o', 'no'],
  pe: ['', 'yes'],
  'sched-flags': ['b', 'yes'],
  'mcast-group': ['', 'yes'],
  'mcast-port': ['', 'yes'],
  'mcast-ttl': ['', 'yes'],
  'sync-maxlen': ['', 'yes'],
  'tun-type': ['', 'yes'],
  'tun-port': ['', 'yes'],
  'tun-nocsum': ['', 'no'],
  'tun-csum': ['', 'no'],
  'tun-remcsum': ['', 'no'],
};
const SHORT: Record<string, string> = Object.fromEntries(
  Object.entries(OPTIONS)
    .filter(([, [s]]) => s)
    .map(([l, [s]]) => [s, l]),
);
const OPT_OF: Record<string, OptName> = {
  'tcp-service': 'service-address',
  'udp-service': 'service-address',
  'sctp-service': 'service-address',
  'fwmark-service': 'service-address',
  scheduler: 'scheduler',
  persistent: 'persistent',
  netmask: 'netmask',
  'real-server': 'real-server',
  masquerading: 'forwarding-method',
  ipip: 'forwarding-method',
  gatewaying: 'forwarding-method',
  weight: 'weight',
  'u-threshold': 'u-threshold',
  'l-threshold': 'l-threshold',
  numeric: 'numeric',
  connection: 'connection',
  'mcast-interface': 'mcast-interface',
  syncid: 'syncid',
  timeout: 'timeout',
  daemon: 'daemon',
  stats: 'stats',
  rate: 'rate',
  thresholds: 'thresholds',
  'persistent-conn': 'persistent-conn',
  'tun-info': 'tun-info',
  nosort: 'nosort',
  exact: 'exact',
  ops: 'ops',
  pe: 'pe',
  'sched-flags': 'sched-flags',
  'mcast-group': 'mcast-group',
  'mcast-port': 'mcast-port',
  'mcast-ttl': 'mcast-ttl',
  'sync-maxlen': 'sync-maxlen',
  'tun-type': 'tun-type',
  'tun-port': 'tun-port',
  'tun-nocsum': 'tun-nocsum',
  'tun-csum': 'tun-csum',
  'tun-remcsum': 'tun-remcsum',
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

/** Parse one ipvsadm invocation (without the program name). */
export function parseIpvsadm(argv: readonly string[]): Command {
  if (argv.length === 0) return finish({ name: 'list', options: new Set() }, {});
  // Expand bundles and --opt=value into a flat list of [flag, value?]
  const items: { flag: string; value?: string }[] = [];
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
      const spec = OPTIONS[name];
      if (!spec) throw new CliError(`${w}: unknown option`, 255, true);
      if (eq >= 0) items.push({ flag: name, value: w.slice(eq + 1) });
      else if (spec[1] === 'yes') {
        const v = argv[++i];
        if (v === undefined) throw new CliError(`${w}: missing argument`, 255, true);
        items.push({ flag: name, value: v });
      } else if (spec[1] === 'optional' && argv[i + 1] !== undefined && !argv[i + 1]!.startsWith('-')) items.push({ flag: name, value: argv[++i]! });
      else items.push({ flag: name });
    } else if (w.startsWith('-') && w.length > 1) {
      for (let k = 1; k < w.length; k++) {
        const ch = w[k]!;
        if (`-${ch}` in COMMANDS) {
          items.push({ flag: `-${ch}` });
          continue;
        }
        const long = SHORT[ch];
        if (!long) throw new CliError(`-${ch}: unknown option`, 255, true);
        const kind = OPTIONS[long]![1];
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
  const seen = new Set<string>();
  const set = (o: OptName) => {
    if (cmd.options.has(o)) fail(`multiple '${o}' options specified`);
    cmd.options.add(o);
  };
  const list = { numeric: false, connection: false, timeout: false, daemon: false, stats: false, rate: false, thresholds: false, persistentConn: false, nosort: false, exact: false, tunInfo: false };
  for (const it of items.slice(1)) {
    if (Object.hasOwn(COMMANDS, it.flag)) fail(`invalid option \`${it.flag}'`);
    const o = OPT_OF[it.flag];
    if (it.flag === 'sort') continue;
    if (it.flag === 'ipv6') {
      if (cmd.proto !== 0) fail('-6 used before -f');
      cmd.ipv6 = true;
      throw new CliError('IPv6 services are not supported by ulvs yet', 2);
    }
    if (o) set(o);
    seen.add(it.flag);
    const v = it.value ?? '';
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
      case 'numeric':
        list.numeric = true;
        break;
      case 'connection':
        list.connection = true;
        break;
      case 'timeout':
        list.timeout = true;
        break;
      case 'daemon':
        list.daemon = true;
        break;
      case 'stats':
        list.stats = true;
        break;
      case 'rate':
        list.rate = true;
        break;
      case 'thresholds':
        list.thresholds = true;
        break;
      case 'persistent-conn':
        list.persistentConn = true;
        break;
      case 'tun-info':
        list.tunInfo = true;
        break;
      case 'nosort':
        list.nosort = true;
        break;
      case 'exact':
        list.exact = true;
        break;
      case 'syncid':
        integer(v, 0, 255, 'illegal syncid specified');
        break;
      default:
        break; // daemon and tunnel options: checked by the matrix, rejected later if used
    }
  }
  if (positional.length > 0) fail(`unexpected argument ${positional[0]}`);
  if (cmd.name === 'set') cmd.timeouts = setValues.map((x) => integer(x, 0, 2678400, 'illegal timeout value specified')) as [number, number, number];
  return finish(cmd, list);
}

function finish(cmd: Command, list: Partial<NonNullable<Command['list']>>): Command {
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
  if ((cmd.name === 'add-server' || cmd.name === 'edit-server') && cmd.proto !== 0 && cmd.method !== 'masq' && cmd.service && cmd.server) {
    cmd.server.port = cmd.service.port; // DR/TUN: the server port is the service port
  }
  return cmd;
}
