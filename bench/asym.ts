/**
 * The asymmetric benchmark (`npm run bench -- --tests asym`): small requests, large replies,
 * through ulvs by VS/NAT, VS/DR and VS/TUN and through the kernel's nearest DR peer (nftables
 * netdev `fwd`), in one run on one test bed (bench/asym-bed.ts: 1 client, director, 3 real
 * servers running nginx, which serves a 1 MiB body at /1m). The set-ups are described in
 * bench/asym-setups.ts; each is started fresh for each measurement and stopped after it.
 *
 * Measurement (each --seconds): wrk, 2 threads, 64 connections, `Connection: close` (one new
 * connection per request), GET /1m (a request of about 60 bytes, a reply of 1 MiB + headers).
 * Rounds alternate the order: odd rounds as given, even rounds reversed, so a drift of the
 * machine during a round does not favour one end of the list. Per round and set-up:
 *   - client throughput (Gbit/s, wrk's bytes read) and requests/s;
 *   - the director's process CPU (ulvsd: utime + stime of all its threads; nft-dr has no
 *     process: 0) per GB and per 1,000 connections. The director's kernel work cannot be timed
 *     apart here (softirq time is charged to whichever task runs, in any namespace; the kernel
 *     is built without IRQ time accounting; tracing programs, which could time the director's
 *     receive calls, are refused on this machine), so it is counted instead: packets (skbs)
 *     the director received on its veth ports, per GB and per connection;
 *   - busy CPU of the whole machine (/proc/stat: client, director, servers, all on the same
 *     cores, and whatever else runs) per GB and per 1,000 connections;
 *   - the share of the client's bytes that came by the direct-return links, and the set-up's
 *     own counters, checked by bench/asym-path.ts: a round that did not take the set-up's path
 *     (or failed in any other way) is reported as failed and left out; the other set-ups go on.
 * Medians of the successful rounds. Writes bench/results/<date>-asym.md and .json; last line of
 * the output: JSON with the figures, the ratios against ulvs NAT and against nft-dr, failures.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LAB } from '../src/lab/testbed.js';
import { AsymBed, REPLY_BYTES } from './asym-bed.js';
import { pathProblem } from './asym-path.js';
import { asymFigures, asymMarkdown, asymRatios, asymSummary, type AsymMetric, type AsymResult } from './asym-report.js';
import { ASYM_SETUPS, removeNftDr, rsSetup, startSetup, type AsymSetup, type PathCounters, type RunningSetup } from './asym-setups.js';

export { ASYM_SETUPS } from './asym-setups.js';
const V = LAB.VIP;
/** what wrk sends (its request line, Host, our header) */
const req = `GET /1m HTTP/1.1\r\nHost: ${V}\r\nConnection: close\r\n\r\n`;

export interface AsymOptions {
  rounds: number;
  seconds: number;
  setups: string[];
  resultsDir: string;
  ulvsArgs: string[];
  /** wrk's connections (default 64) */
  connections?: number;
  /** the bed's name prefix (default: ulvs-<random>) */
  prefix?: string;
  /** called after a set-up has started, before its load (tests use it to break a path on purpose) */
  beforeLoad?: (setup: AsymSetup, bed: AsymBed) => void;
  /** write progress to stderr and the report to stdout (default true; tests turn it off) */
  print?: boolean;
}

/** Busy CPU seconds of the whole machine so far: user nice system irq softirq (USER_HZ 100). */
function busy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) / 100;
}

/** wrk's "N requests in Xs, Y MB read" as requests and bytes. */
export function parseWrk(out: string): { requests: number; bytes: number; seconds: number; errors: string | null } {
  const m = /(\d+) requests in ([\d.]+)(m?s|m), ([\d.]+)([KMGT]?B) read/.exec(out);
  if (!m) throw new Error(`wrk output not understood: ${out}`);
  const unit = { B: 1, KB: 2 ** 10, MB: 2 ** 20, GB: 2 ** 30, TB: 2 ** 40 }[m[5]!]!;
  const secs = m[3] === 'ms' ? Number(m[2]) / 1000 : m[3] === 'm' ? Number(m[2]) * 60 : Number(m[2]);
  const err = /Non-2xx.*|Socket errors: .*/.exec(out);
  return { requests: Number(m[1]), bytes: Number(m[4]) * unit, seconds: secs, errors: err ? err[0] : null };
}

/** seconds wrk may overrun its duration before it is taken as stuck */
const WRK_GRACE_S = 10;

/**
 * Run wrk in the client namespace without blocking the event loop (ulvsd's pipes keep
 * draining). wrk checks the end of its duration only when a request completes, so over a dead
 * path it never stops: it is killed WRK_GRACE_S after its duration and that is an error.
 */
function wrk(bed: AsymBed, seconds: number, connections: number): Promise<string> {
  const p = spawn('ip', ['netns', 'exec', bed.client, 'wrk', '-t', '2', '-c', String(connections), '-d', `${seconds}s`, '--timeout', '5s', '-H', 'Connection: close', `http://${V}/1m`], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  let stuck = false;
  const guard = setTimeout(() => {
    stuck = true;
    p.kill('SIGKILL');
  }, (seconds + WRK_GRACE_S) * 1000);
  return new Promise((resolve, reject) => {
    p.on('error', reject);
    p.on('close', (code) => {
      clearTimeout(guard);
      if (code === 0) resolve(out);
      else if (stuck) reject(new Error(`no bytes moved: wrk had not stopped ${WRK_GRACE_S} s after its ${seconds} s (it stops when a request completes), killed`));
      else reject(new Error(`no bytes moved: wrk exited ${code}: ${out.trim()}`));
    });
  });
}

export async function runAsym(o: AsymOptions): Promise<{ result: AsymResult; summary: ReturnType<typeof asymSummary> }> {
  const unknown = o.setups.filter((s) => !(ASYM_SETUPS as readonly string[]).includes(s));
  if (unknown.length || !o.setups.length) throw new Error(`--tests asym: unknown set-up ${unknown.join(',') || '(none given)'}; choose --setups from ${ASYM_SETUPS.join(',')}`);
  const setups = o.setups as AsymSetup[];
  const log = (s: string) => o.print !== false && process.stderr.write(`${s}\n`);
  const bed = new AsymBed(o.prefix);
  const r: AsymResult = { date: new Date().toISOString(), rounds: o.rounds, seconds: o.seconds, requestBytes: Buffer.byteLength(req), replyBytes: REPLY_BYTES, setups, samples: {}, path: {}, failures: {}, notes: [] };
  const push = (s: AsymSetup, k: AsymMetric, v: number) => ((r.samples[k] ??= {})[s] ??= []).push(v);
  let current: RunningSetup | null = null;
  /** leave nothing behind: the set-up's own undo, then the records rs-setup keeps outside the namespaces */
  const cleanUp = async () => {
    await current?.stop();
    current = null;
    removeNftDr(bed);
    for (const ns of bed.realServers) {
      try {
        rsSetup(bed, ns, ['--remove']);
      } catch {
        /* no namespace or no record */
      }
    }
    bed.down();
  };
  const onSignal = () => {
    log('interrupted: removing the test bed');
    void cleanUp().finally(() => process.exit(130));
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  const t0 = Date.now();
  try {
    log(`asym: building the test bed (${bed.prefix}-*); ${o.rounds} rounds x ${setups.join(', ')}, ${o.seconds} s each`);
    for (const f of await bed.up()) r.notes.push(`deleted ${f}, a stale rs-setup record for the inode number of one of this bed's new namespaces`);
    for (let round = 1; round <= o.rounds; round++) {
      const order = round % 2 === 1 ? setups : [...setups].reverse();
      for (const s of order) {
        try {
          current = await startSetup(s, bed, o.ulvsArgs);
          if (s === 'ulvs-tun' && !r.notes.some((n) => n.startsWith('ulvs-tun'))) r.notes.push(`ulvs-tun: the real servers decapsulate with ${/decapsulation by ulvs eBPF/.test(rsSetup(bed, bed.realServers[0]!, ['--status'])) ? "ulvs's eBPF program (rs-setup's fallback: this kernel has no ipip module)" : 'the kernel (tunl0)'}`);
          o.beforeLoad?.(s, bed);
          const r0 = bed.returnedBytes();
          const p0 = bed.directorPackets();
          const m0 = busy();
          const c0 = current.processCpu();
          const w = parseWrk(await wrk(bed, o.seconds, o.connections ?? 64));
          const machine = busy() - m0;
          const own = current.processCpu() - c0;
          const pkts = bed.directorPackets() - p0;
          const directShare = w.bytes > 0 ? (bed.returnedBytes() - r0) / w.bytes : 0;
          const counters: PathCounters = await current.counters();
          if (w.errors) log(`    wrk: ${w.errors}`);
          if (/Non-2xx/.test(w.errors ?? '')) throw new Error(`the servers did not answer 200: ${w.errors}`);
          const problem = pathProblem(s, { requests: w.requests, bytes: w.bytes, directShare }, counters);
          if (problem) throw new Error(`not the claimed path: ${problem}`);
          const gb = w.bytes / 1e9;
          const kconns = w.requests / 1000;
          push(s, 'gbps', (w.bytes * 8) / w.seconds / 1e9);
          push(s, 'requests_per_s', w.requests / w.seconds);
          push(s, 'director_cpu_s_per_gb', own / gb);
          push(s, 'director_cpu_s_per_1000_conns', own / kconns);
          push(s, 'director_pkts_per_gb', pkts / gb);
          push(s, 'director_pkts_per_conn', pkts / w.requests);
          push(s, 'machine_cpu_s_per_gb', machine / gb);
          push(s, 'machine_cpu_s_per_1000_conns', machine / kconns);
          push(s, 'direct_return_share', directShare);
          (r.path[s] ??= []).push({ ...counters });
          log(`  round ${round}/${o.rounds} ${s.padEnd(11)} ${((w.bytes * 8) / w.seconds / 1e9).toFixed(2)} Gbit/s, ${w.requests} conns, director ${(own / gb).toFixed(4)} s/GB ${(pkts / gb).toFixed(0)} pkt/GB, machine ${(machine / gb).toFixed(3)} s/GB  [${Math.round((Date.now() - t0) / 1000)} s]`);
        } catch (e) {
          const msg = (e as Error).message.split('\n')[0]!.slice(0, 300);
          (r.failures[s] ??= []).push(`round ${round}: ${msg}`);
          log(`  round ${round}/${o.rounds} ${s.padEnd(11)} FAILED: ${msg}`);
        } finally {
          await current?.stop();
          current = null;
        }
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
  } finally {
    await cleanUp();
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal);
  }

  const figures = asymFigures(r);
  const ratios = asymRatios(r, figures);
  const md = asymMarkdown(r, figures, ratios);
  const summary = asymSummary(r, figures, ratios);
  mkdirSync(o.resultsDir, { recursive: true });
  const stem = join(o.resultsDir, `${r.date.slice(0, 19).replace(/:/g, '-')}-asym`);
  writeFileSync(`${stem}.md`, `${md}\nSamples: \`${JSON.stringify(r.samples)}\`\n`);
  writeFileSync(`${stem}.json`, `${JSON.stringify({ ...summary, samples: r.samples, path: r.path }, null, 1)}\n`);
  log(`wrote ${stem}.md and .json`);
  if (o.print !== false) {
    process.stdout.write(`${md}\n`);
    console.log(JSON.stringify(summary));
  }
  return { result: r, summary };
}
