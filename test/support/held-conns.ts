/**
 * The test's side of hold-client.ts: start it in a client namespace, send it commands, await
 * its events. Test-only.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { LAB } from '../../src/lab/testbed.js';

const SCRIPT = fileURLToPath(new URL('./hold-client.js', import.meta.url));

export interface HeldConn {
  id: number;
  local: string;
  server: string;
  client: string;
}
export interface StreamEnd {
  ev: 'done' | 'stalled' | 'paused';
  id: number;
  bytes: number;
  ok?: boolean;
  error?: string;
}

export class HeldConns {
  readonly #p: ChildProcess;
  readonly #events: Record<string, unknown>[] = [];
  #waiters: (() => void)[] = [];
  #exited = false;
  #stderr = '';

  /** `thenBytes`: what each connection's second request (finish) downloads. */
  constructor(ns: string, o: { thenBytes?: number; sources?: string[]; port?: number } = {}) {
    const args = [SCRIPT, '--host', LAB.VIP, '--port', String(o.port ?? 80), '--then-bytes', String(o.thenBytes ?? 0)];
    if (o.sources?.length) args.push('--sources', o.sources.join(','));
    this.#p = spawn('ip', ['netns', 'exec', ns, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let buf = '';
    this.#p.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        this.#events.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
        buf = buf.slice(nl + 1);
        this.#wake();
      }
    });
    this.#p.stderr!.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    this.#p.on('exit', () => {
      this.#exited = true;
      this.#wake();
    });
  }

  #wake(): void {
    const w = this.#waiters;
    this.#waiters = [];
    for (const f of w) f();
  }

  /** Remove and return the first `n` events matching `pred`, waiting up to `ms` for them. */
  async take(pred: (e: Record<string, unknown>) => boolean, n = 1, ms = 60_000): Promise<Record<string, unknown>[]> {
    const t0 = Date.now();
    for (;;) {
      const hits = this.#events.filter(pred);
      if (hits.length >= n) {
        const out = hits.slice(0, n);
        for (const e of out) this.#events.splice(this.#events.indexOf(e), 1);
        return out;
      }
      if (this.#exited) throw new Error(`hold-client exited; waiting for ${n} events, have ${hits.length}: ${this.#stderr.slice(-2000)}`);
      const left = ms - (Date.now() - t0);
      if (left <= 0) throw new Error(`hold-client: ${hits.length} of ${n} events within ${ms} ms; stderr: ${this.#stderr.slice(-1000)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 1000));
        this.#waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  #send(cmd: object): void {
    this.#p.stdin!.write(`${JSON.stringify(cmd)}\n`);
  }

  async ready(): Promise<this> {
    await this.take((e) => e['ev'] === 'ready', 1, 30_000);
    return this;
  }

  /** Open n connections at once (each answered once, then held); the ones that failed are in `failed`. */
  async open(n: number, ms = 120_000): Promise<{ conns: HeldConn[]; failed: string[] }> {
    this.#send({ op: 'open', n });
    const [e] = await this.take((x) => x['ev'] === 'opened', 1, ms);
    return e as unknown as { conns: HeldConn[]; failed: string[] };
  }

  /** Let connections `ids` download (their second request); with pauseAt, wait until each paused. */
  async finish(ids: number[], pauseAt = 0, ms = 120_000): Promise<StreamEnd[]> {
    if (ids.length === 0) return [];
    this.#send({ op: 'finish', ids, pauseAt });
    const want = new Set(ids);
    const evs = await this.take((x) => want.has(Number(x['id'])) && (x['ev'] === (pauseAt ? 'paused' : 'done') || x['ev'] === 'done'), ids.length, ms);
    return evs as unknown as StreamEnd[];
  }

  /** Resume paused connections; each ends as done or (no byte for stallMs) stalled. */
  async resume(ids: number[], stallMs: number, ms = 120_000): Promise<StreamEnd[]> {
    if (ids.length === 0) return [];
    this.#send({ op: 'resume', ids, stallMs });
    const want = new Set(ids);
    const evs = await this.take((x) => want.has(Number(x['id'])) && (x['ev'] === 'done' || x['ev'] === 'stalled'), ids.length, ms);
    return evs as unknown as StreamEnd[];
  }

  /** Close every connection and end the program (idempotent). */
  async close(): Promise<void> {
    if (this.#exited) return;
    const gone = new Promise((r) => this.#p.once('exit', r));
    this.#send({ op: 'close' });
    const t = setTimeout(() => this.#p.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(t);
  }
}

/** How many connections each server answered: {rs1: n, ...}. */
export function countByServer(conns: { server: string }[]): Record<string, number> {
  const by: Record<string, number> = {};
  for (const c of conns) by[c.server] = (by[c.server] ?? 0) + 1;
  return by;
}
