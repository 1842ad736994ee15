/**
 * The restart tests' bed (test/integration/restart*.test.ts): a director with three real
 * servers running the echo server of src/lab/stream.ts on PORT behind one rr service, a stream
 * client driven by signals, and ulvsd stopped and started again. Test-only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { DirectorBed, SCRIPTS, waitFor } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { run } from '../../src/lab/shell.js';

export const PORT = 9000;
export const rulesFor = (method: '-m' | '-g') => `-A -t ${LAB.VIP}:${PORT} -s rr\n${[0, 1, 2].map((i) => `-a -t ${LAB.VIP}:${PORT} -r ${LAB.realServer(i)}:${PORT} ${method}\n`).join('')}`;

/** A real server's DR set-up (as dr.test.ts): the VIP on lo (/32), ARP for it neither answered nor used. */
export function drRealServer(ns: string): void {
  for (const k of ['all', 'eth0', 'lo']) {
    run(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.conf.${k}.arp_ignore=1`]);
    run(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.conf.${k}.arp_announce=2`]);
  }
  run(['ip', '-n', ns, 'addr', 'add', `${LAB.VIP}/32`, 'dev', 'lo']);
}

export type Line = Record<string, unknown> & { event: string };

/** A stream.js client in a client namespace, driven by signals (see src/lab/stream.ts). */
export class StreamClient {
  readonly p: ChildProcess;
  readonly lines: Line[] = [];
  #buf = '';
  /** `port`: the service's port on the VIP (default PORT) */
  constructor(ns: string, conns: number, extra: string[] = [], port = PORT) {
    this.p = spawn('ip', ['netns', 'exec', ns, process.execPath, SCRIPTS.stream, '--connect', `${LAB.VIP}:${port}`, '--conns', String(conns), ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.p.stdout!.on('data', (d: Buffer) => {
      this.#buf += d.toString();
      let i;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        this.lines.push(JSON.parse(this.#buf.slice(0, i)) as Line);
        this.#buf = this.#buf.slice(i + 1);
      }
    });
  }
  async next(event: string, signal: NodeJS.Signals | null, ms = 60_000): Promise<Line> {
    const seen = this.lines.length;
    if (signal) this.p.kill(signal);
    const t0 = Date.now();
    for (;;) {
      const l = this.lines.slice(seen).find((x) => x.event === event) ?? (signal === null ? this.lines.find((x) => x.event === event) : undefined);
      if (l) return l;
      if (Date.now() - t0 > ms) throw new Error(`stream client: no ${event} within ${ms} ms`);
      await sleep(50);
    }
  }
  status(): Promise<Line & { perConn: number[]; maxStallMs: number[]; errors: number }> {
    return this.next('status', 'SIGUSR1') as never;
  }
  /** Wait until every connection has received more than in `from` (at most `ms`); returns how many did. */
  async progressed(from: number[], ms: number): Promise<{ n: number; maxStallMs: number }> {
    const t0 = Date.now();
    let stall = 0;
    for (;;) {
      const s = await this.status();
      stall = Math.max(stall, ...s.maxStallMs);
      const n = s.perConn.filter((r, i) => r > from[i]!).length;
      if (n === from.length || Date.now() - t0 > ms) return { n, maxStallMs: stall };
      await sleep(300);
    }
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Bed {
  bed: DirectorBed;
  procs: ChildProcess[];
}

export interface BedOptions {
  /** the real servers' forwarding method in rulesFor (default NAT) */
  method?: '-m' | '-g';
  /** namespaces and links are named `<prefix>-<random>` (default h7) */
  prefix?: string;
  /** rules (ipvsadm -S) instead of rulesFor(method) */
  rules?: string;
  /** or a keepalived.conf (ulvsd --keepalived) */
  keepalived?: string;
  /** the first ulvsd started is that build's (an upgrade from it) */
  ulvsdScript?: string;
}

/** The bed, ulvsd started with `ulvsdArgs` (an array a test may change before a restart). */
export async function startBed(ulvsdArgs: string[], o: BedOptions = {}): Promise<Bed> {
  const source = o.keepalived !== undefined ? { keepalived: o.keepalived } : { rules: o.rules ?? rulesFor(o.method ?? '-m') };
  const bed = new DirectorBed({ ...source, realServers: 3, httpPort: 8080, ulvsdArgs, prefix: `${o.prefix ?? 'h7'}-${randomBytes(2).toString('hex')}`, ...(o.ulvsdScript && { ulvsdScript: o.ulvsdScript }) });
  await bed.start();
  const procs: ChildProcess[] = [];
  try {
    if (o.method === '-g') for (const ns of bed.bed.realServers) drRealServer(ns);
    for (const ns of bed.bed.realServers) {
      const p = spawn('ip', ['netns', 'exec', ns, process.execPath, SCRIPTS.stream, '--serve', String(PORT)], { stdio: ['ignore', 'pipe', 'pipe'] });
      procs.push(p);
      await waitFor(p, /ready/);
    }
  } catch (e) {
    await stopBed({ bed, procs });
    throw e;
  }
  return { bed, procs };
}

export async function stopBed(b: Bed): Promise<void> {
  for (const p of b.procs) p.kill('SIGKILL');
  await b.bed.stop();
}

/** Stop ulvsd with `signal`, start it again; returns the timings (ms). */
export async function restart(bed: DirectorBed, signal: NodeJS.Signals, script?: string): Promise<{ exitMs: number; gapMs: number }> {
  const t0 = performance.now();
  await bed.stopDirector(signal);
  const t1 = performance.now();
  await bed.startDirector(script);
  return { exitMs: Math.round(t1 - t0), gapMs: Math.round(performance.now() - t0) };
}


/** How many of `n` new streaming connections make progress (the director serves new clients). */
export async function newConnectionsServed(bed: DirectorBed, n = 5): Promise<number> {
  const fresh = new StreamClient(bed.bed.clients[0]!, n);
  try {
    await fresh.next('established', null);
    return (await fresh.progressed((await fresh.status()).perConn, 10_000)).n;
  } finally {
    fresh.p.kill('SIGKILL');
  }
}
