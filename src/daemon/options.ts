/**
 * ulvsd's command line, parsed and validated without side effects:
 *
 *   parseOptions(argv, cores) -> { options } | { help } | { version } ; throws UsageError (exit status 2)
 *
 * The options, their defaults and help lines are option-table.ts's; `ulvsd --help` is help.ts's.
 *
 * A word parseArgs refuses (unknown option, missing value) is a usage error carrying the first
 * line of its message and the usage text, never a stack trace. Environment checks (root,
 * /dev/net/tun) are the daemon's, after these.
 */
import { parseArgs } from 'node:util';
import { DEFAULT_CONFIG_ID } from '../control/keepalived/conditional.js';
import { optionTable, parseArgsConfig } from './option-table.js';
import { usageLine } from './help.js';
import { parseSysctlAssignment, parseSysctls } from '../core/sysctl-names.js';
import type { Sysctls } from '../core/sysctl.js';

/** The usage line printed after a refused command line (help.ts, from the option table). */
export const USAGE = usageLine(optionTable(1));

/** What parseArgs returns for the table (option-table.ts). */
interface Values {
  rules?: string;
  keepalived?: string;
  'config-id'?: string;
  socket: string;
  dev: string;
  table: string;
  pref: string;
  'max-conns': string;
  workers: string;
  metrics?: string;
  'metrics-public': boolean;
  'log-format': string;
  'no-offload': boolean;
  io: string;
  'busy-poll': string;
  capture: string;
  'fast-path': string;
  'fast-path-fib': string;
  'fast-path-after': string;
  'fast-path-conns': string;
  'fast-path-flows': string;
  'kernel-setup-alive-ms': string;
  'state-dir': string;
  'keep-state': boolean;
  'save-on-stop'?: string;
  'config-test': boolean;
  sysctl: string[];
  version: boolean;
  help: boolean;
}

/** A command line ulvsd refuses: print `ulvsd: <message>` and exit with `code` (2). */
export class UsageError extends Error {
  readonly code = 2;
}

export interface DaemonOptions {
  /** the configuration: an ipvsadm -S rules file, a keepalived.conf, or none (an empty table,
   *  changed with ulvsadm only) */
  source: { kind: 'rules' | 'keepalived'; file: string } | { kind: 'none' };
  /** keepalived.conf's conditional lines (@ID, @^ID) are decided for this id (keepalived's -i) */
  configId: string;
  /** -t / --config-test: check the configuration and exit (config-test.ts), as keepalived -t */
  configTest: boolean;
  /** admin API Unix socket */
  socket: string;
  /** TUN device name, policy-routing table and rule preference */
  dev: string;
  table: number;
  pref: number;
  /** connection table size, shared out among the workers */
  maxConns: number;
  workers: number;
  /** Prometheus and /proc texts over HTTP; `text` is the option as given (for log lines);
   *  `public`: on an address other than loopback (--metrics-public), where only /metrics and the dashboard (without its recent events) are served */
  metrics: { host: string; port: number; text: string; public: boolean } | null;
  /** auto: journal when stdout or stderr is the journal (logger.ts journalStream), else json */
  logFormat: 'auto' | 'json' | 'text' | 'journal';
  /** TUN offloads (checksum, TSO/USO) */
  offload: boolean;
  io: 'auto' | 'uring' | 'syscalls';
  busyPollUs: number;
  capture: 'tc' | 'rules';
  fastPath: 'tc' | 'off';
  fastPathAfter: number;
  fastPathConns: number;
  /** entries of the kernel flow map; 0: two per fast-path connection. Smaller, a full map leaves
   *  connections in user space (offloader.ts; counted fastpath_map_full) */
  fastPathFlows: number;
  /** ulvs_kconf.alive_ms (kernel-setup-maps.ts): ms; 0 not checked */
  /** --fast-path-fib: the fast path's route lookups (daemon/fib-lease.ts) */
  fastPathFib: 'auto' | 'rules';
  kernelSetupAliveMs: number;
  /** where a stopping ulvsd leaves its connections and the record of its kernel side for the
   *  next start (README "Restarts and upgrades") */
  stateDir: string;
  /** SIGTERM/SIGINT hand over to the next process (as SIGUSR2 always does) instead of removing
   *  everything */
  keepState: boolean;
  /** net.ipv4.vs.* values at start (--sysctl NAME=VALUE, repeatable; core/sysctl-names.ts), over
   *  IPVS's defaults; the admin API's PUT /v1/sysctl changes them later */
  sysctl: Partial<Sysctls>;
  /** at a final stop (not a hand-over), the running rules written to this file in ipvsadm -S -n
   *  format; null: not saved */
  saveOnStop: string | null;
}

const int = (s: string, lo: number, hi: number, msg: string): number => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < lo || n > hi || s.trim() === '') throw new UsageError(msg);
  return n;
};
const oneOf = <T extends string>(s: string, allowed: readonly T[], msg: string): T => {
  if (!(allowed as readonly string[]).includes(s)) throw new UsageError(msg);
  return s as T;
};

/** `cores`: the default number of workers (os.availableParallelism()). */
export function parseOptions(argv: string[], cores: number): { help: true } | { help: false; version: true } | { help: false; version: false; options: DaemonOptions } {
  const spec = optionTable(cores);
  let values;
  try {
    // the table's config is built at run time: parseArgs cannot infer the types from it
    ({ values } = parseArgs({ args: argv, options: parseArgsConfig(spec) }) as unknown as { values: Values });
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split('\n')[0]}\n${USAGE}`);
  }
  if (values.help) return { help: true };
  if (values.version) return { help: false, version: true };
  const logFormat = oneOf(values['log-format'], ['auto', 'json', 'text', 'journal'] as const, '--log-format is auto, json, text or journal');
  if (values.rules !== undefined && values.keepalived !== undefined) throw new UsageError('give at most one of --rules FILE (ipvsadm -S format) and --keepalived FILE (keepalived.conf); with neither, ulvsd starts with an empty table');
  if (values.rules === '' || values.keepalived === '') throw new UsageError(`--${values.rules === '' ? 'rules' : 'keepalived'} wants a file name, not an empty word`);
  if (values['save-on-stop'] === '') throw new UsageError('--save-on-stop wants a file name, not an empty word');
  if (values['config-test'] && values.rules === undefined && values.keepalived === undefined) throw new UsageError('--config-test checks --rules FILE or --keepalived FILE: give one');
  // checked in this order (the first refusal is the one reported)
  const workers = int(values.workers, 1, 64, '--workers must be 1..64');
  const io = oneOf(values.io, ['auto', 'uring', 'syscalls'] as const, '--io is auto, uring or syscalls');
  const capture = oneOf(values.capture, ['tc', 'rules'] as const, '--capture is tc or rules');
  const fastPath = oneOf(values['fast-path'], ['tc', 'off'] as const, '--fast-path is tc or off');
  const fastPathFib = oneOf(values['fast-path-fib'], ['auto', 'rules'] as const, '--fast-path-fib is auto or rules');
  const fastPathAfter = int(values['fast-path-after'], 1, 255, '--fast-path-after is 1..255 packets');
  const fastPathConns = int(values['fast-path-conns'], 1, 1 << 24, '--fast-path-conns is 1..16777216');
  const fastPathFlows = int(values['fast-path-flows'], 0, 1 << 25, '--fast-path-flows is 0..33554432 entries (0: two per --fast-path-conns)');
  const kernelSetupAliveMs = int(values['kernel-setup-alive-ms'], 0, 3_600_000, '--kernel-setup-alive-ms is 0..3600000 ms (0: not checked)');
  const busyPollUs = int(values['busy-poll'], 0, 1_000_000, '--busy-poll is 0..1000000 microseconds');
  const metrics = metricsAt(values.metrics, values['metrics-public']);
  const table = int(values.table, 1, 0xfffffffe, '--table is a routing table number, 1..4294967294');
  const pref = int(values.pref, 1, 0xfffffffe, '--pref is a rule preference, 1..4294967294');
  // ulvsd flushes its table and deletes every rule at P and P+1 when it stops: never the kernel's own
  if (table >= 253 && table <= 255) throw new UsageError(`--table ${table} is the kernel's ${['default', 'main', 'local'][table - 253]} table: ulvsd flushes its table at stop; give another number`);
  if (pref >= 32765 && pref <= 32767) throw new UsageError(`--pref ${pref}: ulvsd uses ${pref} and ${pref + 1} and deletes its rules there at stop, and 32766 and 32767 hold the kernel's main and default rules; give another preference`);
  const maxConns = int(values['max-conns'], workers, 2 ** 31 - 1, `--max-conns is ${workers}..2147483647 (at least one per worker)`);
  // within the kernel's dev_valid_name (IFNAMSIZ 16 with its NUL), narrowed: the name goes into
  // file names (state, claims), sysctl paths (a dot would be a path separator there) and a shell line (routing.ts sysctl)
  if (!/^[A-Za-z0-9_-]{1,15}$/.test(values.dev)) throw new UsageError('--dev is an interface name of 1..15 letters, digits, "_" or "-"');
  const configId = values['config-id'] ?? DEFAULT_CONFIG_ID;
  if (values['config-id'] !== undefined && values.keepalived === undefined) throw new UsageError('--config-id applies to --keepalived FILE only (it decides keepalived.conf\'s @ID lines)');
  if (!/^[^\s]+$/.test(configId)) throw new UsageError('--config-id is one word without blanks (the ID of keepalived.conf\'s @ID lines)');
  const sysctl = sysctlsOf(values.sysctl);
  const source: DaemonOptions['source'] = values.rules !== undefined ? { kind: 'rules', file: values.rules } : values.keepalived !== undefined ? { kind: 'keepalived', file: values.keepalived } : { kind: 'none' };
  const options: DaemonOptions = { source, configId, configTest: values['config-test'], socket: values.socket, dev: values.dev, table, pref, maxConns, workers, metrics, logFormat, offload: !values['no-offload'], io, busyPollUs, capture, fastPath, fastPathFib, fastPathAfter, fastPathConns, fastPathFlows, kernelSetupAliveMs, stateDir: values['state-dir'], keepState: values['keep-state'], saveOnStop: values['save-on-stop'] ?? null, sysctl };
  return { help: false, version: false, options };
}

/** 127.0.0.0/8, ::1 or localhost: only this host's processes reach a listener there. */
const loopback = (host: string) => host === 'localhost' || host === '::1' || /^127\./.test(host);

/**
 * --metrics HOST:PORT. Off loopback the listener is anyone's on the network: refused unless
 * --metrics-public says so, and then it serves /metrics and the dashboard (counters by service
 * and real server, health, quorum, VRRP states; not the log's recent events), never the /proc
 * texts (ip_vs_conn lists every client's address) (http.ts).
 */
function metricsAt(s: string | undefined, pub: boolean): DaemonOptions['metrics'] {
  if (s === undefined) {
    if (pub) throw new UsageError('--metrics-public goes with --metrics HOST:PORT');
    return null;
  }
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost):(\d{1,5})$/.exec(s);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`--metrics wants HOST:PORT, e.g. 127.0.0.1:9640, not ${JSON.stringify(s)}`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  if (!loopback(host) && !pub) throw new UsageError(`--metrics ${s} is not a loopback address: every host that reaches it would read the metrics; add --metrics-public to serve /metrics and the dashboard there (the /proc texts, which list clients, stay on loopback and the admin socket)`);
  return { host, port: Number(m[2]), text: s, public: !loopback(host) };
}

/** --sysctl NAME=VALUE, each checked (a later one for the same name wins, as sysctl -w does). */
function sysctlsOf(list: string[]): Partial<Sysctls> {
  try {
    const named: Record<string, string> = {};
    for (const a of list) {
      const [k, v] = parseSysctlAssignment(a);
      named[k] = v;
    }
    return parseSysctls(named);
  } catch (e) {
    throw new UsageError(`--sysctl: ${(e as Error).message}`);
  }
}
