/**
 * One flood measurement (bench/flood.ts runs it for every shape x set-up): in a fresh bed with
 * one balancer (bench/flood-setups.ts), from the legitimate client an established stream
 * (iperf3 -R: real server -> client through the balancer, 0.5 s intervals) and new connections
 * at a fixed rate (src/lab/new-conns.ts) run for pre + flood + post seconds; `pre` seconds in,
 * the flooding client sends SYNs with spoofed sources to VIP:80 for `flood` seconds
 * (src/lab/flood.ts, unpaced unless a rate is given). Meanwhile the director's memory is sampled
 * every 250 ms: the balancer's resident memory, the director namespace's conntrack count and,
 * for ulvs, its connection count (admin API, once a second).
 * Returns the raw timelines and the figures (bench/flood-metrics.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { callAdmin } from '../src/control/admin-client.js';
import { SCRIPTS } from '../src/lab/director-bed.js';
import { run } from '../src/lab/shell.js';
import { LAB } from '../src/lab/testbed.js';
import { FLOOD_CLIENT, FloodBed, LEGIT_CLIENT, SPOOFED_BASE, type FloodSetup, type UlvsVariant } from './flood-setups.js';
import { legit, normalLatencyMs, recoveryMs, streamRatio, type LegitFigures, type Probe, type StreamFigures, type StreamInterval } from './flood-metrics.js';

export interface FloodShape {
  name: string;
  /** spoofed source addresses (a power of two up to 128) and distinct (address, port) pairs */
  addrs: number;
  sources: number;
}
export const SHAPES: Record<string, FloodShape> = {
  few: { name: 'few', addrs: 16, sources: 16 },
  many: { name: 'many', addrs: 128, sources: 1_000_000 },
};

export interface FloodParams {
  preS: number;
  floodS: number;
  postS: number;
  /** go on flooding past floodS until every source of the shape was used once, up to maxFloodS */
  coverSources: boolean;
  maxFloodS: number;
  /** the generator: 0 = unpaced; io write|uring; processes */
  floodRate: number;
  floodIo: 'write' | 'uring';
  floodProcs: number;
  /** legitimate new connections per second, and each one's timeout (ms) */
  probeRate: number;
  probeTimeoutMs: number;
  /** the stream's pace in Mbit/s (0: as fast as it goes) */
  streamMbps: number;
}

/**
 * Called with the bed when the flood starts (after the generator exits: when it has ended);
 * the smoke test's control breaks the legitimate client's path with them. The run waits for
 * `floodEnded` while the stream and the probes go on.
 */
export interface FloodHooks {
  floodStarted?: (fb: FloodBed) => void;
  floodEnded?: (fb: FloodBed) => Promise<void>;
}

export interface FloodGenerator {
  sent: number;
  seconds: number;
  pps: number;
  write_errors: number;
  sources: number;
  start_ms: number;
  end_ms: number;
}
export interface FloodMeasurement {
  setup: FloodSetup;
  shape: string;
  flood: FloodGenerator;
  legit: LegitFigures;
  /** the probes started after the flood (the recovery window) */
  legit_after: LegitFigures;
  stream: StreamFigures;
  normal_ms: number;
  recovery_ms: number | null;
  memory: { rss_before: number; rss_peak: number; rss_after: number; conntrack_peak: number; ulvs_conns_peak: number };
  /** ulvs only, at the end: where SYNs went — the engine's counters (GET /v1/counters) and the
   *  packets the kernel dropped at its TUN (tx dropped of ulvs0: a full queue, before the engine) */
  ulvs?: { engine: Record<string, number>; tun_tx_dropped: number };
  raw: { probes: Probe[]; intervals: StreamInterval[]; stream_start: number };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Collect a child's stdout; resolve with it at exit (reject on a non-zero exit unless `anyExit`). */
function output(p: ChildProcess, what: string, anyExit = false): Promise<string> {
  let out = '';
  let err = '';
  p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => p.once('exit', (code) => (code === 0 || (anyExit && out) ? resolve(out) : reject(new Error(`${what} exited ${code}: ${err.slice(-500) || out.slice(-500)}`)))));
}

/** JSON, or {} when the text is not (a stream that failed before its report) */
function parseOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

/** The director namespace's conntrack count every 250 ms, read by a shell loop inside it. */
function conntrackSampler(director: string, onValue: (n: number) => void): ChildProcess {
  const loop = 'while :; do cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo 0; sleep 0.25; done';
  const p = spawn('ip', ['netns', 'exec', director, 'sh', '-c', loop], { stdio: ['ignore', 'pipe', 'ignore'] });
  let buf = '';
  p.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    const lines = buf.split('\n');
    buf = lines.pop()!;
    for (const l of lines) if (/^\d+$/.test(l)) onValue(Number(l));
  });
  return p;
}

async function ulvsCounters(fb: FloodBed): Promise<{ engine: Record<string, number>; tun_tx_dropped: number }> {
  const engine = (await callAdmin(fb.socket, 'GET', '/v1/counters')).json.engine as Record<string, number>;
  const link = JSON.parse(run(['ip', '-n', fb.director, '-s', '-j', 'link', 'show', 'dev', 'ulvs0'])) as { stats64: { tx: { dropped: number } } }[];
  return { engine, tun_tx_dropped: link[0]?.stats64.tx.dropped ?? NaN };
}

export async function measureFlood(setup: FloodSetup, shape: FloodShape, p: FloodParams, bedPrefix: string, dir: string, variant: UlvsVariant, log: (s: string) => void, hooks: FloodHooks = {}): Promise<FloodMeasurement> {
  const fb = await new FloodBed(setup, bedPrefix, dir).open(variant);
  const side: ChildProcess[] = [];
  try {
    const legitNs = fb.client(LEGIT_CLIENT);
    // the stream and the probes run until stopped (SIGINT) postS after the flood's end
    const total = p.preS + Math.max(p.floodS, p.maxFloodS) + p.postS + 10;
    const mem = { rss_before: fb.balancerRss(), rss_peak: 0, rss_after: NaN, conntrack_peak: 0, ulvs_conns_peak: 0 };
    const ct = conntrackSampler(fb.director, (n) => (mem.conntrack_peak = Math.max(mem.conntrack_peak, n)));
    side.push(ct);
    let sampling = true;
    const rssLoop = (async () => {
      for (let i = 0; sampling; i++) {
        const r = fb.balancerRss();
        if (r > mem.rss_peak) mem.rss_peak = r;
        if (setup === 'ulvs' && i % 4 === 0) {
          try {
            const n = (await callAdmin(fb.socket, 'GET', '/v1/snapshot')).json.connections as number;
            mem.ulvs_conns_peak = Math.max(mem.ulvs_conns_peak, n);
          } catch {
            /* busy: the next sample */
          }
        }
        await sleep(250);
      }
    })();

    const streamStart = Date.now();
    const iperf = spawn('ip', ['netns', 'exec', legitNs, 'iperf3', '-c', LAB.VIP, '-p', '5201', '-R', '-t', String(total), '-i', '0.5', '-J', ...(p.streamMbps > 0 ? ['-b', `${p.streamMbps}M`] : [])], { stdio: ['ignore', 'pipe', 'pipe'] });
    side.push(iperf);
    const iperfOut = output(iperf, 'iperf3', true);
    const prober = spawn('ip', ['netns', 'exec', legitNs, process.execPath, SCRIPTS.newConns, '--host', LAB.VIP, '--port', '80', '--rate', String(p.probeRate), '--seconds', String(total), '--timeout', String(p.probeTimeoutMs)], { stdio: ['ignore', 'pipe', 'pipe'] });
    side.push(prober);
    const proberOut = output(prober, 'new-conns');
    await sleep(p.preS * 1000);

    log(`    ${setup} ${shape.name}: flooding for ${p.floodS} s${p.coverSources ? ` or until ${shape.sources} sources were used (at most ${p.maxFloodS} s)` : ''}`);
    const gen = spawn('ip', ['netns', 'exec', fb.client(FLOOD_CLIENT), process.execPath, SCRIPTS.flood, '--proto', 'tcp', '--dst', LAB.VIP, '--port', '80', '--rate', String(p.floodRate), '--seconds', String(p.floodS), '--addrs', String(shape.addrs), '--sources', String(shape.sources), '--src-base', SPOOFED_BASE, '--io', p.floodIo, '--procs', String(p.floodProcs), '--min-flows', String(p.coverSources ? shape.sources : 0), '--max-seconds', String(p.maxFloodS)], { stdio: ['ignore', 'pipe', 'pipe'] });
    side.push(gen);
    hooks.floodStarted?.(fb);
    const flood = JSON.parse(await output(gen, 'flood')) as FloodGenerator;
    await hooks.floodEnded?.(fb);
    await sleep(Math.max(0, flood.end_ms + p.postS * 1000 - Date.now()));
    iperf.kill('SIGINT');
    prober.kill('SIGINT');
    const [probesText, iperfText] = await Promise.all([proberOut, iperfOut.catch((e: Error) => (log(`    ${e.message}`), '{}'))]);
    sampling = false;
    await rssLoop;
    mem.rss_after = fb.balancerRss();
    const ulvs = setup === 'ulvs' ? await ulvsCounters(fb) : undefined;

    const probes = (JSON.parse(probesText) as { probes: Probe[] }).probes;
    const ivs = (parseOr(iperfText) as { intervals?: { sum: { start: number; end: number; bits_per_second: number } }[] }).intervals ?? [];
    const intervals = ivs.map(({ sum }) => ({ start: streamStart + sum.start * 1000, end: streamStart + sum.end * 1000, bps: sum.bits_per_second }));
    const during = { start: flood.start_ms, end: flood.end_ms };
    const normal = normalLatencyMs(probes, flood.start_ms);
    return {
      setup,
      shape: shape.name,
      flood,
      legit: legit(probes, during, normal),
      legit_after: legit(probes, { start: flood.end_ms, end: Infinity }, normal),
      stream: streamRatio(intervals, streamStart, during),
      normal_ms: normal,
      recovery_ms: recoveryMs(probes, flood.end_ms, normal),
      memory: mem,
      ...(ulvs && { ulvs }),
      raw: { probes, intervals, stream_start: streamStart },
    };
  } finally {
    for (const c of side) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    await fb.close();
  }
}
