/**
 * Every option of ulvsd, once: its name, its kind, the default parseArgs fills in, the default as
 * `ulvsd --help` shows it and one line of what it does. options.ts builds the parser from this
 * table and help.ts the help text, so the two cannot drift apart (options.test.ts checks that
 * each option appears in the help with its default).
 *
 *   optionTable(cores) -> OptionSpec[]   `cores`: the default number of workers
 *   parseArgsConfig(table)               the `options` argument of node:util parseArgs
 */
import { DEFAULT_OFFLOAD_AFTER } from '../core/offload.js';
import { DEFAULT_CONFIG_ID } from '../control/keepalived/conditional.js';

export interface OptionSpec {
  /** without the leading `--` */
  readonly name: string;
  readonly type: 'string' | 'boolean';
  /** repeatable (--sysctl) */
  readonly multiple?: boolean;
  readonly short?: string;
  /** the value's placeholder in the help (FILE, N, tc|rules) */
  readonly value?: string;
  /** what parseArgs fills in when the option is absent (a string option without one is undefined) */
  readonly parseDefault?: string;
  /** the default as the help states it */
  readonly shownDefault: string;
  readonly help: string;
}

/** See the file header. */
export function optionTable(cores: number): OptionSpec[] {
  return [
    { name: 'rules', type: 'string', value: 'FILE', shownDefault: 'none: start with an empty table', help: 'rules in `ipvsadm -S` format, re-read at SIGHUP; without it (and without --keepalived) ulvsd starts empty and is configured with ulvsadm' },
    { name: 'keepalived', type: 'string', value: 'FILE', shownDefault: 'none', help: "keepalived.conf: its virtual_server blocks and health checkers (not with --rules)" },
    { name: 'config-id', type: 'string', value: 'ID', shownDefault: DEFAULT_CONFIG_ID, help: "with --keepalived: keepalived.conf's @ID lines are read for this id (keepalived's -i)" },
    { name: 'socket', type: 'string', value: 'PATH', parseDefault: '/run/ulvs/ulvs.sock', shownDefault: '/run/ulvs/ulvs.sock', help: "the admin API's Unix socket (mode 0600, root's alone; ulvsadm reads $ULVS_SOCKET)" },
    { name: 'workers', type: 'string', value: 'N', parseDefault: String(cores), shownDefault: `${cores} (one per core)`, help: 'data-path worker threads, 1..64' },
    { name: 'max-conns', type: 'string', value: 'N', parseDefault: String(1 << 20), shownDefault: String(1 << 20), help: 'connection table entries, shared out among the workers' },
    { name: 'metrics', type: 'string', value: 'HOST:PORT', shownDefault: 'off', help: 'Prometheus /metrics and the /proc texts over HTTP, on a loopback address unless --metrics-public' },
    { name: 'metrics-public', type: 'boolean', shownDefault: 'off', help: 'allow --metrics on another address; there only /metrics is served' },
    { name: 'log-format', type: 'string', value: 'auto|json|text|journal', parseDefault: 'auto', shownDefault: 'auto', help: 'log lines; auto: journal when stdout or stderr is the journal ($JOURNAL_STREAM), else json' },
    { name: 'dev', type: 'string', value: 'NAME', parseDefault: 'ulvs0', shownDefault: 'ulvs0', help: 'the TUN device' },
    { name: 'table', type: 'string', value: 'N', parseDefault: '4200', shownDefault: '4200', help: 'the policy-routing table' },
    { name: 'pref', type: 'string', value: 'N', parseDefault: '4200', shownDefault: '4200', help: 'the rule and tc preference (P and P+1 are used)' },
    { name: 'no-offload', type: 'boolean', shownDefault: 'offloads on', help: 'open the TUN without checksum and segmentation offloads' },
    { name: 'io', type: 'string', value: 'auto|uring|syscalls', parseDefault: 'auto', shownDefault: 'auto', help: 'how packets cross user space' },
    { name: 'busy-poll', type: 'string', value: 'US', parseDefault: '0', shownDefault: '0', help: 'microseconds a worker keeps polling after its last packet' },
    { name: 'capture', type: 'string', value: 'tc|rules', parseDefault: 'tc', shownDefault: 'tc', help: 'tc filters before routing, or policy rules alone' },
    { name: 'fast-path', type: 'string', value: 'tc|off', parseDefault: 'tc', shownDefault: 'tc', help: 'the kernel fast path for established connections' },
    { name: 'fast-path-fib', type: 'string', value: 'auto|rules', parseDefault: 'auto', shownDefault: 'auto', help: "the fast path's route lookups: the main table directly while no policy rule but ulvsd's own and the kernel's could change them (auto), or always through the rules" },
    { name: 'fast-path-after', type: 'string', value: 'N', parseDefault: String(DEFAULT_OFFLOAD_AFTER), shownDefault: String(DEFAULT_OFFLOAD_AFTER), help: 'packets a connection forwards through the engine before it is offered, 1..255' },
    { name: 'fast-path-conns', type: 'string', value: 'N', parseDefault: '65536', shownDefault: '65536', help: 'connections the fast path holds at once' },
    { name: 'fast-path-flows', type: 'string', value: 'N', parseDefault: '0', shownDefault: '0 (two per --fast-path-conns)', help: 'entries of the kernel flow map' },
    { name: 'kernel-setup-alive-ms', type: 'string', value: 'MS', parseDefault: '250', shownDefault: '250', help: 'with kernel set-up (--sysctl kernel_setup=1): the kernel makes a connection only if the worker that owns it read its reports within MS (a killed or stuck ulvsd: new connections fail instead); 0: not checked' },
    { name: 'state-dir', type: 'string', value: 'DIR', parseDefault: '/run/ulvs', shownDefault: '/run/ulvs', help: 'where a stopping ulvsd leaves its connections and kernel record for the next start' },
    { name: 'keep-state', type: 'boolean', shownDefault: 'off', help: 'SIGTERM/SIGINT hand over to the next start (as SIGUSR2 does) instead of removing everything' },
    { name: 'save-on-stop', type: 'string', value: 'FILE', shownDefault: 'off', help: 'at a final stop, write the running rules to FILE in `ipvsadm -S -n` format (what `ulvsadm -S -n` prints)' },
    { name: 'sysctl', type: 'string', value: 'NAME=VALUE', multiple: true, shownDefault: "IPVS's defaults", help: 'a net.ipv4.vs.* value at start (repeatable)' },
    { name: 'config-test', type: 'boolean', short: 't', shownDefault: 'off', help: 'check --rules FILE or --keepalived FILE as a start would, print what is wrong and exit (as keepalived -t)' },
    { name: 'version', type: 'boolean', shownDefault: '-', help: 'print the version and exit' },
    { name: 'help', type: 'boolean', short: 'h', shownDefault: '-', help: 'print this help and exit' },
  ];
}

type ParseArgsOption = { type: 'string' | 'boolean'; multiple?: boolean; short?: string; default?: string | boolean | string[] | boolean[] };

/** See the file header: booleans default to false, repeatable strings to []. */
export function parseArgsConfig(table: readonly OptionSpec[]): Record<string, ParseArgsOption> {
  const out: Record<string, ParseArgsOption> = {};
  for (const o of table) {
    const c: ParseArgsOption = { type: o.type };
    if (o.short) c.short = o.short;
    if (o.multiple) {
      c.multiple = true;
      c.default = [];
    } else if (o.type === 'boolean') c.default = false;
    else if (o.parseDefault !== undefined) c.default = o.parseDefault;
    out[o.name] = c;
  }
  return out;
}
