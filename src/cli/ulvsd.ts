/**
 * ulvsd — the director daemon.
 *
 *   ulvsd --rules FILE | --keepalived FILE  [--socket /run/ulvs/ulvs.sock] [--workers N] [--metrics HOST:PORT]
 *         [--dev ulvs0] [--table 4200] [--pref 4200] [--max-conns N] [--no-offload] [--io auto|uring|syscalls]
 *         [--busy-poll US] [--capture tc|rules] [--fast-path tc|off] [--fast-path-after N] [--fast-path-conns N]
 *
 * --keepalived reads the virtual_server blocks of a keepalived.conf and runs their health
 * checkers (src/health): a failed real server leaves the service (or gets weight 0 with
 * inhibit_on_failure), quorum and the sorry server behave as keepalived's; every health
 * transition is logged with its reason and applied through the same change path.
 *
 * --metrics serves Prometheus text at /metrics (node_exporter's node_ipvs_* families and
 * ulvs's own) and the /proc/net/ip_vs, ip_vs_stats and ip_vs_conn texts at the same paths.
 *
 * Data path: N workers (default: one per core), each with its own TUN queue (IFF_MULTI_QUEUE)
 * and its own engine over a share of the clients: an eBPF steering program sends all packets of
 * a connection (both directions, and ICMP errors about it) to the same worker, and for persistent
 * services all packets of a client network, so no state is shared (src/datapath/tun/steering.ts).
 * Listings add the workers' figures up. Packets move through io_uring (a multishot read into a
 * ring of buffers, one io_uring_enter per batch; Linux 6.7+) or, with --io syscalls or on older
 * kernels (auto falls back, with a warning), through a read(2) and a write(2) per packet.
 * With --fast-path tc (the default where the kernel allows it), established connections are
 * handed to a tc program after --fast-path-after packets (default 8), at most --fast-path-conns
 * at once (default 65536): their packets are rewritten in the kernel, while SYN, FIN and RST
 * still reach the engine, which takes the connection back whenever its state changes, it
 * expires or the configuration changes (src/datapath/tun/fastpath.ts, src/core/offload.ts).
 *
 * Start-up refuses clearly when not root, when /dev/net/tun is missing, when the rules do not
 * parse or validate, or when a VIP is a local address. Then it clears what a crashed run may
 * have left (our rule preferences and table), opens the TUN, installs the routing, logs one
 * line per VIP and per real server, starts the data-path worker and serves the admin API
 * (src/control/admin.ts) on a Unix socket (mode 0600).
 *
 * Every configuration change (API, SIGHUP reload) goes one way: build the complete new rule
 * set, validate it whole on a scratch engine, send only the difference to the worker, then
 * adjust the policy rules (new ones first). Changes are serialised; a refused change changes
 * nothing. Signals: SIGINT/SIGTERM stop and remove everything; SIGHUP re-reads the rules file;
 * SIGUSR1 prints the ipvsadm-style listings and the counters.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { connect } from 'node:net';
import { parseArgs } from 'node:util';
import { availableParallelism } from 'node:os';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import { randomInt } from 'node:crypto';
import type { ConnInfo, DirectorSnapshot, Timeouts } from '../core/director.js';
import { IpvsError } from '../core/errors.js';
import { FWD_NAMES, type ServiceKey } from '../core/service.js';
import { createAdminServer, type AdminControlPlane } from '../control/admin.js';
import { diffRules } from '../control/diff.js';
import { ControlPlane, validateOnScratch } from '../daemon/control-plane.js';
import { listServices } from '../control/listing.js';
import { parseRules, RulesError, type Rules } from '../control/rules.js';
import { offloadNames, openTunQueue, tunAvailable } from '../datapath/tun/device.js';
import { captureDevices, followInterfaces, installCapture, removeCapture, updateCapture, type CaptureState } from '../datapath/tun/capture.js';
import { closeFd, followFastPath, installFastPath, installTunOut, removeFastPath, type FastPathMaps, type FastPathState } from '../datapath/tun/fastpath.js';
import type { WorkerInit } from '../datapath/tun/worker.js';
import { DEFAULT_OFFLOAD_AFTER } from '../core/offload.js';
import { installRouting, isLocalAddress, removeRouting, updateRouting, type RoutingPlan, type RoutingState } from '../datapath/tun/routing.js';
import { sys } from '../datapath/tun/sys.js';
import { spawn as spawnProcess } from 'node:child_process';
import { loadKeepalived, type KeepalivedConfig } from '../control/keepalived/config.js';
import { desiredRules, omegaScripts, rsKey, vsKey } from '../control/keepalived/desired.js';
import { HealthMonitor, type ServerHealth } from '../health/monitor.js';
import { runCheck } from '../health/checks.js';
import { createLogger } from './log.js';
import { SchedStateSlots } from '../control/sched-slots.js';
import { attachSteering, loadSocketFilter, steeringProgram, steeringSpec, type SteeringSpec } from '../datapath/tun/steering.js';
import { mergeSnapshots } from '../core/snapshot-merge.js';
import { createServer as createHttpServer } from 'node:http';
import { createMetrics } from '../metrics/prometheus.js';
import { procIpVs, procIpVsConn, procIpVsStats } from '../metrics/proc.js';
import { formatIPv4 } from '../wire/addr.js';

/** Start-up refusals: plain text on stderr, then exit. */
const fail = (s: string, code = 1): never => {
  process.stderr.write(`ulvsd: ${s}\n`);
  process.exit(code);
};

const USAGE = 'usage: ulvsd --rules FILE [--socket PATH] [--workers N] [--metrics HOST:PORT] [--dev ulvs0] [--table 4200] [--pref 4200] [--max-conns N] [--no-offload] [--io auto|uring|syscalls] [--busy-poll US] [--capture tc|rules] [--fast-path tc|off] [--fast-path-after N] [--fast-path-conns N]';
/** The command line; a word parseArgs refuses (unknown option, missing value) is a usage error, not a crash. */
const { values } = (() => {
  try {
    return parseArgs({
      options: {
        rules: { type: 'string' },
        keepalived: { type: 'string' },
        socket: { type: 'string', default: '/run/ulvs/ulvs.sock' },
        dev: { type: 'string', default: 'ulvs0' },
        table: { type: 'string', default: '4200' },
        pref: { type: 'string', default: '4200' },
        'max-conns': { type: 'string', default: String(1 << 20) },
        workers: { type: 'string', default: String(availableParallelism()) },
        metrics: { type: 'string' },
        'log-format': { type: 'string', default: 'json' },
        'no-offload': { type: 'boolean', default: false },
        io: { type: 'string', default: 'auto' },
        'busy-poll': { type: 'string', default: '0' },
        capture: { type: 'string', default: 'tc' },
        'fast-path': { type: 'string', default: 'tc' },
        'fast-path-after': { type: 'string', default: String(DEFAULT_OFFLOAD_AFTER) },
        'fast-path-conns': { type: 'string', default: '65536' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (e) {
    return fail(`${(e as Error).message.split('\n')[0]}\n${USAGE}`, 2);
  }
})();
if (values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (values['log-format'] !== 'json' && values['log-format'] !== 'text') fail('--log-format is json or text', 2);
const logger = createLogger(values['log-format'] as 'json' | 'text');
const log = (s: string, kind = 'daemon', fields?: Record<string, unknown>) => logger.log('info', kind, s, fields);
const warn = (s: string, kind = 'daemon', fields?: Record<string, unknown>) => logger.log('warn', kind, s, fields);
if (!values.rules === !values.keepalived) fail('give one of --rules FILE (ipvsadm -S format) or --keepalived FILE (keepalived.conf)', 2);
if (process.getuid?.() !== 0) fail('must run as root: it creates a TUN device and policy routes');
if (!tunAvailable()) fail('/dev/net/tun is missing: load the tun module (modprobe tun)');
const WORKERS = Number(values.workers);
if (!Number.isInteger(WORKERS) || WORKERS < 1 || WORKERS > 64) fail('--workers must be 1..64', 2);
const IO = values.io as 'auto' | 'uring' | 'syscalls';
if (!['auto', 'uring', 'syscalls'].includes(IO)) fail('--io is auto, uring or syscalls', 2);
const CAPTURE = values.capture as 'tc' | 'rules';
if (CAPTURE !== 'tc' && CAPTURE !== 'rules') fail('--capture is tc or rules', 2);
const FAST_PATH = values['fast-path'] as 'tc' | 'off';
if (FAST_PATH !== 'tc' && FAST_PATH !== 'off') fail('--fast-path is tc or off', 2);
const FAST_PATH_AFTER = Number(values['fast-path-after']);
if (!Number.isInteger(FAST_PATH_AFTER) || FAST_PATH_AFTER < 1 || FAST_PATH_AFTER > 255) fail('--fast-path-after is 1..255 packets', 2);
const FAST_PATH_CONNS = Number(values['fast-path-conns']);
if (!Number.isInteger(FAST_PATH_CONNS) || FAST_PATH_CONNS < 1 || FAST_PATH_CONNS > 1 << 24) fail('--fast-path-conns is 1..16777216', 2);
const BUSY_POLL_US = Number(values['busy-poll']);
if (!Number.isInteger(BUSY_POLL_US) || BUSY_POLL_US < 0 || BUSY_POLL_US > 1_000_000) fail('--busy-poll is 0..1000000 microseconds', 2);
const metricsAt = (() => {
  if (values.metrics === undefined) return null;
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost):(\d{1,5})$/.exec(values.metrics);
  if (!m || Number(m[2]) > 65535) return fail(`--metrics wants HOST:PORT, e.g. 127.0.0.1:9640, not ${JSON.stringify(values.metrics)}`, 2);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
})();

/** Validate a complete rule set; throws an Error whose message is for the operator. */
function validate(r: Rules): void {
  validateOnScratch(r);
  for (const s of r.services) {
    if (isLocalAddress(s.addr)) throw new IpvsError('EINVAL', `VIP ${formatIPv4(s.addr)} is a local address here; ulvs needs the VIP routed through this host, not assigned to it`);
  }
}

/** Read, parse and validate the rules file. */
function readRules(file: string): Rules {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new Error(`cannot read rules file: ${(e as Error).message}`);
  }
  let r: Rules;
  try {
    r = parseRules(text, file);
  } catch (e) {
    throw new Error(e instanceof RulesError ? e.message : String(e));
  }
  try {
    validate(r);
  } catch (e) {
    throw new Error(e instanceof IpvsError && e.code !== 'EINVAL' ? `rules rejected: ${e.message}` : (e as Error).message);
  }
  return r;
}

const planOf = (r: Rules): RoutingPlan => ({
  dev: values.dev!,
  table: Number(values.table),
  pref: Number(values.pref),
  services: r.services.map((s) => ({ proto: s.proto, addr: s.addr, port: s.port })),
  servers: r.dests.map((x) => ({ proto: x.service.proto, addr: x.dest.addr, port: x.dest.port })),
});

// keepalived mode: configuration, health monitor, quorum state
let kcfg: KeepalivedConfig | null = null;
let monitor: HealthMonitor | null = null;
const quorum = new Map<string, boolean>();
const runScript = (cmd: string | undefined) => {
  if (!cmd) return;
  try {
    spawnProcess('/bin/sh', ['-c', cmd], { detached: true, stdio: 'ignore' }).unref();
  } catch (e) {
    warn(`script ${cmd}: ${(e as Error).message}`);
  }
};
function readKeepalived(file: string): KeepalivedConfig {
  const cfg = loadKeepalived(file);
  for (const w of cfg.warnings) warn(`keepalived.conf: ${w}`, 'config');
  return cfg;
}
/** Start (or restart, keeping the health of servers that are still configured) the monitor. */
function watch(cfg: KeepalivedConfig): void {
  const old = monitor;
  const previous = new Map<string, ServerHealth>();
  if (old) for (const v of kcfg?.services ?? []) for (const r of v.realServers) {
    const h = old.health(rsKey(v, r));
    if (h) previous.set(rsKey(v, r), h);
  }
  old?.stop();
  monitor = new HealthMonitor(runCheck, onHealth);
  for (const v of cfg.services) for (const r of v.realServers) monitor.add(rsKey(v, r), r.checkers, r.alpha, previous.get(rsKey(v, r)));
  kcfg = cfg;
}
function healthRules(): { rules: Rules; changes: ReturnType<typeof desiredRules>['changes'] } {
  return desiredRules(kcfg!, (k) => monitor!.health(k), quorum);
}
function onHealth(key: string, h: ServerHealth): void {
  for (const v of kcfg?.services ?? []) for (const r of v.realServers) {
    if (rsKey(v, r) !== key) continue;
    const service = `${v.proto === 6 ? 'TCP' : 'UDP'} ${formatIPv4(v.addr)}:${v.port}`;
    const server = `${formatIPv4(r.addr)}:${r.port}`;
    const action = h.alive ? 'added' : r.inhibitOnFailure ? 'weight 0 (inhibit_on_failure)' : 'removed';
    log(
      `health: real server ${server} of ${service} is ${h.alive ? 'up' : 'down'}${h.dynamicWeight !== undefined ? ` (weight ${h.dynamicWeight})` : ''}: ${h.reason} -> ${action}`,
      'health',
      { service, server, state: h.alive ? 'up' : 'down', reason: h.reason, action, ...(h.dynamicWeight !== undefined ? { weight: h.dynamicWeight } : {}) },
    );
    runScript(h.alive ? r.notifyUp : r.notifyDown);
  }
  if (daemonReady) void applyHealth(); // before that, the reconciliation at start-up covers it
}
let daemonReady = false;
/** Bring the rules to what health and quorum want now (evaluated inside the serial section). */
async function applyHealth(): Promise<void> {
  try {
    await cp.mutate(() => {
      const { rules: next, changes } = healthRules();
      logQuorum(changes);
      return next;
    });
  } catch (e) {
    warn(`health change not applied: ${(e as Error).message}`, 'health');
  }
}
function logQuorum(changes: ReturnType<typeof desiredRules>['changes']): void {
  for (const c of changes) {
    log(
      `quorum ${c.up ? 'gained' : 'lost'} for ${formatIPv4(c.vs.addr)}:${c.vs.port} (alive weight ${c.weight}, quorum ${c.vs.quorum}, hysteresis ${c.vs.hysteresis})${!c.up && c.vs.sorryServer ? `: sorry server ${formatIPv4(c.vs.sorryServer.addr)}:${c.vs.sorryServer.port || c.vs.port} takes over` : ''}`,
      'quorum',
      { service: `${formatIPv4(c.vs.addr)}:${c.vs.port}`, state: c.up ? 'up' : 'down', aliveWeight: c.weight },
    );
    runScript(c.up ? c.vs.quorumUp : c.vs.quorumDown);
  }
}

let rules: Rules = { services: [], dests: [] };
try {
  if (values.keepalived) {
    watch(readKeepalived(values.keepalived));
    rules = healthRules().rules;
    validate(rules);
  } else rules = readRules(values.rules!);
} catch (e) {
  fail((e as Error).message, 2);
}

// Admin socket: refuse to start over a live daemon's socket; replace a stale one.
const socketPath = values.socket!;
if (existsSync(socketPath)) {
  const live = await new Promise<boolean>((resolve) => {
    const c = connect(socketPath, () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
  if (live) fail(`another ulvsd is serving ${socketPath}`);
  unlinkSync(socketPath);
}

let plan: RoutingPlan = planOf(rules);
removeRouting(plan); // stale state from a crashed run
removeCapture(plan.pref);
// A crashed run's TUN outlives it briefly (the kernel tears its io_uring down asynchronously,
// ~100 ms); attaching to a device on its way out would fail later, so wait for it (at most 3 s).
for (let t = 0; t < 60 && existsSync(`/sys/class/net/${plan.dev}`); t++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
const queues = (() => {
  const qs: ReturnType<typeof openTunQueue>[] = [];
  try {
    for (let i = 0; i < WORKERS; i++) qs.push(openTunQueue(plan.dev, { multiQueue: WORKERS > 1, offload: !values['no-offload'] }));
    return qs;
  } catch (e) {
    for (const x of qs) sys.close(x.fd);
    return fail(`cannot open TUN ${plan.dev}: ${(e as Error).message}`);
  }
})();
const q = queues[0]!;

/**
 * Steering (several workers), decided per service by the program (steering.ts): connections of
 * services without persistence key on the client's address and port (one client's connections
 * spread over the workers); those of persistent services (and of services sharing a real-server
 * endpoint with one) on the client address under the persistence netmask, so a client network
 * stays in one worker and templates are exact. A rule change reloads the program only when the
 * spec changes, and never changes the key of a service whose own grouping stayed the same.
 */
let steering = { spec: null as SteeringSpec | null, progFd: -1 };
type Steering = typeof steering;
/** Load the program a rule set needs (may throw: nothing has changed yet); null if unchanged. */
function prepareSteering(r: Rules): Steering | null {
  if (WORKERS === 1) return null;
  const spec = steeringSpec(r.services, r.dests);
  if (steering.progFd >= 0 && JSON.stringify(spec) === JSON.stringify(steering.spec)) return null;
  return { spec, progFd: loadSocketFilter(steeringProgram(spec)) };
}
function commitSteering(next: Steering | null): void {
  if (next === null) return;
  attachSteering(q.fd, next.progFd);
  const replaced = steering.progFd >= 0;
  if (replaced) sys.close(steering.progFd);
  steering = next;
  if (replaced) log(`steering program replaced: by client network for ${next.spec!.inbound.length} service(s), ${next.spec!.outbound.length} real-server endpoint(s); by client address and port for the rest`, 'config');
}
let routing: RoutingState | undefined;
let capture: CaptureState | null = null;
/** the kernel fast path: maps, program, tcx links (closing the links detaches the program) */
let fastPath: FastPathState | null = null;
/** the TUN's way-out program and its link (fastpath.ts tunOutProgram) */
let tunOut: { progFd: number; link: number } | null = null;
let cleaned = false;
const cleanup = () => {
  if (cleaned) return;
  cleaned = true;
  if (fastPath) removeFastPath(fastPath);
  if (tunOut) for (const fd of [tunOut.link, tunOut.progFd]) closeFd(fd);
  if (capture) removeCapture(plan.pref, capture);
  removeRouting(plan, routing);
  for (const x of queues) sys.close(x.fd);
  if (steering.progFd >= 0) sys.close(steering.progFd);
  try {
    unlinkSync(socketPath);
  } catch {
    /* not created yet */
  }
};
try {
  commitSteering(prepareSteering(rules));
} catch (e) {
  cleanup();
  fail(`steering program for ${WORKERS} workers failed (run with --workers 1 to do without): ${(e as Error).message}`);
}
try {
  routing = installRouting(plan);
} catch (e) {
  cleanup();
  fail(`routing setup failed: ${(e as Error).message}`);
}
if (CAPTURE === 'tc') {
  try {
    capture = installCapture(plan);
    log(`capture: tc u32 filters on ${capture.devices.join(', ') || 'no interface'} send service traffic into ${plan.dev} before routing (${capture.filters} per interface, tc pref ${capture.pref})`);
  } catch (e) {
    warn(`capture by tc unavailable, policy routing alone brings packets to ${plan.dev}: ${(e as Error).message.split('\n')[0]}`);
  }
}
if (FAST_PATH === 'tc') {
  try {
    const devices = capture?.devices ?? captureDevices(plan.dev);
    fastPath = installFastPath(Math.max(WORKERS, FAST_PATH_CONNS), devices);
    log(`fast path: established connections forwarded by a tc program on ${devices.join(', ') || 'no interface'} after ${FAST_PATH_AFTER} packets, up to ${fastPath.maps.slots} at once (--fast-path off to keep every packet in user space)`);
  } catch (e) {
    warn(`kernel fast path unavailable, every packet goes through user space: ${(e as Error).message.split('\n')[0]}`);
  }
  try {
    tunOut = installTunOut(plan.dev);
    log(`fast path: packets leaving ${plan.dev} are sent by a tc program (route lookup, TTL, neighbour output) instead of crossing the IP stack`);
  } catch (e) {
    warn(`packets leaving ${plan.dev} cross the IP stack (tc program unavailable): ${(e as Error).message.split('\n')[0]}`);
  }
}

log(`${plan.dev} up, ${WORKERS} queue${WORKERS > 1 ? `s (steered by client address and port${steering.spec?.inbound.length ? `; by client network for ${steering.spec.inbound.length} service${steering.spec.inbound.length > 1 ? 's' : ''}` : ''})` : ''}, offloads ${offloadNames(q.offloads).join(',') || 'none'}; rules ${plan.pref}-${plan.pref + 1}, table ${plan.table}`);
for (const s of rules.services)
  log(`VIP ${s.proto === 6 ? 'TCP' : 'UDP'} ${formatIPv4(s.addr)}:${s.port} scheduler ${s.scheduler ?? 'wlc'}${s.persistent ? ` persistent ${s.persistent}` : ''}`, 'startup', { vip: `${formatIPv4(s.addr)}:${s.port}` });
for (const x of rules.dests)
  log(`  real server ${formatIPv4(x.dest.addr)}:${x.dest.port} for ${formatIPv4(x.service.addr)}:${x.service.port} (${FWD_NAMES[x.dest.fwd ?? 0]}, weight ${x.dest.weight ?? 1})`, 'startup', { server: `${formatIPv4(x.dest.addr)}:${x.dest.port}` });

// ------------------------------------------------------------------------------------------
// The data-path worker and calls into it

interface WorkerHandle {
  worker: Worker;
  port: MessagePort;
  pending: Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>;
}
/** rr/wrr cursors shared by the workers' engines, so round robin is exact across workers */
const schedSlots = new SchedStateSlots(1 << 16);
let nextId = 1;
let ready = 0;
const ioModes: string[] = [];
let stopped = 0;
const initialOps = schedSlots.assign(diffRules({ services: [], dests: [] }, rules));
initialOps.commit();
const workers: WorkerHandle[] = queues.map((qq, i) => {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(new URL('../datapath/tun/worker.js', import.meta.url), {
    workerData: {
      fd: qq.fd,
      control: port2,
      seed: randomInt(0, 0x7fffffff),
      maxConns: Math.floor(Number(values['max-conns']) / WORKERS),
      ops: initialOps.ops,
      io: IO,
      busyPollUs: BUSY_POLL_US,
      sharedState: schedSlots.state,
      ...(fastPath ? { fastPath: fastPathShare(fastPath.maps, i) } : {}),
    } satisfies WorkerInit,
    transferList: [port2],
  });
  const h: WorkerHandle = { worker, port: port1, pending: new Map() };
  port1.on('message', (m: { type: string; id?: number; result?: unknown; error?: { code: string; message: string }; message?: string; io?: string; reason?: string }) => {
    if (m.type === 'ready' || m.type === 'io') {
      ioModes[i] = m.io!;
      if (m.reason) warn(`worker ${i}: packet I/O by read/write system calls: io_uring ${m.reason}`);
    }
    if (m.type === 'ready') {
      if (++ready === WORKERS) {
        log(`forwarding with ${WORKERS} worker${WORKERS > 1 ? 's' : ''} (pid ${process.pid}, packet I/O: ${[...new Set(ioModes)].join(', ')}); admin API on ${socketPath}`);
        daemonReady = true;
        if (kcfg) void applyHealth(); // health results that arrived during start-up
      }
    } else if (m.type === 'reply') {
      const p = h.pending.get(m.id!);
      h.pending.delete(m.id!);
      if (m.error) p?.reject(new IpvsError(m.error.code, m.error.message));
      else p?.resolve(m.result);
    } else if (m.type === 'error') {
      warn(`data path error (worker ${i}): ${m.message}`);
      shutdown(1);
    } else if (m.type === 'stopped') {
      if (++stopped === WORKERS) {
        cleanup();
        log('stopped, routing removed');
        process.exit(exitCode);
      }
    }
  });
  worker.on('error', (e) => {
    warn(`worker ${i} failed: ${e.stack ?? e.message}`);
    cleanup();
    process.exit(1);
  });
  worker.on('exit', () => {
    if (!cleaned && !stopping) {
      warn(`worker ${i} exited`);
      cleanup();
      process.exit(1);
    }
  });
  return h;
});

/** Worker i's share of the fast path's slots (disjoint ranges: workers never coordinate). */
function fastPathShare(m: FastPathMaps, i: number): NonNullable<WorkerInit['fastPath']> {
  const per = Math.floor(m.slots / WORKERS);
  return { flowsFd: m.flowsFd, slotsFd: m.slotsFd, slots: m.slots, slotBase: i * per, slotCount: per, after: FAST_PATH_AFTER };
}

function rpc<T>(h: WorkerHandle, call: string, ...args: unknown[]): Promise<T> {
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    h.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
    h.port.postMessage({ type: 'call', id, call, args });
  });
}
/** The same call on every worker (configuration changes, counters). */
const rpcAll = <T>(call: string, ...args: unknown[]): Promise<T[]> => Promise.all(workers.map((h) => rpc<T>(h, call, ...args)));

type Counters = { engine: Record<string, number>; datapath: Record<string, number> };
const sum = (xs: Record<string, number>[]) => xs.reduce<Record<string, number>>((a, x) => {
  for (const [k, v] of Object.entries(x)) a[k] = (a[k] ?? 0) + v;
  return a;
}, {});
async function counters(): Promise<Record<string, Record<string, number>> & { workers: Record<string, number>[] }> {
  const cs = await rpcAll<Counters>('counters');
  return { engine: sum(cs.map((c) => c.engine)), datapath: sum(cs.map((c) => c.datapath)), workers: cs.map((c) => c.datapath) } as never;
}

// ------------------------------------------------------------------------------------------
// The control plane: every change validated whole, then applied as a difference, one at a time

const cp = new ControlPlane(
  rules,
  {
    validate,
    stageSteering: (next) => {
      const staged = prepareSteering(next);
      return staged && { commit: () => commitSteering(staged), discard: () => sys.close(staged.progFd) };
    },
    applyOps: async (ops) => void (await rpcAll('apply', ops)),
    route: (next) => {
      const nextPlan = planOf(next);
      let routes = { added: 0, removed: 0 };
      try {
        routes = updateRouting(plan, nextPlan);
      } catch (e) {
        warn(`routing update failed, policy rules may be out of date: ${(e as Error).message}`);
      }
      if (capture) updateCapture(capture, nextPlan);
      plan = nextPlan;
      return routes;
    },
    log: (s) => log(s, 'config'),
  },
  schedSlots,
);
const serial = <T>(f: () => Promise<T>): Promise<T> => cp.serial(f);

async function reload(): Promise<string> {
  if (values.keepalived) {
    const cfg = readKeepalived(values.keepalived); // throws: running configuration unchanged
    const next = desiredRules(cfg, (k) => monitor?.health(k), new Map(quorum)).rules;
    validate(next);
    watch(cfg);
    await applyHealth();
  } else await cp.replace(readRules(values.rules!));
  const msg = `reloaded ${values.keepalived ?? values.rules}`;
  log(msg);
  return msg;
}

const control: AdminControlPlane = {
  rules: () => cp.rules(),
  mutate: async (fn) => void (await cp.mutate(fn)),
  snapshot: async () => mergeSnapshots(await rpcAll<DirectorSnapshot>('snapshot')),
  connections: async () => (await rpcAll<ConnInfo[]>('connections')).flat(),
  timeouts: () => rpc<Timeouts>(workers[0]!, 'timeouts'),
  setTimeouts: (t) => serial(async () => void (await rpcAll('setTimeouts', t))),
  zero: (k?: ServiceKey) => serial(async () => void (await rpcAll('zero', k))),
  counters,
  reload,
};

// Prometheus and /proc texts (control work, never in a worker's loop)
const metrics = createMetrics(async () => {
  const [snapshot, c] = await Promise.all([control.snapshot(), counters()]);
  const health = (kcfg?.services ?? []).flatMap((v) =>
    v.realServers.map((r) => ({ proto: v.proto, vaddr: v.addr, vport: v.port, raddr: r.addr, rport: r.port, up: monitor?.health(rsKey(v, r))?.alive ?? true })),
  );
  const quorumStates = (kcfg?.services ?? []).map((v) => ({ proto: v.proto, vaddr: v.addr, vport: v.port, up: quorum.get(vsKey(v)) ?? true }));
  return { snapshot, engine: c.engine!, datapath: c.datapath!, workers: WORKERS, ...(kcfg ? { health, quorum: quorumStates } : {}) };
});
const metricsServer = metricsAt
  ? createHttpServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0];
      const text = async (): Promise<[string, string] | null> => {
        if (path === '/metrics') return [metrics.registry.contentType, await metrics.scrape()];
        if (path === '/proc/net/ip_vs') return ['text/plain', procIpVs(await control.snapshot())];
        if (path === '/proc/net/ip_vs_stats') return ['text/plain', procIpVsStats((await control.snapshot()).totals)];
        if (path === '/proc/net/ip_vs_conn') return ['text/plain', procIpVsConn(await control.connections())];
        return null;
      };
      text().then(
        (r) => {
          if (r === null || req.method !== 'GET') {
            res.writeHead(404, { 'content-type': 'text/plain' });
            res.end('not found: /metrics, /proc/net/ip_vs, /proc/net/ip_vs_stats, /proc/net/ip_vs_conn\n');
            return;
          }
          res.writeHead(200, { 'content-type': r[0] });
          res.end(r[1]);
        },
        (e: Error) => {
          res.writeHead(500, { 'content-type': 'text/plain' });
          res.end(`${e.message}\n`);
        },
      );
    })
  : null;
if (metricsServer && metricsAt) {
  metricsServer.on('error', (e) => {
    warn(`metrics listener ${values.metrics}: ${e.message}`);
    shutdown(1);
  });
  metricsServer.listen(metricsAt.port, metricsAt.host, () => log(`metrics on http://${values.metrics}/metrics`));
}

mkdirSync(dirname(socketPath), { recursive: true, mode: 0o700 });
const admin = createAdminServer(control);
admin.on('error', (e) => warn(`admin API: ${e.message}`));
admin.listen(socketPath, () => chmodSync(socketPath, 0o600));

/**
 * Interfaces that appear after start (a VLAN, a bond brought up later) get the capture filters
 * and the fast path too: the host's IPv4 interfaces are compared every 2 s (one `ip addr`), and
 * the change goes through the same serial queue as configuration changes.
 */
const FOLLOW_MS = 2000;
const followWarned = new Set<string>();
setInterval(() => {
  if (stopping || (!capture && !fastPath)) return;
  void serial(async () => {
    if (stopping) return;
    const added = capture ? followInterfaces(capture, plan) : null;
    if (added?.length) log(`capture: tc u32 filters added on ${added.join(', ')}`);
    if (!fastPath) return;
    const want = capture?.devices ?? captureDevices(plan.dev);
    try {
      const attached = followFastPath(fastPath, want);
      if (attached.length) log(`fast path: tc program attached on ${attached.join(', ')}`);
    } catch (e) {
      const key = want.join(',');
      if (!followWarned.has(key)) warn(`fast path not attached on every interface of ${want.join(', ')} (tried again every ${FOLLOW_MS / 1000} s): ${(e as Error).message.split('\n')[0]}`);
      followWarned.add(key);
    }
  });
}, FOLLOW_MS).unref();

let exitCode = 0;
let stopping = false;
function shutdown(code: number): void {
  exitCode = code;
  if (stopping) return;
  stopping = true;
  admin.close();
  metricsServer?.close();
  if (kcfg && monitor) for (const cmd of omegaScripts(kcfg, (k) => monitor!.health(k), quorum)) runScript(cmd);
  monitor?.stop();
  for (const h of workers) h.port.postMessage({ type: 'stop' });
  setTimeout(() => {
    cleanup();
    process.exit(code || 1);
  }, 3000).unref();
}
process.on('SIGINT', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));
process.on('SIGHUP', () => {
  if (stopping) return;
  reload().catch((e: Error) => warn(`reload refused, running rules unchanged: ${e.message}`));
});
process.on('SIGUSR1', () => {
  void (async () => {
    const snap = mergeSnapshots(await rpcAll<DirectorSnapshot>('snapshot'));
    const c = await counters();
    const nonzero = (o: Record<string, number>) =>
      Object.entries(o)
        .filter(([, v]) => v !== 0)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ');
    process.stdout.write(`${listServices(snap, 'default')}${listServices(snap, 'stats')}`);
    process.stdout.write(`ulvsd: connections ${snap.connections}; engine ${nonzero(c.engine)}; datapath ${nonzero(c.datapath)}\nulvsd: end of dump\n`);
  })();
});
process.on('uncaughtException', (e) => {
  warn(e.stack ?? e.message);
  cleanup();
  process.exit(1);
});
