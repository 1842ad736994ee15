/**
 * What ulvsd sets up in the kernel, over the functions of datapath/tun/{device,routing,capture,
 * fastpath,steering}.ts: the TUN queues, policy routing, tc capture, the fast path and the TUN's
 * way-out program, and the steering program that spreads connections over the workers.
 *
 *   install(rules, prior)  open the queues of the (persistent) TUN, then steering and routing
 *                    (throws SetupError: the caller calls remove()), then capture, fast path and
 *                    tun-out (each optional: a warning when unavailable). With `prior` (what the
 *                    previous process left, kept-state.ts) and its TUN still there, everything is
 *                    taken over by difference, without a moment where a packet meets no rule;
 *                    without, a crashed run's leftovers are cleared first.
 *   stageSteering / route   a rule change (ControlTargets of control-plane.ts)
 *   follow()         interfaces that appeared since: capture filters and fast path on them too
 *   remove(keep)     keep: close this process's fds only (a hand-over: TUN, routing, capture and
 *                    the fast path stay for the next process); else everything installed, in
 *                    reverse. Idempotent, never throws.
 * What is in place is recorded in the kept-state file after every change (kept-state.ts).
 *
 * Steering (several workers), decided per service by the program (steering.ts): connections of
 * services without persistence key on the client's address and port (one client's connections
 * spread over the workers); those of persistent services (and of services sharing a real-server
 * endpoint with one) on the client address under the persistence netmask, so a client network
 * stays in one worker and templates are exact. The program is fixed (bpf/steer.bpf.c); a rule
 * change writes only the changed entries of its map, never reloads it, and never changes the key
 * of a service whose own grouping stayed the same.
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import { isFwmarkKey } from '../core/service.js';
import type { Rules } from '../control/rules.js';
import { deleteLink, offloadNames, openTunQueue, setPersist } from '../datapath/tun/device.js';
import { captureDevices, followInterfaces, installCapture, removeCapture, updateCapture, type CaptureState } from '../datapath/tun/capture.js';
import { adoptFastPath, closeFd, dropPriorFastPath, fastPathIds, followFastPath, installFastPath, installTunOut, removeFastPath, type FastPathState, type PriorFastPath } from '../datapath/tun/fastpath.js';
import { leftFastPaths } from '../datapath/tun/left-fast-path.js';
import { adoptRouting, installRouting, removeRouting, updateRouting, type HostAddress, type RoutingPlan, type RoutingState } from '../datapath/tun/routing.js';
import { ownNetnsCookie, removeKept, writeKept, type KeptKernel } from './kept-state.js';
import { attachSteering, SteeringMap, steeringSpec } from '../datapath/tun/steering.js';
import { sys } from '../datapath/tun/sys.js';
import { fastPathShare, kernelSetupOptions, pauseKernelSetup } from './fast-path-share.js';
import { KsetupStats } from '../datapath/tun/ksetup-stats.js';
import { logRules } from './rules-log.js';
import { installTunMark, removeTunMark, type TunMark } from '../datapath/tun/tun-mark.js';
import type { Staged } from './control-plane.js';
import type { DaemonOptions } from './options.js';
import type { WorkerInit } from '../datapath/tun/worker-protocol.js';
import type { DaemonLog } from './log.js';
import { SynCookieGuard } from './syn-cookies.js';
import { SyncookieCounters } from '../datapath/tun/syncookie-map.js';
import { startFibLease, type FibLease } from './fib-lease.js';

/** A refusal at start-up: the daemon prints it and exits 1. */
export class SetupError extends Error {}

type KernelOptions = Pick<DaemonOptions, 'dev' | 'table' | 'pref' | 'workers' | 'offload' | 'capture' | 'fastPath' | 'fastPathAfter' | 'fastPathConns' | 'fastPathFlows' | 'kernelSetupAliveMs' | 'fastPathFib'>;

export class KernelSetup {
  plan: RoutingPlan;
  queues: ReturnType<typeof openTunQueue>[] = [];
  readonly #steering = new SteeringMap();
  #routing: RoutingState | undefined;
  #capture: CaptureState | null = null;
  /** the kernel fast path: maps, program, the interfaces it is attached on (link-less: it stays when ulvsd exits; remove() detaches it unless keeping) */
  #fastPath: FastPathState | null = null;
  /** the TUN's way-out program (bpf/tun_out.bpf.c) and its link */
  #tunOut: { progFd: number; link: number } | null = null;
  /** the TUN's egress program noting packets' firewall marks (tun-mark.ts) */
  #tunMark: TunMark | null = null;
  #removed = false;
  /** the fast path's maps were taken over from the previous process (not made by this one) */
  #fastPathAdopted = false;
  readonly #followWarned = new Set<string>();

  /** `keptPath`: where what is in place is recorded for the next process (kept-state.ts); null: nowhere */
  constructor(
    readonly o: KernelOptions,
    rules: Rules,
    readonly log: DaemonLog,
    readonly keptPath: string | null = null,
  ) {
    this.plan = this.planOf(rules);
  }

  planOf(r: Rules): RoutingPlan {
    return {
      dev: this.o.dev,
      table: this.o.table,
      pref: this.o.pref,
      services: r.services.filter((s) => !isFwmarkKey(s)).map((s) => ({ proto: s.proto, addr: s.addr, port: s.port })),
      // a fwmark service may take TCP and UDP: its servers' replies of both are captured
      servers: r.dests.flatMap((x) => (isFwmarkKey(x.service) ? [6, 17] : [x.service.proto]).map((proto) => ({ proto, addr: x.dest.addr, port: x.dest.port }))),
      marks: r.services.filter(isFwmarkKey).map((s) => s.addr >>> 0),
    };
  }

  /** See the file header. Throws SetupError with the operator's message. Returns whether the
   *  previous process's kernel side was taken over. */
  install(rules: Rules, prior: KeptKernel | null = null): boolean {
    const { plan, o, log } = this;
    let adopt = prior !== null && existsSync(`/sys/class/net/${plan.dev}`);
    if (adopt) {
      try {
        this.#openQueues();
      } catch (e) {
        // not a TUN with our flags (e.g. made by an older ulvsd): the device must be made again
        log.warn(`cannot reopen ${plan.dev} as left by the previous process (${(e as Error).message}): made anew, connections that were not offloaded will stall until their retransmissions`);
        adopt = false;
      }
    }
    if (!adopt) {
      if (prior?.fastPath) dropPriorFastPath(prior.fastPath);
      removeRouting(prior?.routing.plan ?? plan); // stale state from a crashed run
      removeCapture(prior?.capture?.pref ?? plan.pref);
      if (existsSync(`/sys/class/net/${plan.dev}`) && prior !== null) deleteLink(plan.dev); // persistent, left by the previous run
      // A crashed run's TUN outlives it briefly (the kernel tears its io_uring down asynchronously,
      // ~100 ms); attaching to a device on its way out would fail later, so wait for it (at most 3 s).
      for (let t = 0; t < 60 && existsSync(`/sys/class/net/${plan.dev}`); t++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50);
      try {
        this.#openQueues();
      } catch (e) {
        throw new SetupError(`cannot open TUN ${plan.dev}: ${(e as Error).message}`);
      }
    }
    try {
      setPersist(this.queues[0]!.fd, true);
    } catch (e) {
      log.warn(`${plan.dev} cannot be made persistent, a restart will lose the connections that are not offloaded: ${(e as Error).message}`);
    }
    try {
      this.stageSteering(rules)?.commit();
    } catch (e) {
      throw new SetupError(`steering program for ${o.workers} workers failed (run with --workers 1 to do without): ${(e as Error).message}`);
    }
    try {
      this.#routing = adopt ? adoptRouting(prior!.routing.plan, plan, prior!.routing.sysctls) : installRouting(plan);
    } catch (e) {
      throw new SetupError(`routing setup failed: ${(e as Error).message}`);
    }
    const priorCapture = adopt ? prior!.capture : null;
    if (o.capture === 'tc') {
      try {
        if (priorCapture) {
          const st: CaptureState = { ...priorCapture, filters: 0 };
          updateCapture(st, plan); // the new set under the other preference, then the old one deleted
          followInterfaces(st, plan);
          this.#capture = st;
        } else this.#capture = installCapture(plan);
        log.info(`capture: tc u32 filters on ${this.#capture.devices.join(', ') || 'no interface'} send service traffic into ${plan.dev} before routing (${this.#capture.filters} per interface, tc pref ${this.#capture.pref})`);
      } catch (e) {
        log.warn(`capture by tc unavailable, policy routing alone brings packets to ${plan.dev}: ${(e as Error).message.split('\n')[0]}`);
      }
    } else if (priorCapture) removeCapture(priorCapture.pref, { ...priorCapture, filters: 0 });
    this.#installTunMark();
    const left = this.#leftBehind(adopt ? (prior!.fastPath?.progId ?? 0) : null); // fast paths nobody recorded
    if (o.fastPath === 'tc') this.#installFastPath(adopt ? prior!.fastPath : left);
    else if (adopt && prior!.fastPath) dropPriorFastPath(prior!.fastPath);
    else if (left) dropPriorFastPath(left);
    const noFast = o.fastPath !== 'tc' ? 'ulvsd runs with --fast-path off' : 'it could not be installed (see the warnings at start)';
    this.synCookies = new SynCookieGuard(this.#fastPath?.maps.syncookieFd ?? null, noFast, (m) => log.info(m, 'config'));
    this.#record();
    const spec = this.#steering.spec;
    const W = o.workers;
    log.info(`${plan.dev} ${adopt ? 'taken over from the previous process' : 'up'}, ${W} queue${W > 1 ? `s (steered by client address and port${spec?.inbound.length ? `; by client network for ${spec.inbound.length} service${spec.inbound.length > 1 ? 's' : ''}` : ''})` : ''}, offloads ${offloadNames(this.queues[0]!.offloads).join(',') || 'none'}; rules ${plan.pref}-${plan.pref + 1}, table ${plan.table}`);
    logRules(log, rules);
    return adopt;
  }

  /** Open the workers' queues (all or none; throws). Always a multi-queue device, also for one
   *  worker: the persistent TUN is reopened by the next process, whose worker count may differ
   *  (TUNSETIFF refuses a change of IFF_MULTI_QUEUE on an existing device). */
  #openQueues(): void {
    try {
      for (let i = 0; i < this.o.workers; i++) this.queues.push(openTunQueue(this.plan.dev, { multiQueue: true, offload: this.o.offload }));
    } catch (e) {
      for (const x of this.queues) sys.close(x.fd);
      this.queues = [];
      throw e;
    }
  }

  /** Record what is in place for the next process (kept-state.ts); never throws. */
  #record(): void {
    if (this.keptPath === null || this.#removed) return;
    const fp = this.#fastPath;
    try {
      const c = this.#capture;
      writeKept(this.keptPath, {
        version: 1,
        pid: process.pid,
        workers: this.o.workers,
        netnsCookie: ownNetnsCookie(),
        routing: { plan: this.plan, sysctls: this.#routing?.sysctls ?? [] },
        capture: c ? { pref: c.pref, devices: c.devices, addedQdisc: c.addedQdisc } : null,
        fastPath: fp ? { ...fastPathIds(fp), slots: fp.maps.slots, attached: fp.attached } : null,
      });
    } catch (e) {
      this.log.warn(`cannot record the kernel state for the next start in ${this.keptPath}: ${(e as Error).message}`);
    }
  }

  /** SYN cookies: the fast path's service map, the mode and its refusals (syn-cookies.ts) */
  synCookies = new SynCookieGuard(null, 'not installed yet', () => undefined);
  #cookieCounters: SyncookieCounters | null = null;
  /** the fast path program's SYN-cookie and kernel set-up counters (empty without it) */
  synCookieCounters(): Record<string, number> {
    if (!this.#fastPath) return {};
    this.#cookieCounters ??= new SyncookieCounters(this.#fastPath.progFd);
    this.#ksetupStats ??= new KsetupStats(this.#fastPath.maps.kernel.kstatsFd);
    return { ...this.#cookieCounters.read(), ...this.synCookies.counters(), ...this.#ksetupStats.read(), ...this.#fibLease?.counters() };
  }
  #ksetupStats: KsetupStats | null = null;
  /** the fast path's route-lookup lease (fib-lease.ts); null with --fast-path-fib rules or without the fast path */
  #fibLease: FibLease | null = null;

  /** The fast path's maps taken over from the previous process (its offloaded connections are in them). */
  get fastPathAdopted(): boolean {
    return this.#fastPathAdopted;
  }

  get fastPathProgFd(): number { return this.#fastPath?.progFd ?? -1; } // the fast path program (-1 without it): kernel-tables-follower.ts finds its maps
  get fastPathMaps(): { flowsFd: number; slotsFd: number } | null { return this.#fastPath?.maps ?? null; } // the fast path's maps (null without it)
  pauseKernelSetup(): void { if (this.#fastPath) pauseKernelSetup(this.#fastPath.maps.kernel); } // at a stop, before the workers' last reading of their rings

  /**
   * The ulvs fast paths attached on the interfaces (left-fast-path.ts) other than the recorded
   * one (`recorded`: its program id; null when this start took nothing over from a record),
   * left by an earlier ulvsd whose record is not where this one looks (another --state-dir) or
   * was removed. Without a record, the first that no live process holds is returned, to be taken
   * over as after `kill -9` (its offloaded connections rebuilt from its flow map; with
   * --fast-path off, detached); any other one nobody holds is detached; one a live process holds
   * (another ulvsd on these interfaces) is left alone. Each is logged. Never throws.
   */
  #leftBehind(recorded: number | null): PriorFastPath | null {
    const { log, plan } = this;
    let take: PriorFastPath | null = null;
    const where = this.keptPath === null ? 'this start' : dirname(this.keptPath);
    for (const l of leftFastPaths(this.#capture?.devices ?? captureDevices(plan.dev))) {
      const on = `program ${l.progId} on ${l.attached.map((a) => a.dev).join(', ')}`;
      if (l.progId === recorded) continue;
      if (l.heldBy !== null) log.warn(`a ulvs fast path held by a running process (pid ${l.heldBy}) is attached here (${on}): left alone (another ulvsd on these interfaces?)`);
      else if (take === null && recorded === null) {
        take = l;
        log.warn(`a fast path an earlier ulvsd left attached (${on}) has no kept-state record in ${where} (was it started with another --state-dir?): ${this.o.fastPath === 'tc' ? 'taken over, its connections rebuilt from its flow map' : 'detached (--fast-path off), its offloaded connections are lost'}`);
      } else {
        dropPriorFastPath(l);
        log.warn(`another fast path an earlier ulvsd left attached (${on}) detached: its offloaded connections are lost`);
      }
    }
    return take;
  }

  #installFastPath(prior: PriorFastPath | null): void {
    const { plan, o, log } = this;
    const slots = Math.max(o.workers, o.fastPathConns);
    try {
      const devices = this.#capture?.devices ?? captureDevices(plan.dev);
      if (prior) {
        let why = `its maps are gone or hold ${prior.slots} slots, not ${slots}`;
        try {
          this.#fastPath = adoptFastPath(prior, slots, devices, kernelSetupOptions(this.o.workers, this.o.kernelSetupAliveMs, (m) => this.log.warn(m)));
        } catch (e) {
          why = (e as Error).message.split('\n')[0]!; // e.g. an upgrade whose maps have another layout
        }
        if (this.#fastPath) this.#fastPathAdopted = true;
        else {
          dropPriorFastPath(prior);
          log.warn(`the previous fast path cannot be taken over (${why}): its connections go back through the engine`);
        }
      }
      this.#fastPath ??= installFastPath(slots, devices, o.fastPathFlows || undefined, kernelSetupOptions(this.o.workers, this.o.kernelSetupAliveMs, (m) => this.log.warn(m))); // --fast-path-flows as given, else room for both slot ranges
      log.info(`fast path: established connections forwarded by a tc program on ${devices.join(', ') || 'no interface'} after ${o.fastPathAfter} packets, up to ${this.#fastPath.maps.slots} at once${this.#fastPathAdopted ? ', maps taken over from the previous process' : ''} (--fast-path off to keep every packet in user space)`);
    } catch (e) {
      log.warn(`kernel fast path unavailable, every packet goes through user space: ${(e as Error).message.split('\n')[0]}`);
    }
    if (this.#fastPath && o.fastPathFib === 'auto') this.#fibLease = startFibLease(this.#fastPath.progFd, () => this.plan, { info: (m) => log.info(m, 'config'), warn: (m) => log.warn(m) });
    try {
      this.#tunOut = installTunOut(plan.dev, this.#fastPath?.maps.flowsFd ?? -1);
      log.info(`fast path: packets leaving ${plan.dev} are sent by a tc program (route lookup, TTL, neighbour output) instead of crossing the IP stack`);
    } catch (e) {
      log.warn(`packets leaving ${plan.dev} cross the IP stack (tc program unavailable): ${(e as Error).message.split('\n')[0]}`);
    }
  }

  /** The TUN's egress program and its mark notes for the workers (tun-mark.ts). Never throws. */
  #installTunMark(): void {
    try {
      this.#tunMark = installTunMark(this.plan.dev);
    } catch (e) {
      this.log.warn(`firewall-mark services unavailable, the marks of packets entering ${this.plan.dev} cannot be read (tc program): ${(e as Error).message.split('\n')[0]}`);
    }
  }
  /** The mark notes' map for the workers (-1 without the program: fwmark services refused, data-path-limits.ts). */
  get marksFd(): number { return this.#tunMark?.marksFd ?? -1; }

  /** Why direct-routing servers cannot be carried (null: they can): the TUN's way out sends
   *  them by the entries the workers write into the fast path's flow map, so both must be installed. */
  get drUnavailable(): string | null {
    if (this.o.fastPath !== 'tc') return 'it needs the kernel fast path (--fast-path tc): its flow map tells the way out of the TUN where each connection goes';
    if (this.#fastPath === null || this.#tunOut === null) return `the kernel fast path or the way out of ${this.plan.dev} could not be installed (see the warnings at start)`;
    return null;
  }

  /** Worker i's share of the fast path (fast-path-share.ts); undefined without it. */
  fastPathShare(i: number): WorkerInit['fastPath'] {
    const m = this.#fastPath?.maps;
    return m ? fastPathShare(m, i, this.o.workers, this.o.fastPathAfter, !this.#fastPathAdopted) : undefined;
  }

  /** The steering map change `r` needs, computed, not written (may throw: nothing has changed);
   *  null if unchanged. The program is loaded by the first one and attached at its commit. */
  stageSteering(r: Rules): Staged | null {
    if (this.o.workers === 1) return null;
    const plan = this.#steering.prepare(steeringSpec(r.services, r.dests));
    if (plan === null) return null;
    return {
      commit: () => {
        const first = this.#steering.spec === null;
        this.#steering.apply(plan);
        if (first) attachSteering(this.queues[0]!.fd, this.#steering.progFd);
        else this.log.info(`steering map updated: by client network for ${plan.spec.inbound.length} service(s), ${plan.spec.outbound.length} real-server endpoint(s); by client address and port for the rest`, 'config');
      },
      discard: () => {},
    };
  }

  /** Policy rules and capture filters for the rules just applied; never throws. */
  route(next: Rules): { added: number; removed: number } {
    const nextPlan = this.planOf(next);
    let routes = { added: 0, removed: 0 };
    try {
      routes = updateRouting(this.plan, nextPlan);
    } catch (e) {
      this.log.warn(`routing update failed, policy rules may be out of date: ${(e as Error).message}`);
    }
    if (this.#capture) updateCapture(this.#capture, nextPlan);
    this.synCookies.apply(next); // the services whose SYNs the kernel answers (syn_cookies)
    this.plan = nextPlan;
    this.#fibLease?.changed(); // its VIP/real-server check is of the plan
    this.#record();
    return routes;
  }

  /** Whether the tc capture filters are installed (a local VIP needs them: checkHost). */
  get capturing(): boolean {
    return this.#capture !== null;
  }

  /** Whether follow() has anything to follow (capture or fast path installed). */
  get following(): boolean {
    return this.#capture !== null || this.#fastPath !== null;
  }

  /** Capture filters and the fast path on interfaces that appeared since the last call (`addrs`:
   *  the host's addresses, when the caller has just listed them); never throws. */
  follow(everyMs: number, addrs?: HostAddress[]): void {
    const { log } = this;
    const added = this.#capture ? followInterfaces(this.#capture, this.plan, addrs) : null;
    if (added?.length) log.info(`capture: tc u32 filters added on ${added.join(', ')}`);
    if (added !== null) this.#record();
    if (!this.#fastPath) return;
    const want = this.#capture?.devices ?? captureDevices(this.plan.dev, addrs);
    try {
      const attached = followFastPath(this.#fastPath, want);
      if (attached.length) log.info(`fast path: tc program attached on ${attached.join(', ')}`);
      if (attached.length) this.#record();
    } catch (e) {
      const key = want.join(',');
      if (!this.#followWarned.has(key)) log.warn(`fast path not attached on every interface of ${want.join(', ')} (tried again every ${everyMs / 1000} s): ${(e as Error).message.split('\n')[0]}`);
      this.#followWarned.add(key);
    }
  }

  /** Remove everything installed (fast path, tun-out, capture, routing, queues, steering), or,
   *  with `keep` (a hand-over), only close this process's fds (see the file header). `restore`:
   *  which of the sysctls found at start to set back (start-guard.ts: not the namespace's
   *  shared ones while another ulvsd runs here); all of them without it. */
  remove(keep = false, restore?: (own: [string, string][]) => [string, string][]): void {
    if (this.#removed) return;
    this.#removed = true;
    this.#fibLease?.stop();
    if (this.#fastPath) removeFastPath(this.#fastPath, keep);
    if (this.#tunOut) for (const fd of [this.#tunOut.link, this.#tunOut.progFd]) closeFd(fd);
    if (this.#tunMark) removeTunMark(this.#tunMark);
    if (!keep) {
      if (this.#capture) removeCapture(this.plan.pref, this.#capture);
      removeRouting(this.plan, this.#routing && restore ? { sysctls: restore(this.#routing.sysctls) } : this.#routing);
      try {
        if (this.queues[0]) setPersist(this.queues[0].fd, false); // the TUN goes with its last queue
      } catch {
        /* not persistent */
      }
      if (this.keptPath !== null) removeKept(this.keptPath);
    }
    for (const x of this.queues) sys.close(x.fd);
    this.#steering.close();
  }
}
