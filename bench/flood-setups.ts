/**
 * The flood benchmark's balancers (bench/flood.ts), each in a fresh test bed of its own so no
 * state of one (conntrack entries, TIME_WAIT sockets, neighbour entries) reaches the next:
 *
 *   ulvs     ulvsd, NAT (-m), its own admin socket and state directory; extra arguments and
 *            --sysctl NAME=VALUE settings select a variant (SYN cookies, drop_entry, ...)
 *   nft      the kernel's nftables DNAT (conntrack), as bench/datapath.ts configures it
 *   haproxy  HAProxy in TCP mode on the director, the VIP a local address (the kernel's SYN
 *            cookies answer a flood of its listening socket)
 *
 * The services: VIP:80 round robin to nginx on the real servers (:8080), the target of the
 * flood and of the legitimate new connections; VIP:5201 by source hash to iperf3 (:5201), the
 * established stream (iperf3's control and data connections must reach one server).
 * The bed routes the flood's spoofed range from the director to the flooding client, as a
 * director on the internet routes them to its gateway: replies to spoofed sources leave the
 * director and are dropped in the flooding client's TUN (without the route, the director would
 * ask ARP for every spoofed address on the client LAN, an artefact of the bed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SCRIPTS, waitFor } from '../src/lab/director-bed.js';
import { run, tryRun } from '../src/lab/shell.js';
import { LAB, TestBed } from '../src/lab/testbed.js';
import { writeNginxConf } from './nginx-conf.js';

export const FLOOD_SETUPS = ['ulvs', 'nft', 'haproxy'] as const;
export type FloodSetup = (typeof FLOOD_SETUPS)[number];

/** the legitimate client (stream and new connections) and the flooding client */
export const LEGIT_CLIENT = 0;
export const FLOOD_CLIENT = 1;
/** the spoofed sources: 198.51.100.128/25 (flood.ts --src-base, up to 128 addresses) */
export const SPOOFED_NET = '198.51.100.128/25';
export const SPOOFED_BASE = '198.51.100.128';

const V = LAB.VIP;
const N = 2;
const RS = Array.from({ length: N }, (_, i) => LAB.realServer(i));

export interface UlvsVariant {
  /** extra ulvsd arguments */
  args: string[];
  /** NAME=VALUE, each passed as --sysctl NAME=VALUE */
  sysctls: string[];
}

/** the beds open now, for an interrupted run (bench/flood.ts removes them on SIGINT/SIGTERM) */
export const OPEN_BEDS = new Set<TestBed>();

/** One bed with its servers and one balancer. `close()` always removes everything. */
export class FloodBed {
  readonly bed: TestBed;
  readonly procs: ChildProcess[] = [];
  balancer: ChildProcess | null = null;
  readonly socket: string;

  constructor(
    readonly setup: FloodSetup,
    prefix: string,
    readonly dir: string,
  ) {
    this.bed = new TestBed({ realServers: N, clients: 2, prefix });
    this.socket = join(dir, 'ulvs.sock');
  }

  get director(): string {
    return this.bed.director;
  }
  client(i: number): string {
    return this.bed.clients[i]!;
  }

  async open(variant: UlvsVariant): Promise<this> {
    try {
      OPEN_BEDS.add(this.bed);
      this.bed.up();
      const d = this.director;
      run(['ip', '-n', d, 'route', 'add', SPOOFED_NET, 'via', LAB.client(FLOOD_CLIENT)]);
      for (const c of this.bed.clients) tryRun(['ip', 'netns', 'exec', c, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
      for (const [i, ns] of this.bed.realServers.entries()) {
        const ip = spawn('ip', ['netns', 'exec', ns, 'iperf3', '-s', '-p', '5201', '--forceflush'], { stdio: ['ignore', 'pipe', 'pipe'] });
        this.procs.push(ip);
        await waitFor(ip, /Server listening/);
        this.procs.push(spawn('ip', ['netns', 'exec', ns, 'nginx', '-c', writeNginxConf(join(this.dir, `rs${i + 1}`), 8080)], { stdio: ['ignore', 'pipe', 'pipe'] }));
      }
      if (this.setup === 'ulvs') await this.startUlvs(variant);
      else if (this.setup === 'nft') this.startNft();
      else await this.startHaproxy();
      return this;
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  private inDirector(argv: string[]): ChildProcess {
    return spawn('ip', ['netns', 'exec', this.director, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  }

  private async startUlvs(variant: UlvsVariant): Promise<void> {
    const rules = [`-A -t ${V}:5201 -s sh`, ...RS.map((a) => `-a -t ${V}:5201 -r ${a}:5201 -m`), `-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`)].join('\n');
    writeFileSync(join(this.dir, 'rules'), rules);
    const sysctls = variant.sysctls.flatMap((s) => ['--sysctl', s]);
    this.balancer = this.inDirector([process.execPath, SCRIPTS.ulvsd, '--rules', join(this.dir, 'rules'), '--socket', this.socket, '--state-dir', this.dir, '--log-format', 'text', ...sysctls, ...variant.args]);
    await waitFor(this.balancer, /forwarding/, 20_000);
  }

  private startNft(): void {
    const map = (port: number | null) => RS.map((a, i) => `${i} : ${a}${port ? ` . ${port}` : ''}`).join(', ');
    const conf = `table ip ulvsflood {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${V} tcp dport 5201 dnat to jhash ip saddr mod ${N} seed 0x5eed map { ${map(null)} }
    ip daddr ${V} tcp dport 80 dnat ip addr . port to numgen inc mod ${N} map { ${map(8080)} }
  }
}\n`;
    writeFileSync(join(this.dir, 'nft.conf'), conf);
    run(['ip', 'netns', 'exec', this.director, 'nft', '-f', join(this.dir, 'nft.conf')]);
  }

  private async startHaproxy(): Promise<void> {
    run(['ip', '-n', this.director, 'addr', 'add', `${V}/32`, 'dev', 'lo']);
    const backend = (name: string, balance: string, port: number) => `backend ${name}\n  balance ${balance}\n${RS.map((a, i) => `  server rs${i + 1} ${a}:${port}`).join('\n')}\n`;
    const conf = `global\n  nbthread 2\n  maxconn 9000\ndefaults\n  mode tcp\n  timeout connect 5s\n  timeout client 60s\n  timeout server 60s\nfrontend iperf\n  bind ${V}:5201\n  default_backend iperf\n${backend('iperf', 'source', 5201)}frontend http\n  bind ${V}:80\n  default_backend http\n${backend('http', 'roundrobin', 8080)}`;
    const f = join(this.dir, 'haproxy.cfg');
    writeFileSync(f, conf);
    run(['haproxy', '-c', '-q', '-f', f]);
    const p = this.inDirector(['haproxy', '-db', '-f', f]);
    this.balancer = p;
    let said = '';
    p.stderr!.on('data', (d: Buffer) => (said += d.toString()));
    await new Promise((r) => setTimeout(r, 500));
    if (p.exitCode !== null) throw new Error(`haproxy exited at start: ${said}`);
  }

  /** Resident memory of the balancer process in bytes (NaN for nft: no process, or when gone). */
  balancerRss(): number {
    const pid = this.balancer?.pid;
    if (!pid) return NaN;
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : NaN;
    } catch {
      return NaN;
    }
  }

  /** Kill everything and delete the bed (ulvsd gets SIGTERM first; the namespace takes the rest). */
  async close(): Promise<void> {
    const p = this.balancer;
    this.balancer = null;
    if (p && p.exitCode === null && p.signalCode === null) {
      const done = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await Promise.race([done, new Promise((r) => setTimeout(r, 10_000))]);
      if (p.exitCode === null) p.kill('SIGKILL');
    }
    for (const q of this.procs) q.kill('SIGKILL');
    this.bed.down();
    OPEN_BEDS.delete(this.bed);
  }
}
