/**
 * ulvsd — the director daemon (issue 3).
 *
 *   ulvsd --rules FILE [--dev ulvs0] [--table 4200] [--pref 4200] [--max-conns N] [--no-offload]
 *
 * Start-up: refuses clearly when not root, when /dev/net/tun is missing, when the rules do not
 * parse or validate, or when a VIP is a local address. Then clears what a crashed run may have
 * left (our rule preferences and table), opens the TUN, installs the routing, logs one line per
 * VIP and per real server, and starts the data-path worker. SIGINT/SIGTERM: stop the worker,
 * remove rules/table, restore sysctls, close the TUN (which removes it). SIGUSR1: print the
 * ipvsadm-style listing with statistics and the counters to stdout. SIGHUP: re-read the rules
 * file and apply only the difference (existing connections are not disturbed); a file that does
 * not parse or validate is refused whole and the running rules stay.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { MessageChannel, Worker } from 'node:worker_threads';
import { randomInt } from 'node:crypto';
import { Director, type DirectorSnapshot } from '../core/director.js';
import { defaultRegistry } from '../sched/index.js';
import { parseRules, RulesError, type Rules } from '../control/rules.js';
import { diffRules, loadRules } from '../control/diff.js';
import type { RuleOp } from '../core/ops.js';
import { listServices } from '../control/listing.js';
import { offloadNames, openTunQueue, tunAvailable } from '../datapath/tun/device.js';
import { installRouting, isLocalAddress, removeRouting, updateRouting, type RoutingPlan, type RoutingState } from '../datapath/tun/routing.js';
import { sys } from '../datapath/tun/sys.js';
import { formatIPv4 } from '../wire/addr.js';
import { FWD_NAMES } from '../core/service.js';

const log = (s: string) => process.stdout.write(`ulvsd: ${s}\n`);
const fail = (s: string, code = 1): never => {
  process.stderr.write(`ulvsd: ${s}\n`);
  process.exit(code);
};

const { values } = parseArgs({
  options: {
    rules: { type: 'string' },
    dev: { type: 'string', default: 'ulvs0' },
    table: { type: 'string', default: '4200' },
    pref: { type: 'string', default: '4200' },
    'max-conns': { type: 'string', default: String(1 << 20) },
    'no-offload': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write('usage: ulvsd --rules FILE [--dev ulvs0] [--table 4200] [--pref 4200] [--max-conns N] [--no-offload]\n');
  process.exit(0);
}
if (!values.rules) fail('missing --rules FILE (rules in ipvsadm -S format)', 2);
if (process.getuid?.() !== 0) fail('must run as root: it creates a TUN device and policy routes');
if (!tunAvailable()) fail('/dev/net/tun is missing: load the tun module (modprobe tun)');

/** Read, parse and validate a rules file; throws an Error whose message is for the operator. */
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
    loadRules(new Director({ schedulers: defaultRegistry(), maxConns: 16 }), r); // validate the whole set
  } catch (e) {
    throw new Error(`rules rejected: ${(e as Error).message}`);
  }
  for (const s of r.services) {
    if (isLocalAddress(s.addr)) throw new Error(`VIP ${formatIPv4(s.addr)} is a local address here; ulvs needs the VIP routed through this host, not assigned to it`);
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

let rules: Rules = { services: [], dests: [] };
try {
  rules = readRules(values.rules!);
} catch (e) {
  fail((e as Error).message, 2);
}
let plan: RoutingPlan = planOf(rules);
removeRouting(plan); // stale state from a crashed run
const q = (() => {
  try {
    return openTunQueue(plan.dev, { multiQueue: false, offload: !values['no-offload'] });
  } catch (e) {
    return fail(`cannot open TUN ${plan.dev}: ${(e as Error).message}`);
  }
})();
let routing: RoutingState | undefined;
let cleaned = false;
const cleanup = () => {
  if (cleaned) return;
  cleaned = true;
  removeRouting(plan, routing);
  sys.close(q.fd);
};
try {
  routing = installRouting(plan);
} catch (e) {
  cleanup();
  fail(`routing setup failed: ${(e as Error).message}`);
}

log(`${plan.dev} up, offloads ${offloadNames(q.offloads).join(',') || 'none'}; rules ${plan.pref}-${plan.pref + 1}, table ${plan.table}`);
for (const s of rules.services) {
  log(`VIP ${s.proto === 6 ? 'TCP' : 'UDP'} ${formatIPv4(s.addr)}:${s.port} scheduler ${s.scheduler ?? 'wlc'}${s.persistent ? ` persistent ${s.persistent}` : ''}`);
}
for (const x of rules.dests) {
  log(`  real server ${formatIPv4(x.dest.addr)}:${x.dest.port} for ${formatIPv4(x.service.addr)}:${x.service.port} (${FWD_NAMES[x.dest.fwd ?? 0]}, weight ${x.dest.weight ?? 1})`);
}

const { port1, port2 } = new MessageChannel();
const worker = new Worker(new URL('../datapath/tun/worker.js', import.meta.url), {
  workerData: { fd: q.fd, control: port2, seed: randomInt(0, 0x7fffffff), maxConns: Number(values['max-conns']), ops: diffRules({ services: [], dests: [] }, rules) },
  transferList: [port2],
});
let nextId = 1;
let stopping = false;
const pending = new Map<number, (error?: string) => void>();
port1.on('message', (m: { type: string; id?: number; error?: string; message?: string; snapshot?: DirectorSnapshot; engine?: Record<string, number>; datapath?: Record<string, number> }) => {
  if (m.type === 'ready') log(`forwarding (pid ${process.pid})`);
  else if (m.type === 'error') {
    process.stderr.write(`ulvsd: data path error: ${m.message}\n`);
    shutdown(1);
  } else if (m.type === 'snapshot' && m.snapshot) {
    const nonzero = (o: Record<string, number>) => Object.entries(o).filter(([, v]) => v !== 0).map(([k, v]) => `${k}=${v}`).join(' ');
    process.stdout.write(`${listServices(m.snapshot, 'default')}${listServices(m.snapshot, 'stats')}`);
    process.stdout.write(`ulvsd: connections ${m.snapshot.connections}; engine ${nonzero(m.engine!)}; datapath ${nonzero(m.datapath!)}\nulvsd: end of dump\n`);
  } else if (m.type === 'applied') {
    pending.get(m.id!)?.(m.error);
    pending.delete(m.id!);
  } else if (m.type === 'stopped') {
    cleanup();
    log('stopped, routing removed');
    process.exit(exitCode);
  }
});
worker.on('error', (e) => {
  process.stderr.write(`ulvsd: worker failed: ${e.stack ?? e.message}\n`);
  cleanup();
  process.exit(1);
});
worker.on('exit', () => {
  if (!cleaned) {
    cleanup();
    process.exit(exitCode);
  }
});

let exitCode = 0;
function shutdown(code: number): void {
  exitCode = code;
  if (stopping) return;
  stopping = true;
  port1.postMessage({ type: 'stop' });
  setTimeout(() => {
    cleanup();
    process.exit(code || 1);
  }, 3000).unref();
}
process.on('SIGINT', () => shutdown(0));
process.on('SIGTERM', () => shutdown(0));
process.on('SIGUSR1', () => port1.postMessage({ type: 'snapshot', id: nextId++ }));

let reloading = false;
process.on('SIGHUP', () => {
  if (reloading || stopping) return;
  reloading = true;
  void reload().finally(() => (reloading = false));
});

async function reload(): Promise<void> {
  let next: Rules;
  try {
    next = readRules(values.rules!);
  } catch (e) {
    process.stderr.write(`ulvsd: reload refused, running rules unchanged: ${(e as Error).message}\n`);
    return;
  }
  const ops: RuleOp[] = diffRules(rules, next);
  const nextPlan = planOf(next);
  const id = nextId++;
  const error = await new Promise<string | undefined>((resolve) => {
    pending.set(id, resolve);
    port1.postMessage({ type: 'apply', id, ops });
  });
  if (error) {
    process.stderr.write(`ulvsd: reload failed in the data path: ${error}\n`);
    return;
  }
  let routes = { added: 0, removed: 0 };
  try {
    routes = updateRouting(plan, nextPlan);
  } catch (e) {
    process.stderr.write(`ulvsd: routing update failed: ${(e as Error).message}\n`);
  }
  rules = next;
  plan = nextPlan;
  const count = (k: RuleOp['op']) => ops.filter((o) => o.op === k).length;
  log(`reloaded ${values.rules}: services +${count('addService')} -${count('deleteService')} ~${count('editService')}, real servers +${count('addDest')} -${count('deleteDest')} ~${count('editDest')}; routing rules +${routes.added} -${routes.removed}`);
}
process.on('uncaughtException', (e) => {
  process.stderr.write(`ulvsd: ${e.stack ?? e.message}\n`);
  cleanup();
  process.exit(1);
});
