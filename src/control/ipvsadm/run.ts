/**
 * What ulvsadm does with a parsed command line (parse.ts): the admin API calls of ulvsd
 * (src/control/admin.ts) for each ipvsadm command, ipvsadm's outputs (listing.ts) and its
 * messages and exit statuses for the director's errors (ipvs-spec §6.10):
 *   0 success; 2 invalid command line; 255 an error from the director on a set command, with
 *   ipvsadm's per-operation message; 1 a listing error; Unreachable (exit 2) when there is no
 *   daemon to talk to.
 * The caller supplies the API call and the streams (src/cli/ulvsadm.ts: the Unix socket and
 * the process's stdio), so a test can drive it with fakes.
 */
import { readFileSync } from 'node:fs';
import { lookupService } from 'node:dns';
import type { AdminReply } from '../admin-client.js';
import { formatConnections, formatListing, formatTimeouts, NUMERIC, type ListFormat, type Namer } from '../listing.js';
import type { ConnInfo, DirectorSnapshot, Timeouts } from '../../core/director.js';
import { fwmarkKey, FWMARK_PROTO, schedFlagNames, type ServiceKey } from '../../core/service.js';
import { formatDaemons, type SyncDaemonStatus } from '../daemon-listing.js';
import { formatIPv4 } from '../../wire/addr.js';
import { CliError, parseIpvsadm, type Command } from './parse.js';
import { usage, VERSION } from './usage.js';

/** One request to the daemon's admin API. */
export type AdminCall = (method: string, path: string, body?: object) => Promise<AdminReply>;

/** Where output goes and -R reads from. */
export interface Io {
  out(s: string): void;
  err(s: string): void;
  stdin(): string;
}

/** The daemon could not be reached (ipvsadm: cannot initialise IPVS): exit 2. */
export class Unreachable extends Error {}


// ipvsadm's messages for errors returned by the director, by operation (ipvs-spec §6.10).
const BY_OP: Record<string, Record<string, string>> = {
  'add-service': { EEXIST: 'Service already exists', ENOENT: 'Scheduler or persistence engine not found' },
  'edit-service': { ESRCH: 'No such service', ENOENT: 'Scheduler or persistence engine not found' },
  'delete-service': { ESRCH: 'No such service' },
  zero: { ESRCH: 'No such service' },
  'add-server': { ESRCH: 'Service not defined', EEXIST: 'Destination already exists' },
  'edit-server': { ESRCH: 'Service not defined', ENOENT: 'No such destination' },
  'delete-server': { ESRCH: 'Service not defined', ENOENT: 'No such destination' },
  'start-daemon': { EEXIST: 'Daemon has already run' },
  'stop-daemon': { ESRCH: 'No daemon is running' },
};
const ANY: Record<string, string> = {
  EPERM: 'Permission denied (you must be root)',
  EINVAL: 'Invalid operation.  Possibly wrong module version, address not unicast, ...',
  ENOPROTOOPT: 'Protocol not available',
  ENOMEM: 'Memory allocation problem',
  ERANGE: 'Numerical result out of range',
  EAFNOSUPPORT: 'Operation not supported with specified address family',
  ENODEV: 'No such device',
  EADDRNOTAVAIL: 'Cannot assign requested address',
};

/** An error the director returned, as ipvsadm prints it, with ipvsadm's exit status. */
export class DirectorError extends Error {
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

/** The command's service: an address service, or <0, mark, 0> for `-f MARK` (core/service.ts). */
const keyOf = (c: Command): ServiceKey => (c.proto === FWMARK_PROTO ? fwmarkKey(c.fwmark!) : { proto: c.proto!, addr: c.service!.addr, port: c.service!.port });
/** Its admin API path and body fields (admin-bodies.ts). */
const protoPath = (c: Command) => (c.proto === FWMARK_PROTO ? `fwm/${c.fwmark!}/0` : `${c.proto === 6 ? 'tcp' : 'udp'}/${formatIPv4(c.service!.addr)}/${c.service!.port}`);
const serviceFields = (c: Command) => (c.proto === FWMARK_PROTO ? { protocol: 'fwm', fwmark: c.fwmark! } : { protocol: c.proto === 6 ? 'tcp' : 'udp', address: formatIPv4(c.service!.addr), port: c.service!.port });
function serviceBody(c: Command) {
  const b: Record<string, unknown> = { scheduler: c.scheduler ?? 'wlc', persistent: c.persistent ?? 0, schedFlags: schedFlagNames(c.scheduler ?? 'wlc', c.schedFlags ?? 0), ops: !!c.ops };
  if (c.netmask !== undefined) b['netmask'] = formatIPv4(c.netmask);
  return b;
}
function serverBody(c: Command) {
  const method = c.method ?? 'route';
  const tunnel = method === 'tunnel' ? { tunType: c.tunType ?? 'ipip', tunPort: c.tunPort ?? 0, tunCsum: c.tunCsum ?? 'nocsum' } : {};
  return { weight: c.weight ?? 1, method, ...tunnel, uThreshold: c.uThreshold ?? 0, lThreshold: c.lThreshold ?? 0 };
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

/** ipvsadm's commands against one daemon: `execute` returns the text for stdout (or throws
 *  DirectorError / CliError / Unreachable), `procText` serves the --proc extension. */
export function ipvsadmRunner(api: AdminCall, io: Io): { execute(c: Command): Promise<string>; procText(name: string | undefined): Promise<number> } {
  async function list(c: Command): Promise<string> {
    const l = c.list!;
    if (l.daemon) {
      const r = await api('GET', '/v1/daemon');
      check(r, 'list');
      return formatDaemons(r.json as SyncDaemonStatus[]);
    }
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
    if (c.service || c.proto === FWMARK_PROTO) {
      const k = keyOf(c);
      snap = { ...snap, services: snap.services.filter((s) => s.proto === k.proto && s.addr >>> 0 === k.addr >>> 0 && s.port === k.port) };
      if (snap.services.length === 0) throw new DirectorError('No such service', 1);
    }
    const format: ListFormat = l.stats ? 'stats' : l.rate ? 'rate' : l.thresholds ? 'thresholds' : l.persistentConn ? 'persistent-conn' : l.tunInfo ? 'tun-info' : 'default';
    const names = l.numeric ? NUMERIC : await namer(snap.services.flatMap((s) => [s.addr, ...s.dests.map((d) => d.addr)]));
    return formatListing(snap, { format, exact: l.exact, nosort: l.nosort, banner: !c.service && c.proto !== FWMARK_PROTO, names });
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
  async function execute(c: Command): Promise<string> {
    if (c.proto === 132) throw new DirectorError('SCTP services are not supported by ulvs', 2);
    if (c.pe !== undefined) throw new DirectorError(`persistence engines (--pe ${c.pe}) are not supported by ulvs`, 2);
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
        check(await api('POST', '/v1/services', { ...serviceFields(c), ...serviceBody(c) }), c.name);
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
        check(await api('POST', '/v1/zero', c.service || c.proto === FWMARK_PROTO ? { service: serviceFields(c) } : {}), c.name);
        return '';
      case 'set': {
        const [tcp, tcpfin, udp] = c.timeouts!;
        check(await api('PUT', '/v1/timeouts', { tcp, tcpfin, udp }), c.name);
        return '';
      }
      case 'start-daemon': {
        const d = c.daemon ?? {};
        check(await api('POST', '/v1/daemon', { state: c.daemonState, iface: d.iface ?? 'eth0', syncid: d.syncid ?? 0, maxlen: d.maxlen ?? 0, group: d.group ?? '224.0.0.81', port: d.port ?? 8848, ttl: d.ttl ?? 1 }), c.name);
        return '';
      }
      case 'stop-daemon':
        check(await api('DELETE', `/v1/daemon/${c.daemonState}`), c.name);
        return '';
      case 'restore':
        return restore();
    }
  }

  /** -R: each line of stdin is one ipvsadm invocation; fail()s abort, director errors are printed
   *  and processing goes on; the exit status is the last line's. */
  async function restore(): Promise<string> {
    let status = 0;
    for (const line of io.stdin().split('\n')) {
      const words = line.split(/[ \t\r]+/).filter((w) => w !== '' && w !== 'ipvsadm');
      if (words.length === 0) continue;
      const c = parseIpvsadm(words); // CliError propagates: aborts the restore
      if (c.name === 'restore') throw new CliError('', 255, true);
      status = 0;
      try {
        io.out(await execute(c));
      } catch (e) {
        if (!(e instanceof DirectorError) || e.exit === 2) throw e;
        io.err(`${e.message}\n`);
        status = e.exit;
      }
    }
    if (status !== 0) throw new DirectorError('', status);
    return '';
  }

  /** ulvs extension: `ulvsadm --proc ip_vs|ip_vs_stats|ip_vs_conn` prints the /proc/net text. */
  async function procText(name: string | undefined): Promise<number> {
    if (name !== 'ip_vs' && name !== 'ip_vs_stats' && name !== 'ip_vs_conn') {
      io.err('--proc wants one of ip_vs, ip_vs_stats, ip_vs_conn\n');
      return 2;
    }
    try {
      const r = await api('GET', `/v1/proc/${name}`);
      check(r, 'list');
      io.out(r.text);
      return 0;
    } catch (e) {
      io.err(`${(e as Error).message}\n`);
      return e instanceof DirectorError ? e.exit : 2;
    }
  }

  return { execute, procText };
}
