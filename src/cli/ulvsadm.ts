/**
 * ulvsadm — ipvsadm 1.31's command line for a running ulvsd (issue 4). It parses exactly as
 * ipvsadm does (src/control/ipvsadm/parse.ts), talks to ulvsd's admin API on its Unix socket
 * ($ULVS_SOCKET, default /run/ulvs/ulvs.sock), and prints ipvsadm's outputs and messages.
 *
 * Exit status as ipvsadm: 0 success; 2 invalid command line (fail()); 255 for errors from
 * the director on set commands (the "kernel" errors, with ipvsadm's per-operation messages);
 * 1 for listing errors. When the daemon cannot be reached: a clear message and exit 2 (where
 * ipvsadm says it cannot initialise IPVS).
 */
import { readFileSync } from 'node:fs';
import { lookupService } from 'node:dns';
import { CliError, parseIpvsadm, type Command } from '../control/ipvsadm/parse.js';
import { formatConnections, formatListing, formatTimeouts, NUMERIC, type ListFormat, type Namer } from '../control/listing.js';
import type { ConnInfo, DirectorSnapshot, Timeouts } from '../core/director.js';
import { formatIPv4 } from '../wire/addr.js';
import { callAdmin, type AdminReply } from '../control/admin-client.js';
import { schedFlagNames } from '../core/service.js';

const SOCKET = process.env['ULVS_SOCKET'] ?? '/run/ulvs/ulvs.sock';
const PROG = 'ulvsadm';
const VERSION = 'ulvsadm 0.1.0 (ipvsadm v1.31 command line; IPVS v1.2.1 behaviour)';

class Unreachable extends Error {}

/** A request to ulvsd; an unreachable socket becomes ipvsadm-style advice. */
function api(method: string, path: string, body?: object): Promise<AdminReply> {
  return callAdmin(SOCKET, method, path, body).catch((e: NodeJS.ErrnoException) => {
    throw new Unreachable(`cannot reach ulvsd at ${SOCKET} (${e.code ?? e.message}): is it running? (set ULVS_SOCKET for another socket)`);
  });
}

// ipvsadm's messages for errors returned by the director, by operation (ipvs-spec §6.10).
const BY_OP: Record<string, Record<string, string>> = {
  'add-service': { EEXIST: 'Service already exists', ENOENT: 'Scheduler or persistence engine not found' },
  'edit-service': { ESRCH: 'No such service', ENOENT: 'Scheduler or persistence engine not found' },
  'delete-service': { ESRCH: 'No such service' },
  zero: { ESRCH: 'No such service' },
  'add-server': { ESRCH: 'Service not defined', EEXIST: 'Destination already exists' },
  'edit-server': { ESRCH: 'Service not defined', ENOENT: 'No such destination' },
  'delete-server': { ESRCH: 'Service not defined', ENOENT: 'No such destination' },
};
const ANY: Record<string, string> = {
  EPERM: 'Permission denied (you must be root)',
  EINVAL: 'Invalid operation.  Possibly wrong module version, address not unicast, ...',
  ENOPROTOOPT: 'Protocol not available',
  ENOMEM: 'Memory allocation problem',
  ERANGE: 'Numerical result out of range',
  EAFNOSUPPORT: 'Operation not supported with specified address family',
};

class DirectorError extends Error {
  constructor(
    message: string,
    readonly exit: number,
  ) {
    super(message);
  }
}

/** Turn an API reply into success or ipvsadm's message + exit status. */
function check(r: AdminReply, op: string): void {
  if (r.status < 300) return;
  const err = (r.json as { error?: { code: string; message: string } } | null)?.error;
  const code = err?.code ?? 'internal';
  const msg = BY_OP[op]?.[code] ?? ANY[code] ?? err?.message ?? `HTTP ${r.status}`;
  throw new DirectorError(msg, code === 'validation' ? 2 : 255);
}

const protoPath = (c: Command) => `${c.proto === 6 ? 'tcp' : 'udp'}/${formatIPv4(c.service!.addr)}/${c.service!.port}`;
function serviceBody(c: Command) {
  const b: Record<string, unknown> = { scheduler: c.scheduler ?? 'wlc', persistent: c.persistent ?? 0, schedFlags: schedFlagNames(c.scheduler ?? 'wlc', c.schedFlags ?? 0), ops: !!c.ops };
  if (c.netmask !== undefined) b['netmask'] = formatIPv4(c.netmask);
  return b;
}
function serverBody(c: Command) {
  return { weight: c.weight ?? 1, method: c.method ?? 'route', uThreshold: c.uThreshold ?? 0, lThreshold: c.lThreshold ?? 0 };
}

/** Names for -L without -n: services from /etc/services, hosts by reverse lookup (1 s each). */
async function namer(addrs: number[]): Promise<Namer> {
  const services = new Map<string, string>();
  try {
    for (const line of readFileSync('/etc/services', 'utf8').split('\n')) {
      const m = /^([\w.+-]+)\s+(\d+)\/(tcp|udp)/.exec(line);
      if (m && !services.has(`${m[2]}/${m[3]}`)) services.set(`${m[2]}/${m[3]}`, m[1]!);
    }
  } catch {
    /* no /etc/services: numbers */
  }
  const hosts = new Map<number, string>();
  await Promise.all(
    [...new Set(addrs)].map(
      (a) =>
        new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 1000);
          lookupService(formatIPv4(a), 0, (err, host) => {
            clearTimeout(t);
            if (!err && host && host !== formatIPv4(a)) hosts.set(a, host);
            resolve();
          });
        }),
    ),
  );
  return { addr: (a) => hosts.get(a) ?? formatIPv4(a), port: (p, proto) => services.get(`${p}/${proto === 6 ? 'tcp' : 'udp'}`) ?? String(p) };
}

async function list(c: Command): Promise<string> {
  const l = c.list!;
  if (l.daemon) return ''; // no connection-sync daemons in ulvs
  if (l.timeout) {
    const r = await api('GET', '/v1/timeouts');
    check(r, 'list');
    return formatTimeouts(r.json as Timeouts);
  }
  if (l.connection) {
    const r = await api('GET', '/v1/connections');
    check(r, 'list');
    const conns = r.json as ConnInfo[];
    return formatConnections(conns, l.numeric ? NUMERIC : await namer(conns.flatMap((x) => [x.caddr, x.vaddr, x.daddr])));
  }
  const r = await api('GET', '/v1/snapshot');
  check(r, 'list');
  let snap = r.json as DirectorSnapshot;
  if (c.service) {
    snap = { ...snap, services: snap.services.filter((s) => s.proto === c.proto && s.addr >>> 0 === c.service!.addr >>> 0 && s.port === c.service!.port) };
    if (snap.services.length === 0) throw new DirectorError('No such service', 1);
  }
  const format: ListFormat = l.stats ? 'stats' : l.rate ? 'rate' : l.thresholds ? 'thresholds' : l.persistentConn ? 'persistent-conn' : l.tunInfo ? 'tun-info' : 'default';
  const names = l.numeric ? NUMERIC : await namer(snap.services.flatMap((s) => [s.addr, ...s.dests.map((d) => d.addr)]));
  return formatListing(snap, { format, exact: l.exact, nosort: l.nosort, banner: !c.service, names });
}

async function save(c: Command): Promise<string> {
  const r = await api('GET', '/v1/rules');
  check(r, 'save');
  if (c.options.has('numeric')) return r.text;
  const n = await namer([]);
  return r.text.replace(/(-[tu]) (\d+\.\d+\.\d+\.\d+):(\d+)|(-r) (\d+\.\d+\.\d+\.\d+):(\d+)/g, (m, f1, a1, p1, f2, a2, p2) =>
    f1 ? `${f1} ${a1}:${n.port(Number(p1), f1 === '-t' ? 6 : 17)}` : `${f2} ${a2}:${n.port(Number(p2), m.includes('-u') ? 17 : 6)}`,
  );
}

/** Execute one parsed command; returns the text for stdout. */
async function execute(c: Command, stdin?: () => string): Promise<string> {
  if (c.proto === 0) throw new DirectorError('firewall-mark services (-f) are not supported by ulvs', 2);
  if (c.proto === 132) throw new DirectorError('SCTP services are not supported by ulvs', 2);
  if (c.pe !== undefined) throw new DirectorError(`persistence engines (--pe ${c.pe}) are not supported by ulvs`, 2);
  if (['tun-type', 'tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'].some((o) => c.options.has(o as never)))
    throw new DirectorError('tunnel options: IP-in-IP servers are not supported by ulvs yet', 2);
  switch (c.name) {
    case 'help':
      return usage();
    case 'version':
      return `${VERSION}\n`;
    case 'list':
      return list(c);
    case 'save':
      return save(c);
    case 'add-service':
      check(await api('POST', '/v1/services', { protocol: c.proto === 6 ? 'tcp' : 'udp', address: formatIPv4(c.service!.addr), port: c.service!.port, ...serviceBody(c) }), c.name);
      return '';
    case 'edit-service':
      check(await api('PUT', `/v1/services/${protoPath(c)}`, serviceBody(c)), c.name);
      return '';
    case 'delete-service':
      check(await api('DELETE', `/v1/services/${protoPath(c)}`), c.name);
      return '';
    case 'flush':
      check(await api('DELETE', '/v1/services'), c.name);
      return '';
    case 'add-server':
      check(await api('POST', `/v1/services/${protoPath(c)}/servers`, { address: formatIPv4(c.server!.addr), port: c.server!.port, ...serverBody(c) }), c.name);
      return '';
    case 'edit-server':
      check(await api('PUT', `/v1/services/${protoPath(c)}/servers/${formatIPv4(c.server!.addr)}/${c.server!.port}`, serverBody(c)), c.name);
      return '';
    case 'delete-server':
      check(await api('DELETE', `/v1/services/${protoPath(c)}/servers/${formatIPv4(c.server!.addr)}/${c.server!.port}`), c.name);
      return '';
    case 'zero':
      check(await api('POST', '/v1/zero', c.service ? { service: { protocol: c.proto === 6 ? 'tcp' : 'udp', address: formatIPv4(c.service.addr), port: c.service.port } } : {}), c.name);
      return '';
    case 'set': {
      const [tcp, tcpfin, udp] = c.timeouts!;
      check(await api('PUT', '/v1/timeouts', { tcp, tcpfin, udp }), c.name);
      return '';
    }
    case 'start-daemon':
    case 'stop-daemon':
      throw new DirectorError('connection synchronisation daemons are not supported by ulvs yet', 2);
    case 'restore':
      return restore(stdin ?? (() => readFileSync(0, 'utf8')));
  }
}

/** -R: each line of stdin is one ipvsadm invocation; fail()s abort, director errors are printed
 *  and processing goes on; the exit status is the last line's. */
async function restore(readStdin: () => string): Promise<string> {
  let status = 0;
  for (const line of readStdin().split('\n')) {
    const words = line.split(/[ \t\r]+/).filter((w) => w !== '' && w !== 'ipvsadm');
    if (words.length === 0) continue;
    const c = parseIpvsadm(words); // CliError propagates: aborts the restore
    if (c.name === 'restore') throw new CliError('', 255, true);
    status = 0;
    try {
      process.stdout.write(await execute(c));
    } catch (e) {
      if (!(e instanceof DirectorError) || e.exit === 2) throw e;
      process.stderr.write(`${e.message}\n`);
      status = e.exit;
    }
  }
  if (status !== 0) throw new DirectorError('', status);
  return '';
}

function usage(): string {
  return `${VERSION}
Usage:
  ${PROG} -A|E -t|u service-address [-s scheduler] [-p [timeout]] [-M netmask] [-b sched-flags] [-o]
  ${PROG} -D -t|u service-address
  ${PROG} -C
  ${PROG} -R
  ${PROG} -S [-n]
  ${PROG} -a|e -t|u service-address -r server-address -m [-w weight] [-x upper] [-y lower]
  ${PROG} -d -t|u service-address -r server-address
  ${PROG} -L|l [-t|u service-address] [options]
  ${PROG} -Z [-t|u service-address]
  ${PROG} --set tcp tcpfin udp
  ${PROG} -h

Commands (long or short forms):
  --add-service     -A   add a virtual service
  --edit-service    -E   replace a virtual service's settings (unset ones return to defaults)
  --delete-service  -D   delete a virtual service and its real servers
  --clear           -C   delete every virtual service
  --restore         -R   read commands from standard input, one per line
  --save            -S   print the rules in this format, to be read back by -R
  --add-server      -a   add a real server to a virtual service
  --edit-server     -e   replace a real server's settings
  --delete-server   -d   delete a real server
  --list            -L|-l  list services and real servers
  --zero            -Z   zero the counters of one service or of all
  --set tcp tcpfin udp   set the connection timeouts in seconds (0 keeps a value)
  --help            -h   this text

Options:
  --tcp-service  -t service-address   host[:port], numeric IPv4 address
  --udp-service  -u service-address   host[:port]
  --scheduler    -s scheduler         rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh|twos (default wlc)
  --persistent   -p [timeout]         persistent service, timeout in seconds (default 360)
  --netmask      -M netmask           persistence granularity
  --sched-flags  -b flags             sh-fallback, sh-port, mh-fallback, mh-port, flag-1..3
  --ops          -o                   one-packet scheduling (UDP)
  --real-server  -r server-address    host[:port]; the service port when none is given
  --masquerading -m                   VS/NAT, the method ulvs implements
  --gatewaying   -g                   direct routing: ipvsadm's default, not supported by ulvs yet
  --ipip         -i                   tunnelling: not supported by ulvs yet
  --weight       -w weight            0..65535; 0 quiesces the server (default 1)
  --u-threshold  -x n                 upper connection threshold
  --l-threshold  -y n                 lower connection threshold
  --numeric      -n                   numbers instead of names
  --connection   -c                   list the connection table
  --timeout                           list the timeouts
  --stats                             list counters
  --rate                              list rates
  --thresholds                        list thresholds
  --persistent-conn                   list persistence templates per server
  --exact        -X                   exact numbers with --stats and --rate
  --nosort                            do not sort the listing
  --proc ip_vs|ip_vs_stats|ip_vs_conn  (ulvs) print the kernel's /proc/net/ip_vs* text
The daemon is reached at $ULVS_SOCKET (default /run/ulvs/ulvs.sock).
`;
}

/** ulvs extension: `ulvsadm --proc ip_vs|ip_vs_stats|ip_vs_conn` prints the /proc/net text. */
async function procText(name: string | undefined): Promise<number> {
  if (name !== 'ip_vs' && name !== 'ip_vs_stats' && name !== 'ip_vs_conn') {
    process.stderr.write('--proc wants one of ip_vs, ip_vs_stats, ip_vs_conn\n');
    return 2;
  }
  try {
    const r = await api('GET', `/v1/proc/${name}`);
    check(r, 'list');
    process.stdout.write(r.text);
    return 0;
  } catch (e) {
    process.stderr.write(`${(e as Error).message}\n`);
    return e instanceof DirectorError ? e.exit : 2;
  }
}

async function main(): Promise<number> {
  if (process.argv[2] === '--proc') return procText(process.argv[3]);
  let c: Command;
  try {
    c = parseIpvsadm(process.argv.slice(2));
  } catch (e) {
    if (e instanceof CliError) {
      if (e.message) process.stderr.write(`${e.message}\n`);
      if (e.tryHelp) process.stderr.write(`Try \`${PROG} -h' or '${PROG} --help' for more information.\n`);
      return e.exit;
    }
    throw e;
  }
  try {
    process.stdout.write(await execute(c));
    return 0;
  } catch (e) {
    if (e instanceof Unreachable) {
      process.stderr.write(`${e.message}\n`);
      return 2;
    }
    if (e instanceof CliError) {
      if (e.message) process.stderr.write(`${e.message}\n`);
      if (e.tryHelp) process.stderr.write(`Try \`${PROG} -h' or '${PROG} --help' for more information.\n`);
      return e.exit;
    }
    if (e instanceof DirectorError) {
      if (e.message) process.stderr.write(`${e.message}\n`);
      return e.exit;
    }
    throw e;
  }
}

process.exitCode = await main();
