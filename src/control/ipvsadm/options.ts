/**
 * ipvsadm 1.31's vocabulary (ipvs-spec §6.1-6.3): its commands, its options (one table: short
 * letter, value, and the option column each counts as), and the command-by-option matrix
 * (ipvsadm.c's commands_v_options) with which parse.ts checks a command line.
 */

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
export const MATRIX: Partial<Record<CommandName, string>> = {
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

/** Command flags, short and long. */
export const COMMANDS: Record<string, CommandName> = {
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

/** An option: its short letter ('' for none), whether it takes a value, and the ipvsadm option
 *  (matrix column) it counts as; `sort` counts as none. */
export interface OptionSpec {
  short: string;
  value: 'no' | 'yes' | 'optional';
  opt?: OptName;
}

/** Every option ipvsadm 1.31 knows, by long name. */
export const OPTIONS: Readonly<Record<string, OptionSpec>> = {
  'tcp-service': { short: 't', value: 'yes', opt: 'service-address' },
  'udp-service': { short: 'u', value: 'yes', opt: 'service-address' },
  'sctp-service': { short: '', value: 'yes', opt: 'service-address' },
  'fwmark-service': { short: 'f', value: 'yes', opt: 'service-address' },
  scheduler: { short: 's', value: 'yes', opt: 'scheduler' },
  persistent: { short: 'p', value: 'optional', opt: 'persistent' },
  netmask: { short: 'M', value: 'yes', opt: 'netmask' },
  'real-server': { short: 'r', value: 'yes', opt: 'real-server' },
  masquerading: { short: 'm', value: 'no', opt: 'forwarding-method' },
  ipip: { short: 'i', value: 'no', opt: 'forwarding-method' },
  gatewaying: { short: 'g', value: 'no', opt: 'forwarding-method' },
  weight: { short: 'w', value: 'yes', opt: 'weight' },
  'u-threshold': { short: 'x', value: 'yes', opt: 'u-threshold' },
  'l-threshold': { short: 'y', value: 'yes', opt: 'l-threshold' },
  numeric: { short: 'n', value: 'no', opt: 'numeric' },
  connection: { short: 'c', value: 'no', opt: 'connection' },
  'mcast-interface': { short: '', value: 'yes', opt: 'mcast-interface' },
  syncid: { short: '', value: 'yes', opt: 'syncid' },
  timeout: { short: '', value: 'no', opt: 'timeout' },
  daemon: { short: '', value: 'no', opt: 'daemon' },
  stats: { short: '', value: 'no', opt: 'stats' },
  rate: { short: '', value: 'no', opt: 'rate' },
  thresholds: { short: '', value: 'no', opt: 'thresholds' },
  'persistent-conn': { short: '', value: 'no', opt: 'persistent-conn' },
  'tun-info': { short: '', value: 'no', opt: 'tun-info' },
  nosort: { short: '', value: 'no', opt: 'nosort' },
  sort: { short: '', value: 'no' },
  exact: { short: 'X', value: 'no', opt: 'exact' },
  ipv6: { short: '6', value: 'no' },
  ops: { short: 'o', value: 'no', opt: 'ops' },
  pe: { short: '', value: 'yes', opt: 'pe' },
  'sched-flags': { short: 'b', value: 'yes', opt: 'sched-flags' },
  'mcast-group': { short: '', value: 'yes', opt: 'mcast-group' },
  'mcast-port': { short: '', value: 'yes', opt: 'mcast-port' },
  'mcast-ttl': { short: '', value: 'yes', opt: 'mcast-ttl' },
  'sync-maxlen': { short: '', value: 'yes', opt: 'sync-maxlen' },
  'tun-type': { short: '', value: 'yes', opt: 'tun-type' },
  'tun-port': { short: '', value: 'yes', opt: 'tun-port' },
  'tun-nocsum': { short: '', value: 'no', opt: 'tun-nocsum' },
  'tun-csum': { short: '', value: 'no', opt: 'tun-csum' },
  'tun-remcsum': { short: '', value: 'no', opt: 'tun-remcsum' },
};
/** short letter -> long name */
export const SHORT: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries(OPTIONS)
    .filter(([, o]) => o.short)
    .map(([l, o]) => [o.short, l]),
);
