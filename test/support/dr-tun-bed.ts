/**
 * A test bed for direct routing (-g) and IP-in-IP tunnelling (-i) whose real servers are set up
 * as an operator would, with `ulvs rs-setup dr VIP` or `ulvs rs-setup tun --decap bpf VIP` (this
 * kernel has no ipip module), and whose replies do NOT cross the director: a reply router
 * (namespace <prefix>-gw, 192.0.2.254 on the real servers' bridge, 198.51.100.254 on the
 * clients') is the real servers' default gateway, as in a real DR/TUN network where the
 * director sees one direction only. A server listed in `natServers` keeps the director (DIP) as
 * its gateway, as a masquerading server must. Test-only.
 *
 * The VIP may be a local address of the director (`vip: 'lo'` or `'pubbr'`, its client-side
 * interface) or only routed to it (`'routed'`, the lab's default). With a local VIP and the
 * director as the servers' gateway, their replies (source VIP) would be dropped by the director's
 * kernel as martians (a local source arriving from outside): one more reason for the router.
 *
 * TUN: the real servers' network has an MTU of 1520, room for the outer header's 20 bytes, so
 * full-size segments from the client pass without path MTU discovery (dr-tun-pmtu.test.ts covers
 * that); the wire test relies on it to match every frame one to one.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { run, tryRun } from '../../src/lab/shell.js';
import { LAB, type TestBed } from '../../src/lab/testbed.js';
import { statePathOf } from '../../src/rs/setup.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const ULVS = fileURLToPath(new URL('../../../bin/ulvs', import.meta.url)); // from dist/test/support

export type Method = 'dr' | 'tun';
/** ipvsadm's flag and its listing's word for each method */
export const FLAG: Record<Method, string> = { dr: '-g', tun: '-i' };
export const FORWARD_NAME: Record<Method, string> = { dr: 'Route', tun: 'Tunnel' };

export const V = LAB.VIP;
export const RS = [0, 1, 2].map(LAB.realServer);
export const ROUTER_RS = '192.0.2.254';
export const ROUTER_PUB = '198.51.100.254';
/** extra addresses of client 0 (persistence and sh tests), 198.51.100.20.. */
export const source = (i: number) => `198.51.100.${20 + i}`;

export interface DrTunBedOptions {
  method: Method;
  /** where the director holds the VIP (default lo) */
  vip?: 'lo' | 'pubbr' | 'routed';
  /** real-server indexes that keep the director as gateway (masquerading servers) */
  natServers?: number[];
  /** how many extra source addresses client 0 gets (source(i)) */
  sources?: number;
  /** rules at start (default: rr over the three servers by `method`) */
  rules?: string;
  ulvsdArgs?: string[];
}

/** Rules text: one service on VIP:80 with `sched` (and `-p` seconds), one line per server. */
export function rulesFor(sched: string, servers: { i: number; flag: string; weight?: number }[], persist = 0): string {
  const svc = `-A -t ${V}:80 -s ${sched}${persist ? ` -p ${persist}` : ''}\n`;
  return svc + servers.map((s) => `-a -t ${V}:80 -r ${RS[s.i]}:80 ${s.flag} -w ${s.weight ?? 1}\n`).join('');
}

export class DrTunBed {
  readonly db: DirectorBed;
  readonly router: string;
  readonly method: Method;
  readonly flag: string;

  private constructor(readonly o: DrTunBedOptions) {
    this.method = o.method;
    this.flag = FLAG[o.method];
    const prefix = `h3-${randomBytes(3).toString('hex')}`;
    this.router = `${prefix}-gw`;
    const rules = o.rules ?? rulesFor('rr', [0, 1, 2].map((i) => ({ i, flag: this.flag })));
    this.db = new DirectorBed({
      prefix,
      rules,
      realServers: 3,
      httpPort: 80,
      rsMtu: o.method === 'tun' ? 1520 : 1500,
      ulvsdArgs: o.ulvsdArgs ?? [],
      beforeDirector: (b) => {
        this.#router(b);
        if (o.vip !== 'routed') b.ip(b.director, ['addr', 'add', `${V}/32`, 'dev', o.vip ?? 'lo']);
        for (let i = 0; i < (o.sources ?? 0); i++) b.ip(b.clients[0]!, ['addr', 'add', `${source(i)}/24`, 'dev', 'eth0']);
      },
    });
  }

  static async start(o: DrTunBedOptions): Promise<DrTunBed> {
    const t = new DrTunBed(o);
    try {
      await t.db.start();
      for (const ns of t.db.bed.realServers) {
        // This namespace is new, so a record at its inode number is a dead namespace's: ulvs
        // discards those that carry a namespace cookie, but older ulvs wrote none (other
        // worktrees' tests on this machine, killed before their --remove, leave such records).
        rmSync(statePathOf(statSync(`/run/netns/${ns}`).ino), { force: true });
        t.rsSetup(ns);
      }
    } catch (e) {
      await t.stop();
      throw e;
    }
    return t;
  }

  get bed(): TestBed {
    return this.db.bed;
  }

  /** The reply router, and each real server's default route (router, or DIP for NAT servers). */
  #router(b: TestBed): void {
    const gw = this.router;
    const mtu = String(b.rsMtu);
    run(['ip', 'netns', 'add', gw]);
    b.ip(gw, ['link', 'set', 'lo', 'up']);
    run(['ip', 'link', 'add', 'name', 'gwpub', 'netns', b.director, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', gw]);
    run(['ip', 'link', 'add', 'name', 'gwrs', 'netns', b.director, 'type', 'veth', 'peer', 'name', 'eth1', 'netns', gw]);
    b.ip(b.director, ['link', 'set', 'gwpub', 'master', 'pubbr', 'up']);
    b.ip(b.director, ['link', 'set', 'gwrs', 'master', 'br0', 'mtu', mtu, 'up']);
    b.ip(gw, ['addr', 'add', `${ROUTER_PUB}/24`, 'dev', 'eth0']);
    b.ip(gw, ['addr', 'add', `${ROUTER_RS}/24`, 'dev', 'eth1']);
    b.ip(gw, ['link', 'set', 'eth0', 'up']);
    b.ip(gw, ['link', 'set', 'eth1', 'mtu', mtu, 'up']);
    for (const k of ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv4.conf.eth1.rp_filter=0']) run(['ip', 'netns', 'exec', gw, 'sysctl', '-qw', k]);
    b.realServers.forEach((ns, i) => {
      if (!(this.o.natServers ?? []).includes(i)) b.ip(ns, ['route', 'replace', 'default', 'via', ROUTER_RS]);
    });
  }

  /** `ulvs rs-setup` in real-server namespace ns (dr, or tun with ulvs's decapsulator). */
  rsSetup(ns: string): string {
    const args = this.method === 'dr' ? ['dr', V] : ['tun', '--decap', 'bpf', V];
    return run(['ip', 'netns', 'exec', ns, process.execPath, ULVS, 'rs-setup', ...args]);
  }

  /** ulvsadm against this bed's ulvsd; `input` for -R. */
  adm(args: string, input?: string): SpawnSyncReturns<string> {
    return spawnSync(process.execPath, [ULVSADM, ...args.split(' ')], { env: { ...process.env, ULVS_SOCKET: this.db.socket }, encoding: 'utf8', input });
  }

  /** ulvsadm that must succeed; returns its stdout. */
  ok(args: string, input?: string): string {
    const r = this.adm(args, input);
    if (r.status !== 0) throw new Error(`ulvsadm ${args} -> ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  /** Replace every rule (ulvsadm -C, then -R): fresh services, fresh scheduler state. */
  setRules(text: string): void {
    this.ok('-C');
    this.ok('-R', text);
  }

  /** ActiveConn and InActConn per real server address, from `ulvsadm -L -n` (the one service). */
  conns(): Record<string, { active: number; inactive: number; weight: number; method: string }> {
    const out: Record<string, { active: number; inactive: number; weight: number; method: string }> = {};
    for (const m of this.ok('-L -n').matchAll(/^ {2}-> ([\d.]+):\d+\s+(\w+)\s+(\d+)\s+(\d+)\s+(\d+)/gm)) out[m[1]!] = { method: m[2]!, weight: Number(m[3]), active: Number(m[4]), inactive: Number(m[5]) };
    return out;
  }

  /** Per real server: InPkts, OutPkts, InBytes, OutBytes (ulvsadm -L -n --stats --exact). */
  stats(): Record<string, { inPkts: number; outPkts: number; inBytes: number; outBytes: number; conns: number }> {
    const out: Record<string, { inPkts: number; outPkts: number; inBytes: number; outBytes: number; conns: number }> = {};
    for (const m of this.ok('-L -n --stats --exact').matchAll(/^ {2}-> ([\d.]+):\d+\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)/gm)) out[m[1]!] = { conns: Number(m[2]), inPkts: Number(m[3]), outPkts: Number(m[4]), inBytes: Number(m[5]), outBytes: Number(m[6]) };
    return out;
  }

  /** Undo rs-setup on every real server, stop the bed, remove the router. Never throws. */
  async stop(): Promise<void> {
    for (const ns of this.db.bed.realServers) tryRun(['ip', 'netns', 'exec', ns, process.execPath, ULVS, 'rs-setup', '--remove']);
    try {
      await this.db.stop();
    } catch {
      /* the namespaces go below anyway */
    }
    tryRun(['ip', 'netns', 'del', this.router]);
  }
}
