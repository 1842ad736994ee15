/**
 * A data-path worker: owns one TUN queue and a Director, and loops
 *   read packets (virtio_net_hdr + IPv4) -> process() -> write them back / write ICMP / drop
 * with nothing allocated per packet. Two ways to move packets:
 *   io_uring (default where the kernel has multishot reads, 6.7+): the kernel reads packets into
 *     a ring of preallocated buffers; one io_uring_enter(2) per batch submits the batch's writes
 *     and collects the next packets (uring-loop.ts, over uring.ts); a ring that cannot be set
 *     up leaves the worker on system calls (--io auto), and one that fails while forwarding
 *     (io_uring_enter errors that do not pass: enter-failures.ts) makes it go on with them;
 *   syscalls: non-blocking read(2)/write(2) per packet, poll(2) when idle, one buffer.
 * Control messages (apply operations, snapshot, stop) arrive on a MessagePort that the loop
 * polls between batches with receiveMessageOnPort, so control work never runs inside a batch.
 *
 * With the kernel fast path (fastpath.ts), the engine offers established connections to it
 * through an Offloader (offloader.ts): queued map changes are flushed after each batch, before the
 * batch's writes go out, and the kernel's counts are folded into the engine every 0.5 s and
 * before any listing, reset or configuration change.
 *
 * Pass verdicts are written back unchanged (IPVS's "ACCEPT": the kernel routes them; the
 * `iif <tun> lookup main` rule, and `iif <tun> unreachable` after it, stop them from coming back). TCP segments to a service without
 * a connection (stray TCP) follow DirectorOptions.strayTcp = 'local': to a VIP that is a local
 * address now (the daemon keeps the engine's list current, setLocalAddresses) they are written
 * back, and the kernel delivers them to its own stack, which answers with a reset as it would
 * under IPVS (the way-out program finds the destination local and leaves it to the stack);
 * to any other VIP they are dropped (outcome drop_no_conn), since routing them on could send
 * them back to this host.
 *
 * Restarts (core/conn/handover.ts, core/carry-over.ts): connections and counters handed over
 * by the previous process arrive with WorkerInit and are imported before the first packet is
 * read; a `stop` for a hand-over folds the kernel's counts in once more and sends the table as
 * records and the carry-over with `stopped`, leaving the offloaded connections in the kernel
 * (any other stop takes them back first). The messages both ways are typed once, in
 * worker-protocol.ts; all state is one PacketWorker per thread, constructed from workerData.
 */
import { mapMarkNotes } from './tun-mark.js';
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { Director } from '../../core/director.js';
import { applyOps } from '../../core/rule-ops.js';
import { applySysctls } from '../../core/sysctl-names.js';
import { PacketFlag, Verdict } from '../../core/verdict.js';
import { holdingSlots } from '../../core/sched-state.js';
import { SEND_MAX } from '../../core/syn-proxy.js';
import { defaultRegistry } from '../../sched/index.js';
import { VNET_HDR_LEN, vnetGsoType, vnetNeedsCsum } from '../../wire/virtio.js';
import type { ImportResult } from '../../core/conn/handover.js';
import { exportCarry, importCarry } from '../../core/carry-over.js';
import type { CallHandlers, CallMessageOf, Calls, CallName, FromWorker, HandoverBatch, IoMode, ToWorker, WorkerInit } from './worker-protocol.js';
import { POLLIN, sys } from './sys.js';
import { EAGAIN, EINTR } from './syscalls.js';
import { Offloader } from './offloader.js';
import { KernelReportReader } from './kernel-report-reader.js';
import { syncCalls } from './worker-sync.js';
import { traceCalls, tracingSink } from './worker-trace.js';
import { PacketTrace } from '../../core/trace/packet-trace.js';
import { runUring, type UringHost } from './uring-loop.js';

export type { WorkerInit } from './worker-protocol.js';

/** how often the fast path's counts are folded into the engine (and before any listing), ms */
const HARVEST_MS = 500;
const SLOT = (1 << 16) + 512; // a GSO super-packet (<= 64 KiB) plus the virtio header
const BATCH = 64;

/** Data-path counters (the engine's own counters are in Director.counters()). */
const newCounters = () => ({ reads: 0, writes: 0, write_errors: 0, gso_packets: 0, csum_partial: 0, short_reads: 0, read_errors: 0, oversize: 0, batches: 0, no_buffers: 0, uring_enter_retries: 0, uring_fallbacks: 0, uring_sq_full: 0 });

export class PacketWorker {
  private readonly fd: number;
  private readonly port: MessagePort;
  private readonly d: Director;
  private readonly offloader: Offloader | null;
  /** kernel set-up: this worker's ring of the connections the fast path set up (null: off) */
  private readonly kreports: KernelReportReader | null = null;
  /** data-path counters, reported with the engine's by `counters` */
  readonly dp = newCounters();
  private readonly buf = Buffer.alloc(SLOT);
  private readonly icmpBuf = Buffer.alloc(VNET_HDR_LEN + Math.max(576, SEND_MAX)); // zero virtio header + generated ICMP or SYN-cookie segment
  private readonly pfd = Buffer.alloc(8); // struct pollfd
  /** --busy-poll: keep polling this long (ms) after the last packet before sleeping */
  private readonly busyPollMs: number;
  private lastHarvest = 0;
  private lastTick = 0;
  private running = true;
  private readySent = false;
  /** told to stop for a hand-over (worker-protocol.ts ToWorker) */
  private handover = false;
  /** what the import of the previous process's connections did (reported with `ready`) */
  private imported: ImportResult | undefined;
  /** `ulvsadm --trace` (worker-trace.ts): checked once per packet, recording only while on */
  private readonly trace = new PacketTrace();
  private harvestNow = 0;
  private readonly traceSink = tracingSink(() => this.d, this.trace, () => this.harvestNow);

  constructor(private readonly init: WorkerInit) {
    this.fd = init.fd;
    this.port = init.control;
    this.busyPollMs = init.busyPollUs / 1000;
    let offloader: Offloader | null = null; // made by the Director for its connection table
    const fastPath = init.fastPath;
    this.d = new Director({
      schedulers: defaultRegistry(),
      seed: init.seed,
      maxConns: init.maxConns,
      sharedState: init.sharedState,
      // a passed packet is written back and routed onward: a stray TCP segment passes only
      // to a local VIP (delivered to the host stack, which resets it), else it is dropped
      strayTcp: 'local',
      ...(init.sysctl && { sysctl: init.sysctl }),
      ...(fastPath && { offload: { port: (conns, dests) => (offloader = new Offloader(conns, fastPath, dests)), after: fastPath.after } }),
    });
    this.offloader = offloader;
    const k = fastPath?.kernel;
    const ring = fastPath?.kernelRing;
    if (offloader !== null && k && ring) this.kreports = new KernelReportReader({ ringFd: ring.fd, ringBytes: ring.bytes, flowsFd: fastPath!.flowsFd, freeFd: k.freeFd, slotBase: k.slotBase, slotCount: k.slotCount, aliveFd: ring.aliveFd, worker: ring.worker }, this.d.kernel, (offloader as Offloader).kernelSlotFree);
    if (init.marksFd !== undefined) this.d.marks = mapMarkNotes(init.marksFd);
    this.d.setLocalAddresses(init.localAddrs);
    holdingSlots(init.sharedState, () => applyOps(this.d, init.ops)); // the cursors set by the control plane stay
    if (init.carry) importCarry(this.d, init.carry);
    if (init.handover) {
      const h = init.handover;
      this.imported = this.d.importConns(Buffer.from(h.buf.buffer, h.buf.byteOffset, h.buf.byteLength), h.count, Math.floor(performance.now()));
      (this.offloader as Offloader | null)?.flush(); // the flow entries of the connections taken over, before any packet
    }
    this.pfd.writeInt32LE(init.fd, 0);
    this.pfd.writeInt16LE(POLLIN, 4);
  }

  private send(m: FromWorker): void {
    this.port.postMessage(m);
  }

  /** Run until stopped (or a fatal error, reported), then give back the fast path and say `stopped`. */
  run(): void {
    const init = this.init;
    const u = init.io === 'syscalls' ? null : runUring(this.uringHost, init.uringFault);
    if (u !== null && 'refused' in u && init.io === 'uring') this.send({ type: 'error', message: `io_uring unavailable: ${u.refused}` });
    else if (u === null || 'refused' in u) {
      this.announce('syscalls', u?.refused);
      this.loopSyscalls();
    } else if ('fellBack' in u) {
      // it was forwarding: go on without io_uring (also under --io uring) rather than stop
      this.dp.uring_fallbacks++;
      this.announce('syscalls', `failed while forwarding (${u.fellBack})`);
      this.loopSyscalls();
    } else if ('error' in u) this.send({ type: 'error', message: u.error });
    let handover: HandoverBatch | undefined;
    this.kreports?.drain(Math.floor(performance.now())); // what the kernel set up last: known before the hand-over or withdrawal
    if (this.handover) {
      // the kernel goes on forwarding what it has; the next process takes the slots over
      const now = Math.floor(performance.now());
      this.harvest(now);
      this.offloader?.flush();
      const x = this.d.exportConns(now);
      handover = { buf: x.buf, count: x.count };
    } else if (this.offloader) {
      this.d.withdrawAll();
      this.offloader.flush();
    }
    this.offloader?.close();
    this.kreports?.close();
    this.send({ type: 'stopped', engine: this.d.counters(), datapath: this.dp, ...(handover ? { handover, carry: exportCarry(this.d) } : {}) });
    this.port.close();
  }

  /** the fast path's counters, named fastpath_* among the data-path counters */
  private fastPathCounters(): Record<string, number> {
    if (this.offloader === null) return {};
    const out: Record<string, number> = { fastpath_active: this.offloader.active };
    for (const [k, v] of Object.entries(this.offloader.counters)) out[`fastpath_${k}`] = v;
    const ks = this.offloader.kernelCounters;
    if (ks) for (const [k, v] of Object.entries(ks)) out[`fastpath_${k}`] = v;
    if (this.kreports) Object.assign(out, this.kreports.counters());
    return out;
  }

  private harvest(now: number): void {
    if (this.offloader === null) return;
    if (this.kreports !== null && this.kreports.ready()) this.kreports.drain(now); // the connections the kernel set up, before their counts (listings, snapshots)
    this.harvestNow = now;
    this.offloader.harvest(this.trace.on ? this.traceSink : this.d);
    this.lastHarvest = now;
  }

  /**
   * Process the packet of n bytes (virtio header included) at `at` in `b`; returns true when it
   * is to be written back from where it is. ICMP replies are written at once (rare).
   */
  private verdict(b: Buffer, at: number, n: number, now: number): boolean {
    const dp = this.dp;
    const d = this.d;
    dp.reads++;
    // the connections the kernel set up before this packet was queued, first (kernel-report-reader.ts)
    if (this.kreports !== null && this.kreports.ready()) this.kreports.drain(now);
    if (n < VNET_HDR_LEN + 20) {
      dp.short_reads++;
      return false;
    }
    const partial = vnetNeedsCsum(b, at);
    if (partial) dp.csum_partial++;
    if (vnetGsoType(b, at) !== 0) dp.gso_packets++;
    const v = this.trace.on ? this.traced(b, at, n, now, partial) : d.process(b, at + VNET_HDR_LEN, n - VNET_HDR_LEN, now, partial ? PacketFlag.CsumPartial : 0);
    if (v === Verdict.Forward) return true;
    if (v === Verdict.Icmp || v === Verdict.Send) {
      d.icmpOut.copy(this.icmpBuf, VNET_HDR_LEN, 0, d.icmpLen);
      this.write(this.icmpBuf, VNET_HDR_LEN + d.icmpLen);
      return false;
    }
    return v === Verdict.Pass; // written back: the kernel routes or delivers it (stray TCP: strayTcp 'local')
  }

  /** process() with the trace's record of the packet before and after (a trace is on) */
  private traced(b: Buffer, at: number, n: number, now: number, partial: boolean): number {
    const off = at + VNET_HDR_LEN;
    this.trace.before(this.d, b, off, n - VNET_HDR_LEN);
    const v = this.d.process(b, off, n - VNET_HDR_LEN, now, partial ? PacketFlag.CsumPartial : 0);
    this.trace.after(this.d, b, off, v, now);
    return v;
  }

  private write(b: Buffer, n: number): void {
    if (sys.write(this.fd, b, n) === n) this.dp.writes++;
    else this.dp.write_errors++;
  }

  /** The answers to the control plane's calls (protocol.ts Calls), each typed by its call. */
  private readonly handlers: CallHandlers = {
    apply: ([ops]) => {
      // servers may go away or change: the engine decides again for every connection (taking
      // one back also counts what the kernel forwarded and restarts its timer)
      this.d.withdrawAll();
      this.offloader?.flush();
      applyOps(this.d, ops);
      // an edited tunnelling server's connections take its new tunnel type and port
      if (this.offloader && !this.d.sync.backupOnly && this.offloader.retunnel() > 0) this.offloader.flush(); // backup_only: no way-out entries
      return null;
    },
    // a listing first counts what the kernel forwarded (activity restarts timers), then lets
    // the timers collect what expired meanwhile, so counts and lists hold live entries only
    snapshot: (_, now) => {
      this.harvest(now);
      this.d.tick(now);
      return this.d.snapshot();
    },
    connections: (_, now) => {
      this.harvest(now);
      this.d.tick(now);
      return this.d.connections(now);
    },
    // the kernel's counts first (as a listing does), so an offloaded connection is seen live;
    // no tick: explain changes nothing, not even an expiry the next tick would do
    explain: ([q], now) => (this.harvest(now), this.d.explain(q, now)),
    timeouts: () => this.d.timeouts,
    setTimeouts: ([t]) => (this.d.setTimeouts(t), null),
    sysctls: () => ({ ...this.d.sysctl }),
    // a written defence mode takes effect at once (proc_do_defense_mode calls update_defense_level)
    setSysctls: ([s]) => this.bypassing(() => (applySysctls(this.d.sysctl, s), this.d.defense.update())),
    defend: ([memPages], now) => ({ changes: this.d.defend(memPages, now), status: this.d.defense.status() }),
    zero: ([service], now) => {
      this.harvest(now); // what the kernel forwarded before the reset is not counted after it
      this.d.zero(service);
      return null;
    },
    counters: () => ({ engine: this.d.counters(), datapath: { ...this.dp, ...this.fastPathCounters() }, sync: this.d.sync.counters() }),
    setLocalAddresses: ([addrs]) => {
      this.d.setLocalAddresses(addrs);
      return null;
    },
    ...traceCalls(this.trace),
    ...syncCalls(() => this.d, (m) => this.send(m), (change) => this.bypassing(change)),
  };

  /** Run a change; if it put backup_only in force or ended it (worker-sync.ts), the engine
   *  takes its connections back / stops or resumes routing DR and tunnelled tuples; flushed. */
  private bypassing(change: () => void): null {
    const was = this.d.sync.backupOnly;
    change();
    if (was !== this.d.sync.backupOnly) {
      this.d.sync.suspendRoutes(this.d.sync.backupOnly);
      this.offloader?.flush();
    }
    return null;
  }

  private call<K extends CallName>(msg: CallMessageOf<K>, now: number): Calls[K]['result'] {
    return this.handlers[msg.call](msg.args, now);
  }

  /** Answer the control messages waiting; false once told to stop. */
  private control(now: number): boolean {
    for (;;) {
      const m = receiveMessageOnPort(this.port);
      if (m === undefined) return true;
      const msg = m.message as ToWorker; // the port carries only ToWorker (protocol.ts)
      if (msg.type === 'stop') {
        this.handover = msg.handover === true;
        return false;
      }
      try {
        this.send({ type: 'reply', id: msg.id, result: this.call(msg, now) });
      } catch (e) {
        // validation happened in the control plane; errors here are reported, never partial
        this.send({ type: 'reply', id: msg.id, error: { code: (e as { code?: string }).code ?? 'internal', message: (e as Error).message } });
      }
    }
  }

  /** Timers and control messages, between batches. */
  private housekeeping(): void {
    const now = Math.floor(performance.now());
    if (this.kreports !== null) {
      if (this.kreports.ready()) this.kreports.drain(now);
      this.kreports.beat(now); // between batches: the kernel sets up connections while we read (kernel-report-reader.ts)
    }
    if (now - this.lastTick >= 100) {
      if (now - this.lastHarvest >= HARVEST_MS) this.harvest(now); // before the timers: activity restarts them
      this.d.tick(now);
      this.lastTick = now;
    }
    if (!this.control(now)) this.running = false;
  }

  private loopSyscalls(): void {
    const { fd, buf, dp } = this;
    while (this.running) {
      const now = Math.floor(performance.now());
      for (let k = 0; k < BATCH; k++) {
        const n = sys.read(fd, buf, SLOT);
        if (n > 0) {
          const fwd = this.verdict(buf, 0, n, now);
          this.offloader?.flush(); // before the packet goes on (offloader.ts)
          if (fwd) this.write(buf, n);
          continue;
        }
        const e = sys.errno();
        if (n < 0 && e !== EAGAIN && e !== EINTR) {
          dp.read_errors++;
          this.send({ type: 'error', message: `read: ${sys.strerror(e)}` });
          this.running = false;
        } else sys.poll(this.pfd, 1, 20);
        break;
      }
      this.housekeeping();
    }
  }

  /** What the io_uring loop (uring-loop.ts) needs of this worker. */
  private get uringHost(): UringHost {
    return {
      fd: this.fd,
      slot: SLOT,
      busyPollMs: this.busyPollMs,
      dp: this.dp,
      running: () => this.running,
      verdict: (b, at, n, now) => this.verdict(b, at, n, now),
      afterBatch: () => this.offloader?.flush(),
      housekeeping: () => this.housekeeping(),
      started: () => this.announce('uring'),
    };
  }

  /** Tell the control plane how this worker moves packets (the first time: that it is ready). */
  private announce(io: IoMode, reason?: string): void {
    this.send({ type: this.readySent ? 'io' : 'ready', io, ...(reason ? { reason } : {}), ...(!this.readySent && this.imported ? { imported: this.imported } : {}) });
    this.readySent = true;
  }
}

new PacketWorker(workerData as WorkerInit).run();
