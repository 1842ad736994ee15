/**
 * The data-path workers (datapath/tun/worker.ts), one per TUN queue, and typed calls into them
 * over the protocol of protocol.ts. Calls to every worker run side by side; listings and
 * counters add the workers' figures up.
 *
 * Contract: `call` resolves with the worker's result or rejects with an IpvsError carrying the
 * worker's code and message. Life-cycle news goes to `PoolEvents`, each at most once per
 * worker: `ready` once every worker forwards, `fatal` when a worker's loop ended with an error,
 * `died` when a thread crashed or exited without being told to stop, `stopped` once every
 * worker has answered `stop()`.
 */
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';
import type { ConnInfo, DirectorSnapshot, Sysctls, Timeouts } from '../core/director.js';
import type { DefenseStatus } from '../core/defense.js';
import { IpvsError } from '../core/errors.js';
import type { RuleOp } from '../core/rule-ops.js';
import type { ServiceKey } from '../core/service.js';
import { mergeSnapshots } from '../core/snapshot-merge.js';
import { defaultSysctls } from '../core/sysctl.js';
import type { ImportResult } from '../core/conn/handover.js';
import type { EngineCarry } from '../core/carry-over.js';
import type { CallMessageOf, CallName, Calls, FromWorker, HandoverBatch, ToWorker, WorkerInit } from '../datapath/tun/worker-protocol.js';

export interface PoolEvents {
  /** a worker's note, for the log (warn) */
  warn(msg: string): void;
  /** every worker forwards; `io` lists the packet I/O modes in use */
  ready(io: string[]): void;
  /** a worker's loop ended with an error; the daemon cannot forward on that queue any more */
  fatal(msg: string): void;
  /** a worker thread failed or exited unasked */
  died(msg: string): void;
  /** every worker has stopped after stop(); with stop(true), each worker's table as hand-over
   *  records and its carry-over (worker order) */
  stopped(handover: HandoverBatch[] | null, carries: EngineCarry[]): void;
  /** a finished datagram of worker i's sync master (daemon/sync-daemon.ts sends it) */
  syncDatagram?(i: number, datagram: Uint8Array): void;
}

/** Summed counters: engine and data path over all workers, and each worker's data path. */
export interface PoolCounters {
  engine: Record<string, number>;
  datapath: Record<string, number>;
  /** the engines' connection-sync counters, summed */
  sync: Record<string, number>;
  workers: Record<string, number>[];
  /** the flood defences over the engines as of the last second (daemon/defense-feed.ts;
   *  core/defense.ts mergeDefense), when the daemon runs them */
  defense?: DefenseStatus;
}

interface Handle {
  worker: Worker;
  port: MessagePort;
  pending: Map<number, (m: Extract<FromWorker, { type: 'reply' }>) => void>;
}

const sum = (xs: Record<string, number>[]) =>
  xs.reduce<Record<string, number>>((a, x) => {
    for (const [k, v] of Object.entries(x)) a[k] = (a[k] ?? 0) + v;
    return a;
  }, {});

export class WorkerPool {
  readonly #workers: Handle[];
  readonly #events: PoolEvents;
  #nextId = 1;
  #ready = 0;
  #stoppedCount = 0;
  #stopping = false;
  readonly #io: string[] = [];
  readonly #handover: HandoverBatch[] = [];
  readonly #carries: EngineCarry[] = [];
  /** what each worker imported of the previous process's connections (with `ready`) */
  readonly imported: ImportResult[] = [];
  /** the sysctls every engine holds, kept here for the main thread's readers (the sync
   *  daemon's sync_qlen_max per datagram): the start values, then each setSysctls */
  readonly sysctlNow: Sysctls;

  /**
   * One worker per TUN queue fd; `init(i)` gives worker i everything but its fd and port.
   * `script`: the worker's module (a test passes one that speaks the protocol without a TUN).
   */
  constructor(fds: number[], init: (i: number) => Omit<WorkerInit, 'fd' | 'control'>, events: PoolEvents, script: URL = new URL('../datapath/tun/worker.js', import.meta.url)) {
    this.#events = events;
    const inits = fds.map((_, i) => init(i));
    this.sysctlNow = defaultSysctls(inits[0]?.sysctl);
    this.#workers = fds.map((fd, i) => this.#spawn(script, i, { ...inits[i]!, fd }));
  }

  get size(): number {
    return this.#workers.length;
  }

  #spawn(script: URL, i: number, init: Omit<WorkerInit, 'control'>): Handle {
    const { port1, port2 } = new MessageChannel();
    const workerData: WorkerInit = { ...init, control: port2 };
    const worker = new Worker(script, { workerData, transferList: [port2] });
    const h: Handle = { worker, port: port1, pending: new Map() };
    port1.on('message', (m: FromWorker) => this.#onMessage(i, h, m));
    worker.on('error', (e) => this.#events.died(`worker ${i} failed: ${e.stack ?? e.message}`));
    worker.on('exit', () => {
      if (!this.#stopping) this.#events.died(`worker ${i} exited`);
    });
    return h;
  }

  #onMessage(i: number, h: Handle, m: FromWorker): void {
    switch (m.type) {
      case 'ready':
      case 'io':
        this.#io[i] = m.io;
        if (m.reason) this.#events.warn(`worker ${i}: packet I/O by read/write system calls: io_uring ${m.reason}`);
        if (m.type === 'ready' && m.imported) this.imported[i] = m.imported;
        if (m.type === 'ready' && ++this.#ready === this.#workers.length) this.#events.ready([...new Set(this.#io)]);
        return;
      case 'reply': {
        const settle = h.pending.get(m.id);
        h.pending.delete(m.id);
        settle?.(m);
        return;
      }
      case 'error':
        this.#events.fatal(`data path error (worker ${i}): ${m.message}`);
        return;
      case 'sync':
        this.#events.syncDatagram?.(i, m.datagram);
        return;
      case 'stopped':
        if (m.handover) this.#handover[i] = m.handover;
        if (m.carry) this.#carries.push(m.carry);
        if (++this.#stoppedCount === this.#workers.length) this.#events.stopped(this.#handover.length === this.#workers.length ? this.#handover : null, this.#carries);
        return;
    }
  }

  /** One call on worker i. */
  call<K extends CallName>(i: number, call: K, ...args: Calls[K]['args']): Promise<Calls[K]['result']> {
    const h = this.#workers[i]!;
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      h.pending.set(id, (m) => {
        if ('error' in m) reject(new IpvsError(m.error.code, m.error.message));
        // the reply with this id answers this call, so its result is this call's (protocol.ts)
        else resolve(m.result as Calls[K]['result']);
      });
      const msg: CallMessageOf<K> = { type: 'call', id, call, args };
      h.port.postMessage(msg);
    });
  }

  /** The same call on every worker (configuration changes, listings, counters). */
  all<K extends CallName>(call: K, ...args: Calls[K]['args']): Promise<Calls[K]['result'][]> {
    return Promise.all(this.#workers.map((_, i) => this.call(i, call, ...args)));
  }

  async apply(ops: RuleOp[]): Promise<void> {
    await this.all('apply', ops);
  }
  async snapshot(): Promise<DirectorSnapshot> {
    return mergeSnapshots(await this.all('snapshot'));
  }
  async connections(): Promise<ConnInfo[]> {
    return (await this.all('connections')).flat();
  }
  timeouts(): Promise<Timeouts> {
    return this.call(0, 'timeouts');
  }
  async setTimeouts(t: Partial<Timeouts>): Promise<void> {
    await this.all('setTimeouts', t);
  }
  /** the engines' sysctls (all hold the same values but the defence modes 1 and 2, which each
   *  engine writes back for itself: shown as 2 while any engine's defence is on, defense.ts) */
  async sysctls(): Promise<Sysctls> {
    const all = await this.all('sysctls');
    const top = (k: 'dropEntry' | 'dropPacket' | 'secureTcp') => Math.max(...all.map((s) => s[k]));
    return { ...all[0]!, dropEntry: top('dropEntry'), dropPacket: top('dropPacket'), secureTcp: top('secureTcp') };
  }
  /** every engine's flood defences, once a second: the host's MemAvailable in pages in */
  defend(memPages: number): Promise<Calls['defend']['result'][]> {
    return this.all('defend', memPages);
  }
  /** every worker's engine; values validated before (core/sysctl-names.ts), so none refuses */
  async setSysctls(s: Partial<Sysctls>): Promise<void> {
    await this.all('setSysctls', s);
    Object.assign(this.sysctlNow, s);
  }
  async zero(k?: ServiceKey): Promise<void> {
    await this.all('zero', k);
  }
  async counters(): Promise<PoolCounters> {
    const cs = await this.all('counters');
    return { engine: sum(cs.map((c) => c.engine)), datapath: sum(cs.map((c) => c.datapath)), sync: sum(cs.map((c) => c.sync)), workers: cs.map((c) => c.datapath) };
  }

  async setLocalAddresses(addrs: number[]): Promise<void> {
    await this.all('setLocalAddresses', addrs);
  }

  /** Tell every worker to stop (`handover`: for the next process, worker-protocol.ts); `stopped`
   *  follows once all have. Exits from now on are expected. */
  stop(handover = false): void {
    this.#stopping = true;
    const stop: ToWorker = { type: 'stop', handover };
    for (const h of this.#workers) h.port.postMessage(stop);
  }
}
