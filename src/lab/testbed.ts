/**
 * The network-namespace test bed (design.md, "Addresses used by the test bed"):
 *
 *   <p>-c1 .. <p>-cN            <p>-dir (director)                       <p>-rs1 .. <p>-rsN
 *   eth0 198.51.100.(2+i)/24 -- pubI on pubbr 198.51.100.1/24
 *   route 203.0.113.0/24          br0 192.0.2.1/24 (DIP) -- rspI ====== eth0 192.0.2.(10+i)/24
 *     via 198.51.100.1            ip_forward=1                           default via 192.0.2.1
 *
 * The VIP (203.0.113.10) is routed to the director but is not a local address there: the
 * director forwards it into its TUN. Every name starts with a per-run prefix; `down()` kills
 * the processes left in the namespaces and deletes them, and is safe to call twice.
 */
import { randomBytes } from 'node:crypto';
import { run, tryRun } from './shell.js';

export const LAB = {
  VIP: '203.0.113.10',
  CLIENT_NET: '198.51.100.0/24',
  DIRECTOR_PUBLIC: '198.51.100.1',
  DIP: '192.0.2.1',
  VIP_NET: '203.0.113.0/24',
  client: (i: number) => `198.51.100.${2 + i}`,
  realServer: (i: number) => `192.0.2.${11 + i}`,
} as const;

export interface TestBedOptions {
  /** number of real servers (default 3) */
  realServers?: number;
  /** number of client namespaces (default 1) */
  clients?: number;
  /** MTU on the real-server LAN (default 1500) */
  rsMtu?: number;
  /** name prefix (default ulvs-<random>) */
  prefix?: string;
}

export class TestBed {
  readonly prefix: string;
  readonly director: string;
  readonly clients: string[];
  readonly realServers: string[];
  readonly rsMtu: number;
  #up = false;

  constructor(o: TestBedOptions = {}) {
    const count = (x: number | undefined, what: string, max: number) => {
      if (x !== undefined && !(Number.isInteger(x) && x >= 1 && x <= max)) throw new RangeError(`test bed: ${what} must be an integer from 1 to ${max}, not ${x}`);
    };
    count(o.realServers, 'realServers', 100);
    count(o.clients, 'clients', 100);
    if (o.rsMtu !== undefined && !(Number.isInteger(o.rsMtu) && o.rsMtu >= 576 && o.rsMtu <= 65535)) throw new RangeError(`test bed: rsMtu must be 576..65535, not ${o.rsMtu}`);
    this.prefix = o.prefix ?? `ulvs-${randomBytes(3).toString('hex')}`;
    this.director = `${this.prefix}-dir`;
    this.clients = Array.from({ length: o.clients ?? 1 }, (_, i) => `${this.prefix}-c${i + 1}`);
    this.realServers = Array.from({ length: o.realServers ?? 3 }, (_, i) => `${this.prefix}-rs${i + 1}`);
    this.rsMtu = o.rsMtu ?? 1500;
  }

  get namespaces(): string[] {
    return [this.director, ...this.clients, ...this.realServers];
  }

  /** Build everything; on any failure, tear down what was built and rethrow. */
  up(): this {
    try {
      for (const ns of this.namespaces) {
        run(['ip', 'netns', 'add', ns]);
        this.ip(ns, ['link', 'set', 'lo', 'up']);
      }
      this.#up = true;
      this.#wireDirector();
      return this;
    } catch (e) {
      this.down();
      throw e;
    }
  }

  /** The director's bridges, its links to every client and real server (their eth0, addresses
   *  and routes), forwarding on. */
  #wireDirector(): void {
    const d = this.director;
    this.ip(d, ['link', 'add', 'pubbr', 'type', 'bridge']);
    this.ip(d, ['addr', 'add', `${LAB.DIRECTOR_PUBLIC}/24`, 'dev', 'pubbr']);
    this.ip(d, ['link', 'set', 'pubbr', 'up']);
    this.ip(d, ['link', 'add', 'br0', 'type', 'bridge']);
    this.ip(d, ['addr', 'add', `${LAB.DIP}/24`, 'dev', 'br0']);
    this.ip(d, ['link', 'set', 'br0', 'mtu', String(this.rsMtu), 'up']);
    this.clients.forEach((c, i) => {
      const port = `pub${i + 1}`;
      run(['ip', 'link', 'add', 'name', port, 'netns', d, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', c]);
      this.ip(d, ['link', 'set', port, 'master', 'pubbr', 'up']);
      this.ip(c, ['addr', 'add', `${LAB.client(i)}/24`, 'dev', 'eth0']);
      this.ip(c, ['link', 'set', 'eth0', 'up']);
      this.ip(c, ['route', 'add', LAB.VIP_NET, 'via', LAB.DIRECTOR_PUBLIC]);
    });
    this.realServers.forEach((r, i) => {
      const port = `rsp${i + 1}`;
      run(['ip', 'link', 'add', 'name', port, 'netns', d, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', r]);
      this.ip(d, ['link', 'set', port, 'master', 'br0', 'mtu', String(this.rsMtu), 'up']);
      this.ip(r, ['addr', 'add', `${LAB.realServer(i)}/24`, 'dev', 'eth0']);
      this.ip(r, ['link', 'set', 'eth0', 'mtu', String(this.rsMtu), 'up']);
      this.ip(r, ['route', 'add', 'default', 'via', LAB.DIP]);
    });
    run(['ip', 'netns', 'exec', d, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  }

  /**
   * A new director namespace, wired as up() wires it; what ran in the old one is killed (the
   * clients' and real servers' namespaces, their processes and sockets stay; their eth0 is
   * made again with the same address and routes; routes the caller added there are gone).
   * The benchmark starts every set-up this way: a namespace where a policy rule was ever added
   * walks the rules on every route lookup from then on (the kernel never clears
   * fib_has_custom_rules), which would handicap nftables after a ulvsd.
   */
  renewDirector(): void {
    const d = this.director;
    try {
      for (const p of run(['ip', 'netns', 'pids', d]).split(/\s+/).filter(Boolean)) tryRun(['kill', '-9', p]);
    } catch {
      /* no such namespace */
    }
    tryRun(['ip', 'netns', 'del', d]);
    // the kernel destroys the old namespace's veth pairs after the deletion returns: wait for
    // the peers (every other namespace's eth0) to be gone before making new ones
    const deadline = Date.now() + 10_000;
    for (const ns of [...this.clients, ...this.realServers])
      while (tryRun(['ip', '-n', ns, 'link', 'show', 'eth0'])) {
        if (Date.now() > deadline) throw new Error(`renewDirector: ${ns}'s eth0 still there 10 s after the director's namespace was deleted`);
        run(['sleep', '0.05']);
      }
    run(['ip', 'netns', 'add', d]);
    this.ip(d, ['link', 'set', 'lo', 'up']);
    this.#wireDirector();
  }

  ip(ns: string, args: string[]): string {
    return run(['ip', '-n', ns, ...args]);
  }

  /** Kill what runs in the namespaces, delete them. Idempotent; never throws. */
  down(): void {
    for (const ns of this.namespaces) {
      let pids = '';
      try {
        pids = run(['ip', 'netns', 'pids', ns]);
      } catch {
        continue; // namespace does not exist
      }
      for (const p of pids.split(/\s+/).filter(Boolean)) tryRun(['kill', '-9', p]);
      tryRun(['ip', 'netns', 'del', ns]);
    }
    this.#up = false;
  }

  get isUp(): boolean {
    return this.#up;
  }
}

/** Delete every namespace whose name starts with `prefix` (for `ulvs lab down` and crashes);
 *  returns the names actually deleted. */
export function removeLabs(prefix = 'ulvs-'): string[] {
  const names = run(['ip', 'netns', 'list'])
    .split('\n')
    .map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(prefix));
  for (const ns of names) {
    try {
      for (const p of run(['ip', 'netns', 'pids', ns]).split(/\s+/).filter(Boolean)) tryRun(['kill', '-9', p]);
    } catch {
      /* already gone */
    }
  }
  return names.filter((ns) => tryRun(['ip', 'netns', 'del', ns]));
}
