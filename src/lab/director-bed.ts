/**
 * A running director in the test bed: real-server programs in every real-server namespace,
 * ulvsd in the director namespace with a rules file, and helpers to drive clients. Used by the
 * demo, the integration tests and the data-path benchmark. `stop()` always cleans up: it kills
 * what it started, waits for ulvsd to remove its routing, and deletes the namespaces.
 */
import { pathArgs } from './test-path.js';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from './shell.js';
import { LAB, TestBed, type TestBedOptions } from './testbed.js';

const dist = fileURLToPath(new URL('..', import.meta.url)); // dist/src/
export const SCRIPTS = {
  servers: join(dist, 'lab', 'servers.js'),
  client: join(dist, 'lab', 'client.js'),
  latency: join(dist, 'lab', 'latency.js'),
  flood: join(dist, 'lab', 'flood.js'),
  newConns: join(dist, 'lab', 'new-conns.js'),
  hostile: join(dist, 'lab', 'hostile.js'),
  stream: join(dist, 'lab', 'stream.js'),
  ulvsd: join(dist, 'cli', 'ulvsd.js'),
};

/** Resolve when `re` appears on the process's stdout; reject on exit or timeout. */
export function waitFor(p: ChildProcess, re: RegExp, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const done = (f: () => void) => {
      clearTimeout(timer);
      p.stdout?.off('data', onOut);
      p.stderr?.off('data', onErr);
      p.off('exit', onExit);
      f();
    };
    const onOut = (d: Buffer) => {
      out += d.toString();
      if (re.test(out)) done(() => resolve(out));
    };
    const onErr = (d: Buffer) => (err += d.toString());
    const onExit = (code: number | null) => done(() => reject(new Error(`process exited (${code}) before ${re}: ${err || out}`)));
    const timer = setTimeout(() => done(() => reject(new Error(`timeout waiting for ${re}: ${err || out}`))), ms);
    p.stdout?.on('data', onOut);
    p.stderr?.on('data', onErr);
    p.on('exit', onExit);
  });
}

export interface DirectorBedOptions extends TestBedOptions {
  /** rules in ipvsadm -S format */
  rules?: string;
  /** or a keepalived.conf (ulvsd --keepalived) */
  keepalived?: string;
  /** real-server programs: ports to listen on */
  httpPort?: number;
  udpPort?: number;
  /** HTTPS on this port with a certificate made by openssl at start (for SSL_GET) */
  httpsPort?: number;
  dnsPort?: number;
  ulvsdArgs?: string[];
  /** start ulvsd without --rules/--keepalived (an empty table, configured with ulvsadm) */
  noRules?: boolean;
  /** added to ulvsd's environment (e.g. NOTIFY_SOCKET) */
  ulvsdEnv?: Record<string, string>;
  /** the ulvsd to run (default this tree's dist/src/cli/ulvsd.js; another build's for an upgrade) */
  ulvsdScript?: string;
  /** run in the built test bed before ulvsd starts (e.g. give the director the VIP) */
  beforeDirector?: (bed: TestBed) => void;
}

export class DirectorBed {
  readonly bed: TestBed;
  readonly procs: ChildProcess[] = [];
  /** the real-server programs, by real-server index */
  readonly servers: (ChildProcess | null)[] = [];
  ulvsd: ChildProcess | null = null;
  readonly dir: string;
  readonly rulesFile: string;
  /** this director's admin socket (test beds run side by side on one file system) */
  readonly socket: string;
  ulvsdLog = '';

  constructor(readonly o: DirectorBedOptions) {
    this.bed = new TestBed(o);
    this.dir = mkdtempSync(join(tmpdir(), 'ulvs-'));
    this.rulesFile = join(this.dir, 'rules');
    this.socket = join(this.dir, 'ulvs.sock');
  }

  async start(): Promise<this> {
    this.bed.up();
    try {
      await Promise.all(this.bed.realServers.map((_, i) => this.startServer(i)));
      writeFileSync(this.rulesFile, this.o.keepalived ?? this.o.rules ?? '');
      this.o.beforeDirector?.(this.bed);
      await this.startDirector();
      return this;
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Start (again) the HTTP/UDP program of real server i. */
  async startServer(i: number): Promise<void> {
    const args = ['ip', 'netns', 'exec', this.bed.realServers[i]!, process.execPath, SCRIPTS.servers, '--name', `rs${i + 1}`];
    if (this.o.httpPort) args.push('--http', String(this.o.httpPort));
    if (this.o.udpPort) args.push('--udp', String(this.o.udpPort));
    if (this.o.dnsPort) args.push('--dns', String(this.o.dnsPort));
    if (this.o.httpsPort) {
      const key = join(this.dir, 'rs.key');
      const cert = join(this.dir, 'rs.crt');
      run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=ulvs-test', '-days', '1', '-keyout', key, '-out', cert]);
      args.push('--https', String(this.o.httpsPort), '--cert', cert, '--key', key);
    }
    const p = spawn(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(p);
    this.servers[i] = p;
    await waitFor(p, /ready/);
  }

  /** Stop the program of real server i (the host stays up: its ports now refuse). */
  async stopServer(i: number): Promise<void> {
    const p = this.servers[i];
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const gone = new Promise((r) => p.once('exit', r));
    p.kill('SIGKILL');
    await gone;
    this.servers[i] = null;
  }

  /** Resolve when ulvsd's log (from now on) matches `re`. */
  waitLog(re: RegExp, ms = 15_000): Promise<string> {
    return waitFor(this.ulvsd!, re, ms);
  }

  /** Start ulvsd (`script`: another build's dist/src/cli/ulvsd.js, for an upgrade). */
  async startDirector(script = this.o.ulvsdScript ?? SCRIPTS.ulvsd): Promise<string> {
    const source = this.o.keepalived !== undefined ? '--keepalived' : '--rules';
    // the state directory is the bed's own: beds run side by side, each with its own ulvs0
    const args = [...(this.o.noRules ? [] : [source, this.rulesFile]), '--socket', this.socket, '--state-dir', this.dir, ...pathArgs(), ...(this.o.ulvsdArgs ?? [])];
    const p = spawn('ip', ['netns', 'exec', this.bed.director, process.execPath, script, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(this.o.ulvsdEnv ? { env: { ...process.env, ...this.o.ulvsdEnv } } : {}) });
    this.ulvsd = p;
    p.stdout!.on('data', (d: Buffer) => (this.ulvsdLog += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (this.ulvsdLog += d.toString()));
    return waitFor(p, /forwarding/);
  }

  /** Run the client program in client namespace `i` and return its JSON lines. */
  client(args: string[], i = 0, timeoutMs = 60_000): Record<string, unknown>[] {
    const out = run(['timeout', String(Math.ceil(timeoutMs / 1000)), 'ip', 'netns', 'exec', this.bed.clients[i]!, process.execPath, SCRIPTS.client, '--host', LAB.VIP, ...args]);
    return out
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** As client(), without blocking the event loop (to act on the director meanwhile). */
  clientAsync(args: string[], i = 0): Promise<Record<string, unknown>[]> {
    const p = spawn('ip', ['netns', 'exec', this.bed.clients[i]!, process.execPath, SCRIPTS.client, '--host', LAB.VIP, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(p);
    let out = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    return new Promise((resolve, reject) => {
      p.on('exit', (code) => {
        if (code !== 0) return reject(new Error(`client exited ${code}: ${out}`));
        resolve(out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>));
      });
    });
  }

  /** Replace the rules file and make ulvsd reload it (SIGHUP); resolves on its log line. */
  async reload(rules: string): Promise<string> {
    writeFileSync(this.rulesFile, rules);
    const w = waitFor(this.ulvsd!, /reloaded|reload refused|reload failed/);
    this.ulvsd!.kill('SIGHUP');
    return w;
  }

  /** Ask ulvsd for its listing + counters (SIGUSR1) and return the text. */
  async dump(): Promise<string> {
    const p = this.ulvsd!;
    const before = this.ulvsdLog.length;
    const wait = waitFor(p, /end of dump/);
    p.kill('SIGUSR1');
    await wait;
    return this.ulvsdLog.slice(before);
  }

  /**
   * Resolve once ulvsd's log so far matches `re` (reject after `ms`). Tests that just saw an
   * effect through a synchronous call (spawnSync) use this: the log lines behind the effect may
   * still sit unread in the pipe.
   */
  async logged(re: RegExp, ms = 5000): Promise<void> {
    const t0 = Date.now();
    while (!re.test(this.ulvsdLog)) {
      if (Date.now() - t0 > ms) throw new Error(`ulvsd log did not match ${re} within ${ms} ms:\n${this.ulvsdLog.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Stop ulvsd gracefully (SIGTERM) and return its exit code. */
  async stopDirector(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    const p = this.ulvsd;
    if (!p || p.exitCode !== null || p.signalCode !== null) return p?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => p.once('exit', (c) => r(c)));
    p.kill(signal);
    const t = setTimeout(() => p.kill('SIGKILL'), 5000);
    const code = await exited;
    clearTimeout(t);
    return code;
  }

  async stop(): Promise<void> {
    try {
      await this.stopDirector();
    } catch {
      /* already gone */
    }
    for (const p of this.procs) p.kill('SIGKILL');
    this.bed.down();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
