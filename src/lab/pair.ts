/**
 * A running HA pair on the PairNet (pair-bed.ts): real-server programs, and per director
 * ulvsd (--keepalived, its own admin socket and state directory, so a killed one leaves nothing
 * in /run/ulvs) and keepalived -P, both given the director's
 * keepalived.conf (pair-config.ts). Used by `ulvs lab up --pair` and the VRRP integration test.
 *
 *   start()            build, start everything; resolves when both ulvsd forward (keepalived
 *                      then decides who is MASTER: waitRole). On failure everything is removed.
 *   vrrp(i)            director i's GET /v1/vrrp (null when its ulvsd does not answer)
 *   waitRole(i, s)     until director i's ulvsd reports sync group G_NAT in state s
 *   killUlvsd(i) / startUlvsd(i), setLinks(i, up), holds(i, addr)
 *   stop()             kill everything, delete the namespaces and files (idempotent)
 */
import { pathArgs } from './test-path.js';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { SCRIPTS, waitFor } from './director-bed.js';
import { pairKeepalivedConf } from './pair-config.js';
import { PAIR, PairNet } from './pair-bed.js';
import { run, tryRun } from './shell.js';

export interface PairOptions {
  prefix?: string;
  /** how keepalived sees a dead ulvsd (pair-config.ts); default 'script' */
  track?: 'script' | 'none';
  /** connection sync (`@ulvs lvs_sync_daemon` in keepalived.conf); default true */
  sync?: boolean;
  /** the real servers' program on `rport` (RPORT; VPORT for DR/TUN): HTTP (servers.ts,
   *  default) or the echo server of stream.ts (long-lived connections, ha-failover.test), or
   *  none (the caller starts its own: bench/sync-cost.ts runs nginx) */
  servers?: 'http' | 'echo' | 'none';
  /** keepalived's preempt_delay in seconds (pair-config.ts); default none */
  preemptDelay?: number;
  /** ulvsd's data-path workers per director; default 1 */
  workers?: number;
  /** ulvsd --sysctl NAME=VALUE on both directors (net.ipv4.vs.* at start); default none */
  sysctls?: string[];
  /** the forwarding method (keepalived's lb_kind); default nat. dr and tun: the real servers
   *  listen on VPORT, are prepared by `ulvs rs-setup dr|tun --decap bpf VIP` (undone at stop),
   *  and answer through the bed's reply router (pair-bed.ts), not a director */
  method?: 'nat' | 'dr' | 'tun';
  /** more ulvsd arguments, per director (e.g. `--fast-path off` on the backup: a control) */
  ulvsdArgs?: [string[], string[]];
}

const ULVSADM = SCRIPTS.ulvsd.replace(/ulvsd\.js$/, 'ulvsadm.js');
/** a process's command name, '' when it is gone */
const comm = (pid: string): string => {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};
const STREAM = SCRIPTS.ulvsd.replace(/cli\/ulvsd\.js$/, 'lab/stream.js');
const ULVS = SCRIPTS.ulvsd.replace(/ulvsd\.js$/, 'ulvs.js');

export class Pair {
  readonly net: PairNet;
  readonly track: 'script' | 'none';
  readonly sync: boolean;
  readonly servers: 'http' | 'echo' | 'none';
  readonly preemptDelay: number;
  readonly workers: number;
  readonly sysctls: string[];
  readonly ulvsdArgs: [string[], string[]];
  readonly method: 'nat' | 'dr' | 'tun';
  /** the real servers' port: RPORT for NAT, VPORT for DR and TUN (they keep the port) */
  readonly rport: number;
  readonly ulvsd: (ChildProcess | null)[] = [null, null];
  readonly keepalived: (ChildProcess | null)[] = [null, null];
  readonly logs: string[] = ['', ''];
  readonly procs: ChildProcess[] = [];
  /** real-server namespaces prepared by rs-setup */
  readonly #prepared: string[] = [];

  constructor(o: PairOptions = {}) {
    this.method = o.method ?? 'nat';
    this.rport = this.method === 'nat' ? PAIR.RPORT : PAIR.VPORT;
    this.net = new PairNet(o.prefix, 2, this.method !== 'nat');
    this.track = o.track ?? 'script';
    this.sync = o.sync ?? true;
    this.servers = o.servers ?? 'http';
    this.preemptDelay = o.preemptDelay ?? 0;
    this.workers = o.workers ?? 1;
    this.sysctls = o.sysctls ?? [];
    this.ulvsdArgs = o.ulvsdArgs ?? [[], []];
  }

  socket(i: number): string {
    return join(this.net.dir, `d${i + 1}.sock`);
  }
  conf(i: number): string {
    return join(this.net.dir, `d${i + 1}.keepalived.conf`);
  }

  async start(): Promise<this> {
    this.net.up();
    try {
      if (this.method !== 'nat') for (const ns of this.net.realServers) this.#rsSetup(ns, this.method === 'dr' ? ['dr', PAIR.VIP] : ['tun', '--decap', 'bpf', PAIR.VIP]);
      const program = (i: number) => (this.servers === 'echo' ? [STREAM, '--serve', String(this.rport)] : [SCRIPTS.servers, '--name', `rs${i + 1}`, '--http', String(this.rport)]);
      if (this.servers !== 'none') await Promise.all(this.net.realServers.map((ns, i) => this.#spawnReady(ns, [process.execPath, ...program(i)], /ready/)));
      for (const i of [0, 1]) {
        const conf = pairKeepalivedConf({
          priority: PAIR.priority(i),
          vip: PAIR.VIP,
          dip: PAIR.DIP,
          dipPrefix: PAIR.DIP_PREFIX,
          outside: 'o0',
          inside: 'i0',
          fifo: join(this.net.dir, `d${i + 1}.fifo`),
          aliveCheck: ['/usr/bin/env', `ULVS_SOCKET=${this.socket(i)}`, process.execPath, ULVSADM, '-L', '--timeout'],
          track: this.track,
          realServers: this.net.realServers.map((_, k) => PAIR.realServer(k)),
          vport: PAIR.VPORT,
          rport: this.rport,
          method: this.method,
          vrids: PAIR.VRIDS,
          sync: this.sync,
          preemptDelay: this.preemptDelay,
        });
        writeFileSync(this.conf(i), conf);
      }
      await Promise.all([0, 1].map((i) => this.startUlvsd(i)));
      for (const i of [0, 1]) this.startKeepalived(i);
      return this;
    } catch (e) {
      this.stop();
      throw e;
    }
  }

  #spawn(ns: string, argv: string[], log?: number): ChildProcess {
    const p = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(p);
    if (log !== undefined) {
      p.stdout!.on('data', (d: Buffer) => (this.logs[log] += d.toString()));
      p.stderr!.on('data', (d: Buffer) => (this.logs[log] += d.toString()));
    }
    return p;
  }

  async #spawnReady(ns: string, argv: string[], re: RegExp): Promise<ChildProcess> {
    const p = this.#spawn(ns, argv);
    await waitFor(p, re, 20_000);
    return p;
  }

  /** Start director i's ulvsd; resolves when it forwards. */
  async startUlvsd(i: number): Promise<void> {
    const p = this.#spawn(this.net.directors[i]!, [process.execPath, SCRIPTS.ulvsd, '--keepalived', this.conf(i), '--socket', this.socket(i), '--state-dir', join(this.net.dir, `d${i + 1}.state`), '--workers', String(this.workers), '--log-format', 'text', ...pathArgs(), ...this.sysctls.flatMap((a) => ['--sysctl', a]), ...this.ulvsdArgs[i]!], i);
    this.ulvsd[i] = p;
    await waitFor(p, /forwarding/, 30_000);
  }

  startKeepalived(i: number): void {
    const d = `d${i + 1}`;
    const dir = this.net.dir;
    // -i: keepalived's config id (default: the host name), not `ulvs`, so it skips the @ulvs lines
    this.keepalived[i] = this.#spawn(this.net.directors[i]!, ['keepalived', '-P', '-n', '-l', '-D', '-i', d, '-f', this.conf(i), '-p', join(dir, `${d}.keepalived.pid`), '-r', join(dir, `${d}.vrrp.pid`)], i);
  }

  /** SIGKILL director i's ulvsd; resolves when it is gone. */
  async killUlvsd(i: number): Promise<void> {
    const p = this.ulvsd[i];
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    // `ip netns exec` runs node as its child's image (exec), so this pid is ulvsd's
    p.kill('SIGKILL');
    await gone;
  }

  /** SIGKILL every keepalived process of director i (parent and VRRP child); resolves when gone. */
  async killKeepalived(i: number): Promise<void> {
    const ns = this.net.directors[i]!;
    const mine = () =>
      run(['ip', 'netns', 'pids', ns])
        .split(/\s+/)
        .filter((p) => p && comm(p) === 'keepalived');
    for (const p of mine()) tryRun(['kill', '-9', p]);
    for (let t0 = Date.now(); mine().length > 0; await new Promise((r) => setTimeout(r, 20))) if (Date.now() - t0 > 5000) throw new Error(`keepalived of director ${i + 1} did not die`);
  }

  /** ulvsadm ARGS against director i's ulvsd: stdout (throws with stderr on a non-zero exit). */
  adm(i: number, args: string[]): string {
    const r = spawnSync(process.execPath, [ULVSADM, ...args], { env: { ...process.env, ULVS_SOCKET: this.socket(i) }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`ulvsadm ${args.join(' ')} on director ${i + 1}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  /** Start stream.ts's checking client in the client namespace: `conns` connections to the VIP,
   *  each writing `chunk` bytes every `everyMs`. `lines` collects its JSON lines. */
  stream(conns: number, chunk: number, everyMs: number): { lines: Record<string, unknown>[]; proc: ChildProcess } {
    const proc = this.#spawn(this.net.client, [process.execPath, STREAM, '--connect', `${PAIR.VIP}:${PAIR.VPORT}`, '--conns', String(conns), '--chunk', String(chunk), '--every-ms', String(everyMs), '--drain-ms', '5000']);
    return { lines: jsonLines(proc), proc };
  }

  /** Director i's GET /v1/vrrp, or null when its ulvsd does not answer. */
  vrrp(i: number): Promise<VrrpView | null> {
    return this.api<VrrpView>(i, '/v1/vrrp');
  }

  /** GET `path` of director i's admin API as JSON, or null when its ulvsd does not answer 200. */
  api<T>(i: number, path: string): Promise<T | null> {
    return new Promise((resolve) => {
      const req = request({ socketPath: this.socket(i), path, timeout: 2000 }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          try {
            resolve(res.statusCode === 200 ? (JSON.parse(body) as T) : null);
          } catch {
            resolve(null);
          }
        });
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(null));
      req.end();
    });
  }

  /** Start, then wait for the settled pair: director 1 MASTER holding the VIP, director 2 BACKUP
   *  (as each ulvsd reports its VRRP group). Throws as waitRole/waitAddr do. */
  async startSettled(): Promise<this> {
    await this.start();
    await this.waitRole(0, 'MASTER');
    await this.waitRole(1, 'BACKUP');
    await this.waitAddr(0, PAIR.VIP);
    return this;
  }

  /** Resolve when director i's ulvsd reports group G_NAT in `state`; reject after `ms`. */
  async waitRole(i: number, state: string, ms = 30_000): Promise<number> {
    const t0 = Date.now();
    for (;;) {
      const v = await this.vrrp(i);
      if (v?.groups.find((g) => g.name === 'G_NAT')?.state === state) return Date.now() - t0;
      if (Date.now() - t0 > ms) throw new Error(`director ${i + 1}: G_NAT not ${state} within ${ms} ms (ulvsd says ${JSON.stringify(v?.groups)}):\n${this.logs[i]!.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Resolve when director i holds (or, with `held` false, no longer holds) `addr`. */
  async waitAddr(i: number, addr: string, held = true, ms = 30_000): Promise<number> {
    const t0 = Date.now();
    while (this.net.holds(i, addr) !== held) {
      if (Date.now() - t0 > ms) throw new Error(`director ${i + 1} ${held ? 'never got' : 'kept'} ${addr} within ${ms} ms:\n${this.logs[i]!.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return Date.now() - t0;
  }

  /** Start the probe (probe.ts) in the client namespace: it prints a line per answered connection. */
  probe(): { lines: Record<string, unknown>[]; proc: ChildProcess } {
    const proc = this.#spawn(this.net.client, [process.execPath, SCRIPTS.ulvsd.replace(/cli\/ulvsd\.js$/, 'lab/probe.js'), '--host', PAIR.VIP, '--port', String(PAIR.VPORT)]);
    return { lines: jsonLines(proc), proc };
  }

  /** `ulvs rs-setup ARGS` in real-server namespace ns; recorded for stop()'s --remove. */
  #rsSetup(ns: string, args: string[]): void {
    this.#prepared.push(ns);
    run(['ip', 'netns', 'exec', ns, process.execPath, ULVS, 'rs-setup', ...args]);
  }

  stop(): void {
    for (const p of this.procs) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
    // rs-setup's record of each namespace goes with --remove (the namespace itself goes below)
    for (const ns of this.#prepared.splice(0)) tryRun(['ip', 'netns', 'exec', ns, process.execPath, ULVS, 'rs-setup', '--remove']);
    this.net.down();
  }
}

export interface VrrpView {
  instances: { name: string; state: string | null; priority: number | null; group: string | null }[];
  groups: { name: string; state: string | null }[];
  syncDaemon: { interface: string; instance: string | null; syncId: number; role: string } | null;
  counters: Record<string, number>;
}

/** The JSON lines `proc` prints on stdout, collected as they arrive (a line split across reads
 *  is joined first). */
function jsonLines(proc: ChildProcess): Record<string, unknown>[] {
  const lines: Record<string, unknown>[] = [];
  let buf = '';
  proc.stdout!.on('data', (d: Buffer) => {
    const parts = (buf + d.toString()).split('\n');
    buf = parts.pop()!;
    for (const l of parts) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
  });
  return lines;
}
