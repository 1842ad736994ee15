/**
 * The HA-pair test bed (`ulvs lab up --pair`, test/integration/vrrp-pair.test.ts): two
 * directors running keepalived -P (VRRP) and ulvsd from the same keepalived.conf (pair-config.ts)
 * between an outside and an inside bridge.
 *
 *   <p>-c1 eth0 198.51.100.2/24 ── [<p>-sw: bridge out] ── <p>-d1 o0 198.51.100.11/24   <p>-d2 o0 198.51.100.12/24
 *     route 203.0.113.0/24 on-link (ARP for the VIP,                 i0 192.0.2.2/24              i0 192.0.2.3/24
 *     which keepalived's gratuitous ARPs move)                 ── [<p>-sw: bridge in] ── <p>-rs1 192.0.2.11, <p>-rs2 192.0.2.12
 *                                                                                          default via 192.0.2.1 (the DIP)
 *   VRRP sync group G_NAT: VI_EXT (vrid 51, 203.0.113.10/32 on o0), VI_INT (vrid 52, 192.0.2.1/24 on i0);
 *   d1 priority 150, d2 100 (d1 preempts when it comes back).
 *
 * With a reply router (direct routing and tunnelling, whose replies leave the real servers with
 * the VIP as source and must not cross a director): one more namespace <p>-gw, 192.0.2.254 on
 * the inside bridge and 198.51.100.254 on the outside one, forwarding, is the real servers'
 * default gateway instead of the DIP, as the upstream router of a real DR network. Through the
 * master instead, the replies would be dropped as martians (source VIP, a local address of the
 * master, arriving from outside: fib_validate_source), and a takeover would move them too.
 *
 * Every name starts with the prefix; `up()` removes what it built when it fails, `down()`
 * kills what runs in the namespaces, deletes them and the temporary directory, and may be
 * called twice. Processes: real-server programs (HTTP on 8080), per director ulvsd (started
 * first: keepalived's track script wants it alive) and keepalived.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { run, tryRun } from './shell.js';

export const PAIR = {
  VIP: '203.0.113.10',
  VIP_NET: '203.0.113.0/24',
  DIP: '192.0.2.1',
  DIP_PREFIX: 24,
  client: '198.51.100.2',
  outside: (i: number) => `198.51.100.${11 + i}`,
  inside: (i: number) => `192.0.2.${2 + i}`,
  realServer: (i: number) => `192.0.2.${11 + i}`,
  priority: (i: number) => (i === 0 ? 150 : 100),
  VRIDS: [51, 52] as [number, number],
  VPORT: 80,
  RPORT: 8080,
  /** the reply router's addresses on the inside and the outside bridge */
  ROUTER_IN: '192.0.2.254',
  ROUTER_OUT: '198.51.100.254',
} as const;

/** The network of the pair: namespaces, bridges, links and addresses; no processes. */
export class PairNet {
  readonly prefix: string;
  readonly sw: string;
  readonly client: string;
  readonly directors: [string, string];
  readonly realServers: string[];
  /** the reply router's namespace, null without one */
  readonly router: string | null;
  readonly dir: string;

  constructor(prefix = `ulvs-${randomBytes(3).toString('hex')}`, realServers = 2, replyRouter = false) {
    if (!/^[a-z0-9-]{1,20}$/.test(prefix)) throw new RangeError(`pair bed: the prefix is 1..20 of a-z 0-9 -, not ${JSON.stringify(prefix)}`);
    this.prefix = prefix;
    this.sw = `${prefix}-sw`;
    this.client = `${prefix}-c1`;
    this.directors = [`${prefix}-d1`, `${prefix}-d2`];
    this.realServers = Array.from({ length: realServers }, (_, i) => `${prefix}-rs${i + 1}`);
    this.router = replyRouter ? `${prefix}-gw` : null;
    this.dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  }

  get namespaces(): string[] {
    return [this.sw, this.client, ...this.directors, ...this.realServers, ...(this.router ? [this.router] : [])];
  }

  ip(ns: string, args: string[]): string {
    return run(['ip', '-n', ns, ...args]);
  }

  /** A veth from `ns` (named `name`) to a port of bridge `bridge` in the switch namespace. */
  #plug(ns: string, name: string, bridge: string, port: string): void {
    run(['ip', 'link', 'add', 'name', port, 'netns', this.sw, 'type', 'veth', 'peer', 'name', name, 'netns', ns]);
    this.ip(this.sw, ['link', 'set', port, 'master', bridge, 'up']);
    this.ip(ns, ['link', 'set', name, 'up']);
  }

  /** Build it; on failure remove what was built and rethrow. */
  up(): this {
    try {
      for (const ns of this.namespaces) {
        run(['ip', 'netns', 'add', ns]);
        this.ip(ns, ['link', 'set', 'lo', 'up']);
      }
      for (const br of ['out', 'in']) {
        this.ip(this.sw, ['link', 'add', br, 'type', 'bridge']);
        this.ip(this.sw, ['link', 'set', br, 'up']);
      }
      this.#plug(this.client, 'eth0', 'out', 'c1');
      this.ip(this.client, ['addr', 'add', `${PAIR.client}/24`, 'dev', 'eth0']);
      this.ip(this.client, ['route', 'add', PAIR.VIP_NET, 'dev', 'eth0']);
      this.directors.forEach((d, i) => {
        this.#plug(d, 'o0', 'out', `d${i + 1}o`);
        this.#plug(d, 'i0', 'in', `d${i + 1}i`);
        this.ip(d, ['addr', 'add', `${PAIR.outside(i)}/24`, 'dev', 'o0']);
        this.ip(d, ['addr', 'add', `${PAIR.inside(i)}/24`, 'dev', 'i0']);
        run(['ip', 'netns', 'exec', d, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
      });
      if (this.router) {
        this.#plug(this.router, 'o0', 'out', 'gwo');
        this.#plug(this.router, 'i0', 'in', 'gwi');
        this.ip(this.router, ['addr', 'add', `${PAIR.ROUTER_OUT}/24`, 'dev', 'o0']);
        this.ip(this.router, ['addr', 'add', `${PAIR.ROUTER_IN}/24`, 'dev', 'i0']);
        // rp_filter off: the replies' source, the VIP, has no route here (a namespace inherits
        // the host's rp_filter, which may be strict)
        for (const k of ['net.ipv4.ip_forward=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0', 'net.ipv4.conf.i0.rp_filter=0']) run(['ip', 'netns', 'exec', this.router, 'sysctl', '-qw', k]);
      }
      this.realServers.forEach((r, i) => {
        this.#plug(r, 'eth0', 'in', `rs${i + 1}`);
        this.ip(r, ['addr', 'add', `${PAIR.realServer(i)}/24`, 'dev', 'eth0']);
        this.ip(r, ['route', 'add', 'default', 'via', this.router ? PAIR.ROUTER_IN : PAIR.DIP]);
      });
      return this;
    } catch (e) {
      this.down();
      throw e;
    }
  }

  /** Does director i hold `addr` now? */
  holds(i: number, addr: string): boolean {
    return new RegExp(`inet ${addr.replace(/\./g, '\\.')}/`).test(this.ip(this.directors[i]!, ['-4', 'addr', 'show']));
  }

  /** Take director i off both networks (its links down in its namespace), or back. */
  setLinks(i: number, up: boolean): void {
    for (const l of ['o0', 'i0']) this.ip(this.directors[i]!, ['link', 'set', l, up ? 'up' : 'down']);
  }

  /** Whether the bridges flood unknown unicast to director i's ports (`bridge link set ... flood`).
   *  Off, director i receives only frames addressed to it, broadcasts and multicast (VRRP, sync)
   *  — as behind a switch that still knows a lost director's MAC. */
  setFlood(i: number, on: boolean): void {
    for (const port of [`d${i + 1}o`, `d${i + 1}i`]) run(['bridge', '-n', this.sw, 'link', 'set', 'dev', port, 'flood', on ? 'on' : 'off']);
  }

  /** Kill what runs in the namespaces, delete them and the directory. Idempotent; never throws. */
  down(): void {
    for (const ns of this.namespaces) {
      let pids = '';
      try {
        pids = run(['ip', 'netns', 'pids', ns]);
      } catch {
        continue;
      }
      for (const p of pids.split(/\s+/).filter(Boolean)) tryRun(['kill', '-9', p]);
      tryRun(['ip', 'netns', 'del', ns]);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
