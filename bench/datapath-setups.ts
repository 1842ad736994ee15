/**
 * The balancer set-ups of the side-by-side benchmark (bench/datapath.ts), started and stopped
 * in the director namespace of its test bed:
 *
 *   none        no balancer: the client talks to one real server, routed through the director
 *   nft         nftables DNAT over the three real servers (this kernel has no IPVS)
 *   haproxy     HAProxy in TCP mode, the VIP made local on the director, 2 threads
 *   ulvs        ulvsd with its defaults (plus --ulvs-args)
 *   ulvs-exact  ulvsd with --ulvs-exact-args added (default `--sysctl kernel_setup=0`: the
 *               exact path, without the kernel's connection set-up); when this ulvsd refuses
 *               those arguments (`ulvsd --config-test` says so before the first round) it runs
 *               as plain ulvs and the report says so
 *   ulvs-base   the ulvsd of --base-ulvsd PATH (another checkout's dist/src/cli/ulvsd.js, built,
 *               with its own eBPF objects), with its defaults only: an earlier build, to see
 *               whether the exact path got slower
 *
 * iperf3's control and data connections must reach the same server, so every balancer hashes
 * the source address for port 5201 (ulvs `sh`, nft `jhash ip saddr` with one seed for TCP and
 * UDP, haproxy `balance source`); HTTP on port 80 is round robin (ulvs `rr`, nft `numgen inc`,
 * haproxy `roundrobin`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { processCpuTicks } from './machine-info.js';
import { join } from 'node:path';
import { run, tryRun } from '../src/lab/shell.js';
import { LAB } from '../src/lab/testbed.js';
import { SCRIPTS, waitFor } from '../src/lab/director-bed.js';
import type { Setup } from './report.js';

const V = LAB.VIP;
/** ulvsd's log lines saying that a kernel part is off and packets take the user-space path */
const ULVS_DEGRADED = /fast path unavailable|cross the IP stack|cannot be taken over|unavailable/;
const log = (s: string) => process.stderr.write(`${s}\n`);

export interface SetupsOptions {
  director: string;
  realServers: readonly string[];
  /** a private directory for configuration files, the admin socket and state */
  tmp: string;
  ulvsArgs: readonly string[];
  exactArgs: readonly string[];
  /** ulvs-base's ulvsd.js */
  baseUlvsd?: string;
  /** ulvs-base's own arguments (default none: its defaults) */
  baseArgs?: string[];
}

export class BalancerSetups {
  readonly o: SetupsOptions;
  readonly ulvsSocket: string;
  /** the balancer process of the current set-up (ulvsd, haproxy), or null */
  balancer: ChildProcess | null = null;
  /** the arguments ulvs-exact adds (cleared by probeExact when ulvsd refuses them) */
  exactArgs: string[];

  constructor(o: SetupsOptions) {
    this.o = o;
    this.ulvsSocket = join(o.tmp, 'ulvs.sock');
    this.exactArgs = [...o.exactArgs];
    const rs = o.realServers;
    writeFileSync(
      join(o.tmp, 'rules'),
      [`-A -t ${V}:5201 -s sh`, ...rs.map((a) => `-a -t ${V}:5201 -r ${a}:5201 -m`), `-A -u ${V}:5201 -s sh`, ...rs.map((a) => `-a -u ${V}:5201 -r ${a}:5201 -m`), `-A -t ${V}:80 -s rr`, ...rs.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`)].join('\n'),
    );
  }

  /**
   * Ask this ulvsd (`--config-test`) whether it takes ulvs-exact's arguments; if it refuses
   * them, ulvs-exact runs without them. Returns a note for the report, or null when accepted.
   */
  probeExact(): string | null {
    if (!this.exactArgs.length) return 'ran as ulvs: no --ulvs-exact-args';
    const r = spawnSync(process.execPath, [SCRIPTS.ulvsd, '--rules', join(this.o.tmp, 'rules'), '--config-test', ...this.o.ulvsArgs, ...this.exactArgs], { encoding: 'utf8' });
    if (r.status === 0) return null;
    const why = `${r.stderr}${r.stdout}`.trim().split('\n')[0]!.replace(/ \(ulvs has: .*$/, '').slice(0, 200); // without the list of every name
    const note = `ran as ulvs: this ulvsd refused '${this.exactArgs.join(' ')}' (${why})`;
    log(`ulvs-exact ${note}`);
    this.exactArgs = [];
    return note;
  }

  #inDirector(argv: string[]): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.o.director, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  /** ulvsd with its own admin socket and state directory (a ulvsd already running on this host
   *  is neither refused against nor asked for its connections) and `extra` arguments. */
  async startUlvs(extra: readonly string[] = [], script = SCRIPTS.ulvsd, own = this.o.ulvsArgs): Promise<void> {
    const t = this.o.tmp;
    const p = this.#inDirector([process.execPath, script, '--rules', join(t, 'rules'), '--socket', this.ulvsSocket, '--state-dir', join(t, 'state'), '--log-format', 'text', ...own, ...extra]);
    this.balancer = p;
    // everything ulvsd says while it runs: keep the lines that say a kernel part is off (a
    // fast path that failed to load leaves ulvsd forwarding, every packet in user space)
    let partial = '';
    const onData = (d: Buffer) => {
      this.ulvsLogBytes += d.length;
      const lines = (partial + d.toString()).split('\n');
      partial = lines.pop()!;
      for (const l of lines) if (ULVS_DEGRADED.test(l) && this.ulvsWarnings.size < 20) this.ulvsWarnings.add(l.replace(/^\S+\s+/, '').slice(0, 300));
    };
    p.stdout!.on('data', onData);
    p.stderr!.on('data', onData);
    await waitFor(p, /forwarding/);
    for (const w of this.ulvsWarnings) log(`    ulvsd: ${w}`);
  }
  /** ulvsd's lines that said a kernel part is unavailable (fast path, way out, capture), all runs */
  readonly ulvsWarnings = new Set<string>();
  /** bytes ulvsd wrote to stdout and stderr, all runs */
  ulvsLogBytes = 0;

  async #startHaproxy(): Promise<void> {
    const rs = this.o.realServers;
    run(['ip', 'netns', 'exec', this.o.director, 'ip', 'addr', 'add', `${V}/32`, 'dev', 'lo']);
    const conf = `global
  nbthread 2
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend iperf
  bind ${V}:5201
  default_backend iperf
backend iperf
  balance source
${rs.map((a, i) => `  server rs${i + 1} ${a}:5201`).join('\n')}
frontend http
  bind ${V}:80
  default_backend http
backend http
  balance roundrobin
${rs.map((a, i) => `  server rs${i + 1} ${a}:8080`).join('\n')}
`;
    const file = join(this.o.tmp, 'haproxy.cfg');
    writeFileSync(file, conf);
    run(['haproxy', '-c', '-q', '-f', file]);
    const p = this.#inDirector(['haproxy', '-db', '-f', file]);
    this.balancer = p;
    let said = '';
    p.stderr!.on('data', (d: Buffer) => (said += d.toString()));
    p.stdout!.on('data', (d: Buffer) => (said += d.toString()));
    await new Promise((r) => setTimeout(r, 500));
    if (p.exitCode !== null) throw new Error(`haproxy exited at start: ${said}`);
  }

  #startNft(): void {
    const rs = this.o.realServers;
    const n = rs.length;
    const map = (port: number | null) => rs.map((a, i) => `${i} : ${a}${port ? ` . ${port}` : ''}`).join(', ');
    const conf = `table ip ulvsbench {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${V} tcp dport 5201 dnat to jhash ip saddr mod ${n} seed 0x5eed map { ${map(null)} }
    ip daddr ${V} udp dport 5201 dnat to jhash ip saddr mod ${n} seed 0x5eed map { ${map(null)} }
    ip daddr ${V} tcp dport 80 dnat ip addr . port to numgen inc mod ${n} map { ${map(8080)} }
  }
}\n`;
    writeFileSync(join(this.o.tmp, 'nft.conf'), conf);
    run(['ip', 'netns', 'exec', this.o.director, 'nft', '-f', join(this.o.tmp, 'nft.conf')]);
  }

  async start(s: Setup): Promise<void> {
    if (s === 'ulvs') await this.startUlvs();
    else if (s === 'ulvs-exact') await this.startUlvs(this.exactArgs);
    else if (s === 'ulvs-base') await this.startUlvs([], this.o.baseUlvsd, this.o.baseArgs ?? []);
    else if (s === 'haproxy') await this.#startHaproxy();
    else if (s === 'nft') this.#startNft();
  }

  /** Stop the balancer process, if any (SIGTERM: ulvsd removes its routing and socket). */
  async stopBalancer(): Promise<void> {
    const p = this.balancer;
    this.balancer = null;
    if (p && p.exitCode === null && p.signalCode === null) {
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await done;
    }
  }

  async stop(s: Setup): Promise<void> {
    await this.stopBalancer();
    const d = this.o.director;
    if (s === 'nft') tryRun(['ip', 'netns', 'exec', d, 'nft', 'delete', 'table', 'ip', 'ulvsbench']);
    if (s === 'haproxy') {
      tryRun(['ip', 'netns', 'exec', d, 'ip', 'addr', 'del', `${V}/32`, 'dev', 'lo']);
      await this.#clearDirectorTimeWait();
    }
  }

  /**
   * HAProxy leaves the director with TIME_WAIT sockets for VIP:80 <- client:port. Until they
   * expire (60 s), the kernel's early demux attaches them to a client's new SYN from a reused
   * port, and ip_forward() drops any packet that carries a socket: forwarding set-ups measured
   * next (ulvs) would lose those SYNs. Destroy them (ss -K, SOCK_DESTROY), else wait them out.
   */
  async #clearDirectorTimeWait(): Promise<void> {
    const d = this.o.director;
    const count = () => run(['ip', 'netns', 'exec', d, 'ss', '-Htan', 'state', 'time-wait']).split('\n').filter((l) => l.trim()).length;
    tryRun(['ip', 'netns', 'exec', d, 'ss', '-HK', 'state', 'time-wait']);
    const t0 = Date.now();
    for (let n = count(); n > 0; n = count()) {
      if (Date.now() - t0 > 70_000) throw new Error(`${n} TIME_WAIT sockets remain on the director after 70 s`);
      if (Date.now() - t0 < 1000) log(`    waiting for ${n} TIME_WAIT sockets on the director to expire`);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /**
   * Seconds the balancer's threads have spent runnable but waiting for a CPU so far (the second
   * field of /proc/<pid>/task/<tid>/schedstat, nanoseconds, summed over its threads; threads
   * that ended are not counted); 0 without one. A user-space data path waits there for every
   * batch when other work holds the CPUs; softirq work (nft) does not.
   */
  balancerRunQueueWait(): number {
    const pid = this.balancer?.pid;
    if (!pid) return 0;
    let ns = 0;
    try {
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        try {
          ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[1]);
        } catch {
          // the thread ended meanwhile
        }
      }
    } catch {
      return 0;
    }
    return ns / 1e9;
  }

  /** CPU seconds (user + system) of the balancer process so far; 0 without one. */
  balancerCpu(): number {
    const pid = this.balancer?.pid;
    if (!pid) return 0;
    try {
      const [user, system] = processCpuTicks(pid);
      return (user + system) / 100; // clock ticks (USER_HZ = 100)
    } catch {
      return 0;
    }
  }
}
