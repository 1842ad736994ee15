/**
 * The asymmetric benchmark's test bed (bench/asym.ts): the lab's bed (src/lab/testbed.ts) with
 * 1 client, the director and 3 real servers, plus what a direct-routing test needs:
 *
 *   - every real server DR-ready (VIP /32 on lo, arp_ignore=1, arp_announce=2) and running
 *     nginx, which serves a 1 MiB file at /1m (`sendfile on`);
 *   - a second veth from each real server straight to the client (retI in the client <-> ret0
 *     in the server; no addresses, a static neighbour entry) and a routing table (4201: client
 *     net via ret0) that a source policy rule `from VIP lookup 4201` switches on for the
 *     direct-return set-ups: only replies from the VIP use it, so NAT replies (from the
 *     server's own address) still go to the director.
 *
 * Counters read here: bytes the client received on its direct links, and packets (skbs: a
 * TSO/GRO super-packet counts once) the director received on its veth ports, which is the unit
 * of work of the director's kernel whatever forwards them.
 * Every name is under the bed's per-run prefix; `down()` removes everything and never throws.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../src/lab/shell.js';
import { LAB, TestBed } from '../src/lab/testbed.js';
import { statePathOf } from '../src/rs/setup.js';

const POLICY_TABLE = '4201';
/** nginx's file: 1 MiB */
export const REPLY_BYTES = 2 ** 20;

export class AsymBed {
  readonly bed: TestBed;
  /** a private temporary directory (rules, sockets, nginx files) */
  readonly tmp: string;
  readonly client: string;
  readonly procs: ChildProcess[] = [];

  constructor(prefix?: string) {
    this.bed = new TestBed({ realServers: 3, clients: 1, ...(prefix && { prefix }) });
    this.client = this.bed.clients[0]!;
    this.tmp = mkdtempSync(join(tmpdir(), 'ulvs-asym-'));
  }

  get prefix(): string {
    return this.bed.prefix;
  }
  get director(): string {
    return this.bed.director;
  }
  get realServers(): string[] {
    return this.bed.realServers;
  }

  /** Run a command inside namespace `ns`; returns its stdout. */
  ns(ns: string, argv: string[], input?: string): string {
    return run(['ip', 'netns', 'exec', ns, ...argv], input);
  }

  /** Where `ulvs rs-setup` keeps its record for real server namespace `ns`. */
  rsRecord(ns: string): string {
    return statePathOf(statSync(`/run/netns/${ns}`).ino);
  }

  /**
   * Delete rs-setup records that name this bed's real-server namespaces before anything here
   * was set up, and return their paths. The kernel reuses a deleted namespace's inode number,
   * so a record left by a run that deleted its namespace without `rs-setup --remove` names a
   * fresh namespace, where rs-setup then refuses to set up ("already set up"). Call only while
   * no rs-setup of this bed is in force.
   */
  dropStaleRsRecords(): string[] {
    const stale: string[] = [];
    for (const r of this.realServers) {
      const f = this.rsRecord(r);
      if (existsSync(f)) {
        unlinkSync(f);
        stale.push(f);
      }
    }
    return stale;
  }

  /** Build the bed and start nginx on every real server (on failure everything built is removed); returns dropStaleRsRecords()'s list. */
  async up(): Promise<string[]> {
    let stale: string[] = [];
    try {
      this.bed.up();
      stale = this.dropStaleRsRecords();
      const www = join(this.tmp, 'www');
      mkdirSync(www);
      writeFileSync(join(www, '1m'), Buffer.alloc(REPLY_BYTES, 0x61), { mode: 0o644 });
      for (const d of [this.tmp, www]) chmodSync(d, 0o755); // nginx's workers run as another user
      const c = this.client;
      tryRun(['ip', 'netns', 'exec', c, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
      tryRun(['ip', 'netns', 'exec', c, 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
      for (const k of ['all', 'default', 'eth0']) this.ns(c, ['sysctl', '-qw', `net.ipv4.conf.${k}.rp_filter=0`]); // replies arrive on retI
      for (const [i, r] of this.realServers.entries()) {
        for (const k of ['all', 'eth0', 'lo']) {
          this.ns(r, ['sysctl', '-qw', `net.ipv4.conf.${k}.arp_ignore=1`]);
          this.ns(r, ['sysctl', '-qw', `net.ipv4.conf.${k}.arp_announce=2`]);
        }
        run(['ip', '-n', r, 'addr', 'add', `${LAB.VIP}/32`, 'dev', 'lo']);
        run(['ip', 'link', 'add', 'name', `ret${i + 1}`, 'netns', c, 'type', 'veth', 'peer', 'name', 'ret0', 'netns', r]);
        run(['ip', '-n', c, 'link', 'set', `ret${i + 1}`, 'up']);
        this.ns(c, ['sysctl', '-qw', `net.ipv4.conf.ret${i + 1}.rp_filter=0`]);
        run(['ip', '-n', r, 'link', 'set', 'ret0', 'up']);
        const mac = (JSON.parse(run(['ip', '-j', '-n', c, 'link', 'show', `ret${i + 1}`])) as { address: string }[])[0]!.address;
        run(['ip', '-n', r, 'neigh', 'add', LAB.client(0), 'lladdr', mac, 'dev', 'ret0', 'nud', 'permanent']);
        run(['ip', '-n', r, 'route', 'add', LAB.CLIENT_NET, 'via', LAB.client(0), 'dev', 'ret0', 'onlink', 'table', POLICY_TABLE]);
        this.procs.push(spawn('ip', ['netns', 'exec', r, 'nginx', '-c', this.#nginxConf(i, www)], { stdio: ['ignore', 'pipe', 'pipe'] }));
      }
      await this.#nginxListening();
      return stale;
    } catch (e) {
      this.down();
      throw e;
    }
  }

  #nginxConf(i: number, www: string): string {
    const d = join(this.tmp, `rs${i + 1}`);
    mkdirSync(d);
    const conf = join(d, 'nginx.conf');
    writeFileSync(
      conf,
      `worker_processes 1; daemon off; pid ${d}/nginx.pid; error_log ${d}/error.log;
events { worker_connections 8192; }
http { access_log off; sendfile on; client_body_temp_path ${d}; proxy_temp_path ${d}; fastcgi_temp_path ${d}; uwsgi_temp_path ${d}; scgi_temp_path ${d};
  server { listen 80 backlog=8192; root ${www}; location / { } } }\n`,
    );
    return conf;
  }

  /** Resolve once nginx listens on port 80 in every real server (10 s at most). */
  async #nginxListening(): Promise<void> {
    for (let t = 0; ; t++) {
      const waiting = this.realServers.filter((r) => !/:80\b/.test(this.ns(r, ['ss', '-Hltn', 'sport = :80'])));
      if (waiting.length === 0) return;
      const dead = this.procs.find((p) => p.exitCode !== null);
      if (dead || t >= 100) throw new Error(`nginx did not start in ${waiting.join(', ')}${dead ? ` (exit ${dead.exitCode})` : ''}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Switch direct return on (replies from the VIP go by ret0) or off (by the director). */
  directReturn(on: boolean): void {
    for (const r of this.realServers) (on ? run : tryRun)(['ip', '-n', r, 'rule', on ? 'add' : 'del', 'from', LAB.VIP, 'lookup', POLICY_TABLE, 'pref', '100']);
  }

  /** Bytes the client received on its direct links from the real servers, so far. */
  returnedBytes(): number {
    return this.realServers.reduce((a, _, i) => a + Number(this.ns(this.client, ['cat', `/sys/class/net/ret${i + 1}/statistics/rx_bytes`])), 0);
  }

  /** Packets the director received on its veth ports (pubN: clients, rspN: real servers), so far. */
  directorPackets(): number {
    const links = JSON.parse(run(['ip', '-j', '-s', '-n', this.director, 'link', 'show'])) as { ifname: string; stats64?: { rx: { packets: number } } }[];
    return links.filter((l) => /^(pub|rsp)\d+$/.test(l.ifname)).reduce((a, l) => a + (l.stats64?.rx.packets ?? 0), 0);
  }

  /** Kill nginx and whatever runs in the namespaces, delete them and the temporary files. */
  down(): void {
    for (const p of this.procs) if (p.exitCode === null) p.kill('SIGKILL');
    this.bed.down();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}
