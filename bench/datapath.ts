/**
 * Side-by-side data-path benchmark (issues 3, 6 and 16): one test bed (2 clients, director, 3
 * real servers), the same clients and servers, five set-ups (bench/datapath-setups.ts: none,
 * nft, haproxy, ulvs, ulvs-exact) measured in turn, five rounds. The order rotates from round to
 * round and runs backwards in odd rounds, nft and the ulvs set-ups always next to each other
 * (bench/verdict.ts roundOrder), so a slow phase of the shared machine does not always fall on
 * the same set-up; each bar is judged on the median of the per-round ratios (paired). Each
 * set-up starts in a new director namespace (since 2026-12-02: before, nftables measured after
 * a ulvsd walked the policy rules the kernel keeps walking once any was added, 4.6 us per
 * connection and 18 us per MB; BENCHMARKS.md).
 *
 * Measurements (each 5 s):
 * - TCP throughput, 1 and 4 streams, iperf3 client -> VIP:5201 (source hashing).
 * - new HTTP connections per second: wrk `Connection: close` against nginx on the real servers,
 *   round robin, from one client and from two client namespaces at once, after 3 s of the same
 *   load that is not measured (warmUp: steady state, not a fresh ulvsd's JIT compilation).
 * - latency p50/p99 of keep-alive HTTP requests at a fixed 2,000 requests/s over 16 connections,
 *   open loop (src/lab/latency.ts).
 * - small-packet UDP: iperf3 -u with 64-byte datagrams, unlimited rate; the figure is datagrams
 *   per second delivered to the server. HAProxy has no UDP: no figure.
 * - memory: ulvsd's resident memory after --flows (default 1,000,000) distinct UDP flows
 *   (src/lab/flood.ts), with the connection count it reports.
 * - CPU: busy CPU seconds of the whole machine (/proc/stat) per GB moved by the single-stream
 *   test and per 1,000 connections of the one-client HTTP test, and the balancer process's own
 *   CPU seconds (ulvsd, haproxy; nft works in softirq context and has no process), and the
 *   seconds its threads waited for a CPU (schedstat) during the HTTP test.
 * - for the ulvs set-ups' stream tests: packets through ulvsd's TUN per GB (the report calls out
 *   a round where the kernel fast path did not carry the traffic), and ulvsd's log lines saying a
 *   kernel part is unavailable.
 * - the machine (bench/machine-info.ts): CPU, kernel, mitigations, how busy before the run.
 * The figure for each set-up is the median of the rounds, shown with the smallest and largest;
 * the ratios are paired (bench/report.ts). Writes bench/results/<date>.md and .json. Installs
 * iperf3, wrk, nftables, nginx-light, haproxy if missing.
 * Last line: JSON with every figure, the ratios ulvs/nft and ulvs/haproxy and the bars.
 * Run as root:   npm run bench   (-- --rounds N --seconds S --setups none,nft,haproxy,ulvs,ulvs-exact
 *                 --tests stream1,stream4,http,http2,latency,udp --flows N --perf --ulvs-args '...'
 *                 --ulvs-exact-args='...'; an argument starting with a dash needs the = form)
 * --tests asym (alone): small requests, 1 MiB replies through ulvs NAT, DR and TUN and the
 * nftables netdev DR peer (bench/asym.ts; set-ups ulvs, ulvs-nofp, ulvs-dr, ulvs-dr-fwd,
 * ulvs-tun, nft-dr).
 * --ulvs-args adds arguments to ulvsd's command line (e.g. '--workers 1'), for ulvs and ulvs-exact;
 * --ulvs-exact-args adds more for ulvs-exact only (default '--sysctl kernel_setup=0').
 * --base-ulvsd PATH adds the set-up ulvs-base: another checkout's built ulvsd.js with its own
 *   defaults (e.g. the commit before a change), paired against ulvs-exact in the report;
 *   --base-args adds arguments to its command line (e.g. '--sysctl kernel_setup=1', to compare
 *   the kernel set-up path of two builds: then read ulvs against ulvs-base in the JSON samples).
 * --prefix names the test bed's namespaces (default ulvs-<random>).
 * --perf records the whole machine (perf record -a -g) during each one-client HTTP measurement
 * and each 4-stream measurement, and writes the top symbols per set-up to
 * bench/results/<date>-perf-<setup>[-stream4]-r<round>.txt (the recording costs CPU, so figures
 * of a --perf run are not comparable with others).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { writeNginxConf } from './nginx-conf.js';
import { run, tryRun } from '../src/lab/shell.js';
import { LAB, TestBed } from '../src/lab/testbed.js';
import { SCRIPTS, waitFor } from '../src/lab/director-bed.js';
import { BalancerSetups } from './datapath-setups.js';
import { roundOrder } from './verdict.js';
import { describeMachine, type MachineInfo } from './machine-info.js';
import { callAdmin } from '../src/control/admin-client.js';
import { Resvg } from '@resvg/resvg-js';
import { accountingText, parsePerfChildren } from './perf-account.js';
import { barChartSvg, figuresOf, renderReport, SETUPS, type Setup } from './report.js';

/** the measurements, in the order they run (--tests picks some) */
const TESTS = ['stream1', 'stream4', 'http', 'http2', 'latency', 'udp'] as const;
const log = (s: string) => process.stderr.write(`${s}\n`);
const { values: opts } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, seconds: { type: 'string', default: '5' }, setups: { type: 'string' }, 'base-ulvsd': { type: 'string' }, 'base-args': { type: 'string', default: '' }, flows: { type: 'string', default: '1000000' }, perf: { type: 'boolean', default: false }, tests: { type: 'string', default: TESTS.join(',') }, 'ulvs-args': { type: 'string', default: '' }, 'ulvs-exact-args': { type: 'string', default: '--sysctl kernel_setup=0' }, prefix: { type: 'string' } } });
const RUN_TESTS = new Set(opts.tests!.split(','));
if (RUN_TESTS.has('asym')) {
  // the asymmetric test (bench/asym.ts) has its own bed and set-ups (bench/asym-setups.ts)
  if (RUN_TESTS.size > 1) throw new Error('--tests asym runs on its own');
  const { ASYM_SETUPS, runAsym } = await import('./asym.js');
  const setups = process.argv.some((a) => a.startsWith('--setups')) ? opts.setups!.split(',') : [...ASYM_SETUPS];
  await runAsym({ rounds: Number(opts.rounds), seconds: Number(opts.seconds), setups, resultsDir: join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bench', 'results'), ulvsArgs: opts['ulvs-args']!.split(' ').filter(Boolean), ...(opts.prefix && { prefix: opts.prefix }) });
  process.exit(0);
}
const unknownTests = [...RUN_TESTS].filter((t) => !(TESTS as readonly string[]).includes(t));
if (unknownTests.length) {
  log(`unknown --tests ${unknownTests.join(',')}; choose from ${TESTS.join(',')}`);
  process.exit(2);
}
const ROUNDS = Number(opts.rounds);
const SECS = Number(opts.seconds);
// ulvs-base runs only with --base-ulvsd (and by default then)
opts.setups ??= SETUPS.filter((s) => s !== 'ulvs-base' || opts['base-ulvsd']).join(',');
if (opts.setups.split(',').includes('ulvs-base') && !opts['base-ulvsd']) {
  log('--setups ulvs-base needs --base-ulvsd PATH (another checkout\'s dist/src/cli/ulvsd.js)');
  process.exit(2);
}
if (opts['base-ulvsd'] && !existsSync(opts['base-ulvsd'])) {
  log(`--base-ulvsd ${opts['base-ulvsd']}: no such file (build that checkout first: npm ci && npm run build)`);
  process.exit(2);
}
const RUN_SETUPS = opts.setups!.split(',').filter((x): x is Setup => (SETUPS as readonly string[]).includes(x));
const unknownSetups = opts.setups!.split(',').filter((x) => !(SETUPS as readonly string[]).includes(x));
if (unknownSetups.length || !(ROUNDS >= 1 && Number.isInteger(ROUNDS)) || !(SECS >= 1)) {
  log(`${unknownSetups.length ? `unknown --setups ${unknownSetups.join(',')}; choose from ${SETUPS.join(',')}` : '--rounds must be a whole number >= 1 and --seconds a number >= 1'}`);
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  log('the benchmark needs root (network namespaces, TUN, nftables)');
  process.exit(1);
}
const need = ['iperf3', 'wrk', 'nft', 'nginx', 'haproxy'].filter((t) => !['/usr/bin', '/usr/sbin'].some((d) => existsSync(join(d, t))));
if (need.length) {
  log(`installing ${need.join(' ')} ...`);
  run(['apt-get', 'install', '-y', '-qq', 'iperf3', 'wrk', 'nftables', 'nginx-light', 'haproxy']);
}
if (!existsSync('/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf')) run(['apt-get', 'install', '-y', '-qq', 'fonts-dejavu-core']); // chart labels

const V = LAB.VIP;
const N = 3;
const RS = Array.from({ length: N }, (_, i) => LAB.realServer(i));
const tmp = mkdtempSync(join(tmpdir(), 'ulvs-bench-'));
const bed = new TestBed({ realServers: N, clients: 2, ...(opts.prefix && { prefix: opts.prefix }) });
const procs: ChildProcess[] = [];
const setups = new BalancerSetups({ director: bed.director, realServers: RS, tmp, ulvsArgs: opts['ulvs-args']!.split(' ').filter(Boolean), exactArgs: opts['ulvs-exact-args']!.split(' ').filter(Boolean), ...(opts['base-ulvsd'] && { baseUlvsd: opts['base-ulvsd'], baseArgs: opts['base-args']!.split(' ').filter(Boolean) }) });

const nginxConf = (i: number): string => writeNginxConf(join(tmp, `rs${i}`), 8080);

/** Busy CPU seconds of the whole machine (all but idle and iowait) from /proc/stat. */
function machineBusy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq] = f as [number, number, number, number, number, number, number];
  return (user + nice + system + irq + softirq) / 100; // USER_HZ = 100; steal is another guest's
}
/**
 * Packets the director's kernel has queued to ulvsd's TUN so far (its tx_packets; NaN without
 * the device): per GB of a stream test, how much of the bulk traffic crossed user space instead
 * of the kernel fast path (report.ts BYPASS_PKTS_PER_GB).
 */
function tunPackets(): number {
  try {
    return Number(run(['ip', 'netns', 'exec', bed.director, 'cat', '/sys/class/net/ulvs0/statistics/tx_packets']).trim());
  } catch {
    return NaN;
  }
}
/** What the bench adds to a (new) director's links: the clients' route to the real servers (the
 *  no-balancer set-up) and the director's port range. */
function directorRoutes(): void {
  for (const c of bed.clients) run(['ip', '-n', c, 'route', 'replace', '192.0.2.0/24', 'via', LAB.DIRECTOR_PUBLIC]);
  tryRun(['ip', 'netns', 'exec', bed.director, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
}
const target = (s: Setup) => (s === 'none' ? RS[0]! : V);
const httpUrl = (s: Setup) => (s === 'none' ? `http://${RS[0]}:8080/` : `http://${V}/`);

/** Run iperf3 with -J and return its report; one retry after 2 s (a server still finishing a test refuses). */
function iperfJson<T>(argv: string[]): T {
  const once = (): T => {
    let out: string;
    try {
      out = run(argv);
    } catch (e) {
      out = (e as { stdout?: string }).stdout ?? '';
      if (!out.trim().startsWith('{')) throw e;
    }
    const j = JSON.parse(out) as T & { error?: string };
    if (j.error) throw new Error(`${argv.slice(4).join(' ')}: ${j.error}`);
    return j;
  };
  try {
    return once();
  } catch (e) {
    log(`    retrying once: ${(e as Error).message.split('\n')[0]}`);
    run(['sleep', '2']);
    return once();
  }
}
function iperf(s: Setup, parallel: number): { bps: number; bytes: number } {
  const j = iperfJson<{ end: { sum_received: { bits_per_second: number; bytes: number } } }>(['ip', 'netns', 'exec', bed.clients[0]!, 'iperf3', '-c', target(s), '-p', '5201', '-t', String(SECS), '-P', String(parallel), '-J']);
  return { bps: j.end.sum_received.bits_per_second, bytes: j.end.sum_received.bytes };
}
function udpRate(s: Setup): number {
  const j = iperfJson<{ end: { sum: { packets: number; lost_packets: number; seconds: number } } }>(['ip', 'netns', 'exec', bed.clients[0]!, 'iperf3', '-u', '-c', target(s), '-p', '5201', '-t', String(SECS), '-l', '64', '-b', '0', '-J']);
  const x = j.end.sum;
  return (x.packets - x.lost_packets) / x.seconds;
}
function wrkParse(out: string): { rate: number; requests: number } {
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const n = /(\d+) requests in/.exec(out);
  const errors = /Non-2xx|Socket errors: (.*)/.exec(out);
  if (errors) log(`    wrk: ${errors[0]}`);
  return { rate: m ? Number(m[1]) : 0, requests: n ? Number(n[1]) : 0 };
}
function wrkOne(s: Setup): { rate: number; requests: number } {
  return wrkParse(run(['ip', 'netns', 'exec', bed.clients[0]!, 'wrk', '-t', '2', '-c', '64', '-d', `${SECS}s`, '-H', 'Connection: close', httpUrl(s)]));
}
/**
 * WARM_S seconds of the one-client HTTP load, not measured, before the HTTP tests of every
 * set-up: a fresh ulvsd compiles its connection code (V8's optimizing compiler) during its first
 * seconds of short connections, which a 5-s measurement would otherwise include (2026-12-02,
 * 4 x 5 s of wrk on one ulvsd with kernel set-up: 11.6, 7.4, 6.9, 6.0 CPU us per connection in
 * ulvsd). The figures are steady state, for every set-up alike.
 */
const WARM_S = 3;
function warmUp(s: Setup): void {
  run(['ip', 'netns', 'exec', bed.clients[0]!, 'wrk', '-t', '2', '-c', '64', '-d', `${WARM_S}s`, '-H', 'Connection: close', httpUrl(s)]);
}
/** Open-loop keep-alive HTTP latency at 2,000 requests/s over 16 connections (src/lab/latency.ts). */
function latency(s: Setup): { p50_ms: number; p99_ms: number } {
  const host = s === 'none' ? RS[0]! : V;
  const port = s === 'none' ? '8080' : '80';
  const out = run(['ip', 'netns', 'exec', bed.clients[0]!, process.execPath, SCRIPTS.latency, '--host', host, '--port', port, '--rate', '2000', '--seconds', String(SECS), '--connections', '16']);
  const j = JSON.parse(out) as { p50_ms: number; p99_ms: number; errors: number; sent: number };
  if (j.errors) log(`    latency: ${j.errors} of ${j.sent} requests failed or unanswered`);
  return j;
}
/** VmRSS of a process in bytes. */
function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : NaN;
}
/** The tracked-connection count of the running ulvsd (admin API, its socket). */
async function ulvsConnections(): Promise<number> {
  return ((await callAdmin(setups.ulvsSocket, 'GET', '/v1/snapshot')).json as { connections: number }).connections;
}
/**
 * The daemon's memory with FLOWS tracked connections: a fresh ulvsd (capacity 2x FLOWS, so no
 * table-full drops), then FLOWS distinct UDP flows from src/lab/flood.ts in a client namespace;
 * resident memory before and after, and the connections it then tracks (UDP timeout 300 s).
 */
async function memoryWithFlows(): Promise<{ connections: number; rss_before: number; rss_after: number }> {
  await setups.startUlvs(['--max-conns', String(FLOWS * 2)]);
  try {
    const pid = setups.balancer!.pid!;
    const before = rssBytes(pid);
    log(`  memory: sending ${FLOWS} UDP flows ...`);
    const out = run(['ip', 'netns', 'exec', bed.clients[0]!, process.execPath, SCRIPTS.flood, '--dst', V, '--port', '5201', '--flows', String(FLOWS), '--rate', '50000']);
    log(`    flood: ${out.trim()}`);
    await new Promise((r) => setTimeout(r, 1000));
    const connections = await ulvsConnections();
    const after = rssBytes(pid);
    log(`  memory: ${connections} connections tracked, ulvsd RSS ${(before / 2 ** 20).toFixed(1)} MiB -> ${(after / 2 ** 20).toFixed(1)} MiB`);
    return { connections, rss_before: before, rss_after: after };
  } finally {
    await setups.stop('ulvs');
  }
}
/** wrk from both client namespaces at the same time; the sum of their rates. */
async function wrkTwo(s: Setup): Promise<number> {
  const outs = await Promise.all(
    bed.clients.map(
      (ns) =>
        new Promise<string>((resolve) => {
          const p = spawn('ip', ['netns', 'exec', ns, 'wrk', '-t', '1', '-c', '32', '-d', `${SECS}s`, '-H', 'Connection: close', httpUrl(s)], { stdio: ['ignore', 'pipe', 'pipe'] });
          let o = '';
          p.stdout!.on('data', (d: Buffer) => (o += d.toString()));
          p.on('exit', () => resolve(o));
        }),
    ),
  );
  return outs.map((o) => wrkParse(o).rate).reduce((a, b) => a + b, 0);
}

const perfReports: [string, string][] = [];
/** Run f (synchronous) under `perf record -a -g` for its duration; keep the report's top symbols,
 *  with CPU per unit of work (`per`: how many units f's result did, and the unit's name). */
async function profiled<T>(name: string, f: () => T, per: (v: T) => [number, string]): Promise<T> {
  const data = join(tmp, `${name}.perf.data`);
  const p = spawn('perf', ['record', '-a', '-g', '-F', '499', '-o', data, '--', 'sleep', String(SECS)], { stdio: 'ignore' });
  const st = spawn('perf', ['stat', '-a', '-x', ',', '-e', 'context-switches,cpu-migrations,syscalls:sys_enter_read,syscalls:sys_enter_write,syscalls:sys_enter_poll', '--', 'sleep', String(SECS)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stat = '';
  st.stderr!.on('data', (d: Buffer) => (stat += d.toString()));
  const done = Promise.all([new Promise((r) => p.once('exit', r)), new Promise((r) => st.once('exit', r))]);
  await new Promise((r) => setTimeout(r, 200));
  const v = f();
  await done;
  const report = (sort: string, limit: string) => run(['perf', 'report', '-i', data, '--no-children', '--sort', sort, '--stdio', '-g', 'none', '--percent-limit', limit]).replace(/^#.*\n/gm, '');
  const children = parsePerfChildren(run(['perf', 'report', '-i', data, '--children', '--sort', 'sym', '--stdio', '-g', 'none']));
  perfReports.push([name, `perf record -a -g -F 499 during ${name}, ${SECS} s\n\n${accountingText(children, ...per(v))}\nevents (perf stat -a, whole machine):\n${stat.split('\n').filter((l) => /^\d/.test(l)).map((l) => `  ${l.split(',')[2]}: ${l.split(',')[0]}`).join('\n')}\n\nby command:\n${report('comm', '1')}\nby command and binary (user space vs kernel):\n${report('comm,dso', '0.1')}\nby command and symbol:\n${report('comm,sym', '0.4')}`]);
  if (process.env.ULVS_PERF_KEEP) run(['cp', data, process.env.ULVS_PERF_KEEP]);
  return v;
}

/** Run f and return its result with the machine's and the balancer's CPU seconds it took. */
async function metered<T>(f: () => T | Promise<T>): Promise<{ v: T; machine: number; own: number; wait: number }> {
  const m0 = machineBusy();
  const b0 = setups.balancerCpu();
  const w0 = setups.balancerRunQueueWait();
  const v = await f();
  return { v, machine: machineBusy() - m0, own: setups.balancerCpu() - b0, wait: setups.balancerRunQueueWait() - w0 };
}

/** "metric/set-up" -> one figure per round (index round - 1; null where a round has none) */
const samples = new Map<string, (number | null)[]>();
let round = 0;
const push = (setup: Setup, metric: string, v: number) => {
  const k = `${metric}/${setup}`;
  const xs = samples.get(k) ?? [];
  while (xs.length < round - 1) xs.push(null);
  xs[round - 1] = v;
  samples.set(k, xs);
};

const FLOWS = Number(opts.flows);
let memory: Awaited<ReturnType<typeof memoryWithFlows>> | null = null;
const orders: Setup[][] = [];
let machine: MachineInfo | undefined;
let exactNote: string | null = null;
const t0 = Date.now();
let tornDown = false;
/** Kill what runs and delete the test bed (the namespaces take ulvsd's routing and nft's table with them). */
function teardown(): void {
  if (tornDown) return;
  tornDown = true;
  for (const p of [...procs, ...(setups.balancer ? [setups.balancer] : [])]) p.kill('SIGKILL');
  bed.down();
  rmSync(tmp, { recursive: true, force: true });
}
// Interrupted (Ctrl-C, kill): the signal is handled once the measurement running now returns.
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(sig, () => {
    log(`${sig}: removing the test bed`);
    teardown();
    process.exit(130);
  });
try {
  log(`building the test bed; ${ROUNDS} rounds x ${RUN_SETUPS.length} set-ups (${RUN_SETUPS.join(', ')}), ${SECS} s per measurement`);
  machine = await describeMachine();
  log(`machine: ${machine.cpu}, kernel ${machine.kernel}, ${Math.round(machine.busyBefore * 100)} % busy before the run`);
  bed.up();
  for (const c of bed.clients) {
    tryRun(['ip', 'netns', 'exec', c, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
    tryRun(['ip', 'netns', 'exec', c, 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
  }
  directorRoutes();
  for (const [i, ns] of bed.realServers.entries()) {
    const ip = spawn('ip', ['netns', 'exec', ns, 'iperf3', '-s', '-p', '5201', '--forceflush'], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(ip);
    await waitFor(ip, /Server listening/);
    procs.push(spawn('ip', ['netns', 'exec', ns, 'nginx', '-c', nginxConf(i + 1)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  }
  await new Promise((r) => setTimeout(r, 500));
  if (RUN_SETUPS.includes('ulvs-exact')) exactNote = setups.probeExact();
  for (round = 1; round <= ROUNDS; round++) {
    const order = roundOrder(RUN_SETUPS, round - 1);
    orders.push(order);
    log(`round ${round}/${ROUNDS}: ${order.join(', ')}`);
    for (const s of order) {
      // every set-up in a director namespace of its own (testbed.ts renewDirector): one where
      // ulvsd once added policy rules walks rules on every lookup from then on, nft included
      bed.renewDirector();
      directorRoutes();
      await setups.start(s);
      try {
        if (RUN_TESTS.has('stream1')) {
          const tun0 = tunPackets();
          const one = await metered(() => iperf(s, 1));
          if (s.startsWith('ulvs')) push(s, 'tun_pkts_per_gb', (tunPackets() - tun0) / (one.v.bytes / 1e9));
          push(s, 'single_stream_bps', one.v.bps);
          push(s, 'cpu_s_per_gb', one.machine / (one.v.bytes / 1e9));
          if (s !== 'none' && s !== 'nft') push(s, 'balancer_cpu_s_per_gb', one.own / (one.v.bytes / 1e9));
        }
        if (RUN_TESTS.has('stream4')) {
          const tun0 = tunPackets();
          const four = opts.perf ? await profiled(`${s}-stream4-r${round}`, () => iperf(s, 4), (v) => [v.bytes / 1e6, 'MB']) : iperf(s, 4);
          push(s, 'four_streams_bps', four.bps);
          if (s.startsWith('ulvs')) push(s, 'tun_pkts_per_gb_4_streams', (tunPackets() - tun0) / (four.bytes / 1e9));
        }
        if (RUN_TESTS.has('http') || RUN_TESTS.has('http2')) warmUp(s);
        if (RUN_TESTS.has('http')) {
          const http = await metered(() => (opts.perf ? profiled(`${s}-r${round}`, () => wrkOne(s), (v) => [v.requests, 'connection']) : wrkOne(s)));
          push(s, 'http_conns_per_s', http.v.rate);
          push(s, 'cpu_s_per_1000_conns', http.machine / (http.v.requests / 1000));
          if (s !== 'none' && s !== 'nft') push(s, 'balancer_cpu_s_per_1000_conns', http.own / (http.v.requests / 1000));
          if (s !== 'none' && s !== 'nft') push(s, 'balancer_runq_wait_s_per_1000_conns', http.wait / (http.v.requests / 1000));
        }
        if (RUN_TESTS.has('http2')) push(s, 'http_conns_per_s_2_clients', await wrkTwo(s));
        if (RUN_TESTS.has('latency')) {
          const lat = latency(s);
          push(s, 'latency_p50_ms', lat.p50_ms);
          push(s, 'latency_p99_ms', lat.p99_ms);
        }
        if (RUN_TESTS.has('udp') && s !== 'haproxy') push(s, 'udp_64b_pps', udpRate(s));
        const g = (m: string) => samples.get(`${m}/${s}`)?.[round - 1] ?? undefined;
        const f = (m: string, scale: number, unit: string, digits = 0) => (g(m) === undefined ? null : `${(g(m)! / scale).toFixed(digits)} ${unit}`);
        const parts = [
          ['1 stream', f('single_stream_bps', 1e9, 'Gbit/s', 2)],
          ['4 streams', f('four_streams_bps', 1e9, 'Gbit/s', 2)],
          ['HTTP', f('http_conns_per_s', 1, 'conn/s')],
          ['HTTP 2 clients', f('http_conns_per_s_2_clients', 1, 'conn/s')],
          ['p50', f('latency_p50_ms', 1, 'ms', 2)],
          ['p99', f('latency_p99_ms', 1, 'ms', 2)],
          ['UDP', f('udp_64b_pps', 1, 'pkt/s')],
        ].filter(([, v]) => v !== null);
        log(`  round ${round}/${ROUNDS} ${s.padEnd(10)} ${parts.map(([k, v]) => `${k} ${v}`).join(', ')}  [${Math.round((Date.now() - t0) / 1000)} s]`);
      } finally {
        await setups.stop(s);
      }
      await new Promise((r) => setTimeout(r, 1000)); // let TIME_WAITs and conntrack settle a little
    }
  }
  if (FLOWS > 0) memory = await memoryWithFlows();
} finally {
  await setups.stopBalancer(); // nft's table and HAProxy's address go with the director's namespace
  teardown();
}

// a set-up that had no figure in the last rounds: its samples are as long as the rounds all the same
for (const xs of samples.values()) while (xs.length < ROUNDS) xs.push(null);
const figures = figuresOf(Object.fromEntries(samples));
const date = new Date().toISOString();
const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const resultsDir = join(here, '..', '..', 'bench', 'results');
mkdirSync(resultsDir, { recursive: true });
const stem = join(resultsDir, date.slice(0, 19).replace(/:/g, '-'));
const base = stem.slice(resultsDir.length + 1);
const { markdown, summary } = renderReport(figures, { date, node: process.version, rounds: ROUNDS, seconds: SECS, samples: Object.fromEntries(samples), orders, ...(exactNote && { exactNote }), ulvsWarnings: [...setups.ulvsWarnings], ...(machine && { machine }), memory }, `${base}-`);
writeFileSync(`${stem}.md`, markdown);
for (const [metric, f] of Object.entries(figures)) {
  const png = new Resvg(barChartSvg(metric, f), { font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } }).render().asPng();
  writeFileSync(`${stem}-${metric}.png`, png);
}
for (const [name, text] of perfReports) writeFileSync(`${stem}-perf-${name}.txt`, text);
writeFileSync(`${stem}.json`, `${JSON.stringify({ ...summary, samples: Object.fromEntries(samples) }, null, 1)}\n`);
log(`wrote ${stem}.md, .json and ${Object.keys(figures).length} charts`);
console.log(JSON.stringify(summary));
