/**
 * The director daemon, assembled: rules (a file, or keepalived.conf with health checks), the
 * kernel set-up, the data-path workers, the control plane, the admin API on a Unix socket
 * (mode 0600) and, with --metrics, the HTTP texts.
 *
 *   start()   refuses clearly (DaemonError: message and exit status) when not root, when
 *             /dev/net/tun is missing, when the rules do not parse or validate (2), when a VIP is a
 *             local address without the tc capture (validate-rules.ts checkHost: 2 with --capture rules,
 *             1 when tc turned out unavailable), or when another
 *             ulvsd serves the socket or uses its TUN device, routing table or rule preferences in
 *             this network namespace (start-guard.ts); whatever it built before a refusal is removed again.
 *             Resolves once everything is set up; the workers report `forwarding with N workers`
 *             when they are.
 *
 * A VIP may be a local address at start or become one (or stop being one) while ulvsd runs:
 * every 2 s the host's addresses are read again (local-vips.ts); a change is logged and the
 * engines get the new list (stray TCP to a local VIP goes to the host stack, which resets it).
 *   stop(code, handover)  close the APIs, run keepalived's omega scripts, stop the workers; once
 *             they have stopped (at most 3 s), remove everything and exit(code) (exit(code || 1)
 *             when the workers did not stop in time). With `handover` (a restart or an upgrade:
 *             SIGUSR2, or SIGTERM with --keep-state) the workers' connections go to the state
 *             file and the kernel side stays for the next start (handover.ts, kept-state.ts).
 *   reload()  re-read the rules file or keepalived.conf; a refused one leaves the rules running.
 *   dump()    the ipvsadm-style listings and the counters (SIGUSR1).
 *   crash(e)  an uncaught exception: log it, remove everything, exit(1).
 *
 * Every configuration change (API, SIGHUP reload, health) goes through ControlPlane.mutate.
 * The connection-sync daemon (sync-daemon.ts) is started by the API or, in keepalived mode, by
 * the VRRP role (sync-role.ts). `exit` ends the process (process.exit; a test may pass another).
 */
import { rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { randomInt } from 'node:crypto';
import { IpvsError } from '../core/errors.js';
import { diffRules } from '../control/diff.js';
import { listServices } from '../control/listing.js';
import type { Rules } from '../control/rules.js';
import { readRules, saveRules } from './rules-file.js';
import { SchedStateSlots } from '../control/sched-slots.js';
import { tunAvailable } from '../datapath/tun/device.js';
import { ControlPlane } from './control-plane.js';
import { DaemonError } from './daemon-error.js';
import { validateRules as validate } from './validate-rules.js';
export { DaemonError };
import { checkDataPath, type DataPathCaps } from './data-path-limits.js';
import { hostAddresses, type HostAddress } from '../datapath/tun/routing.js';
import { Health } from './health.js';
import { startApiServers } from './api-servers.js';
import { EventRing, recordingLog } from './event-ring.js';
import { DaemonPressure } from './pressure.js';
import { KernelSetup, SetupError } from './kernel-setup.js';
import { checkHost } from './validate-rules.js';
import { hintedLog, withFix } from './setup-hints.js';
import { UnansweredWatch } from './unanswered-watch.js';
import type { DaemonLog } from './log.js';
import type { DaemonOptions } from './options.js';
import { LocalAddresses, logLocalChange, type LocalChange } from './local-vips.js';
import { importSummary, loadHandover, newHandoverCounters, saveHandover } from './handover.js';
import { restoreCarried, saveCarry, takeCarry, type Carried } from './carry-handover.js';
import { ulvsVersion } from './version.js';
import { statePaths, takeKept, type StatePaths } from './kept-state.js';
import { WorkerPool, type PoolCounters } from './worker-pool.js';
import { DefenseFeed } from './defense-feed.js';
import { cookieSample, SynCookieWatch } from './syn-cookie-auto.js';
import { VrrpFollower } from './vrrp-follower.js';
import { SyncDaemon, syncDaemonFor } from './sync-daemon.js';
import { SyncRoleDriver } from './sync-role.js';
import { defaultSyncQlenMax } from './sync-defaults.js';
import { ClaimError, guardStart, restoreFor, type Claims } from './start-guard.js';
import { KernelTableFollower } from './kernel-tables-follower.js';

/** How often the host's interfaces are compared for capture and fast path (one `ip addr`), ms. */
const FOLLOW_MS = 2000;

const vipsOf = (r: Rules) => r.services.map((s) => s.addr);

export class Daemon {
  readonly #o: DaemonOptions;
  /** what the data path can carry (direct routing needs the fast path's flow map and the TUN's
   *  way-out program): set from the options at start, then from what KernelSetup installed */
  readonly #caps: DataPathCaps = { dr: null };
  readonly #log: DaemonLog;
  readonly #exit: (code: number) => void;
  #health: Health | null = null;
  /** keepalived mode with a notify FIFO: the VRRP states and the sync daemon's role */
  #vrrp: VrrpFollower | null = null;
  /** the connection-sync daemon (after start), and in keepalived mode the VRRP role driving it */
  #sync: SyncDaemon | null = null;
  readonly #syncRole: SyncRoleDriver;
  #kernel: KernelSetup | null = null;
  #claims: Claims | null = null; // this process's TUN, table and preferences in the namespace (netns-claims.ts)
  readonly #local = new LocalAddresses();
  #pool: WorkerPool | null = null;
  /** the kernel set-up tables, following the rules the workers run (kernel-tables-follower.ts) */
  #tables: KernelTableFollower | null = null;
  #defense: DefenseFeed | null = null;
  #control: ControlPlane | null = null;
  #admin: Server | null = null;
  #metrics: Server | null = null;
  #ready = false;
  #stopping = false;
  #cleaned = false;
  #exitCode = 0;
  #handover = false;
  readonly #handoverCounters = newHandoverCounters();
  #pressure: DaemonPressure | null = null; // resource exhaustion: counters and log lines (pressure.ts)
  readonly #paths: StatePaths;
  readonly #events = new EventRing(); // the dashboard's recent events: every log line (event-ring.ts)

  /** systemd's readiness protocol (sd-notify.ts; a no-op outside a notify unit) */
  readonly #notify: (state: string) => void;

  constructor(o: DaemonOptions, log: DaemonLog, exit: (code: number) => void, notify: (state: string) => void = () => {}) {
    this.#o = o;
    this.#notify = notify;
    this.#log = log = recordingLog(log, this.#events);
    this.#exit = exit;
    this.#syncRole = new SyncRoleDriver(log, () => this.#health?.syncDaemon ?? null);
    this.#paths = statePaths(o.stateDir, o.dev);
  }

  /** The control plane (after start). */
  get control(): ControlPlane {
    if (!this.#control) throw new Error('ulvsd: not started');
    return this.#control;
  }

  async start(): Promise<void> {
    const o = this.#o;
    const log = this.#log;
    if (process.getuid?.() !== 0) throw new DaemonError(`must run as root (this is uid ${process.getuid?.()}): it creates a TUN device, policy routes and eBPF programs; run it with sudo or as the systemd service ulvsd`, 1);
    if (!tunAvailable()) throw new DaemonError('/dev/net/tun is missing: load the tun module (modprobe tun); in a container, pass the device in (e.g. docker run --device /dev/net/tun --cap-add NET_ADMIN)', 1);
    this.#caps.dr = o.fastPath === 'tc' ? null : 'it needs the kernel fast path (--fast-path tc): its flow map tells the way out of the TUN where each connection goes';
    // Alone with the TUN, table, preferences and socket in this namespace (start-guard.ts), before
    // the state files are taken and the rules loaded (keepalived mode opens the notify FIFO)
    const claims = await guardStart(o, (m) => log.info(m)).catch((e: Error) => Promise.reject(e instanceof ClaimError ? new DaemonError(e.message, 1) : e));
    this.#claims = claims;
    let rules: Rules, kept: ReturnType<typeof takeKept>, carried: ReturnType<typeof takeCarry>, initial: ReturnType<SchedStateSlots['assign']>;
    const slots = new SchedStateSlots(1 << 16); // rr/wrr cursors shared by the workers' engines: round robin exact across workers
    try {
      kept = takeKept(this.#paths, this.#handoverCounters, log); // a stale record goes first, with the files beside it
      carried = takeCarry(this.#paths.carry, this.#handoverCounters, log);
      rules = this.#loadRules(carried);
      initial = slots.assign(diffRules({ services: [], dests: [] }, rules)); // ENOSPC: more services than slots
    } catch (e) {
      claims.release(false); // nothing was changed: what the presence file holds stays right
      throw e instanceof IpvsError ? new DaemonError(`rules rejected: ${e.message}`, 1) : e;
    }

    const kernel = new KernelSetup(o, rules, hintedLog(log), this.#paths.kernel); // warnings with their fix (setup-hints.ts)
    this.#kernel = kernel;
    try {
      kernel.install(rules, kept);
      checkHost(rules, kernel.capturing); // tc may have been unavailable
      this.#caps.dr = kernel.drUnavailable;
      this.#caps.fwmark = kernel.marksFd < 0 ? `the program that reads packets' marks at ${o.dev}'s egress could not be installed (see the warnings at start)` : null;
      kernel.synCookies.start(o.sysctl.synCookies, rules); // IpvsError: refused (syn-cookies.ts)
      try {
        checkDataPath(rules, this.#caps); // DR servers need what was just installed
      } catch (e) {
        throw new SetupError((e as Error).message);
      }
      const ch = this.#pollLocal(rules);
      if (ch) logLocalChange(ch, kernel.capturing, log); // the workers start with this list
    } catch (e) {
      this.#cleanup();
      if (e instanceof SetupError || e instanceof IpvsError) throw new DaemonError(withFix(e.message), 1);
      throw e;
    }

    initial.commit();
    const handover = loadHandover({ connsPath: this.#paths.conns, rules, workers: o.workers, adoptedMaps: kernel.fastPathAdopted ? kernel.fastPathMaps : null, counters: this.#handoverCounters, log });
    const sysctl = { syncQlenMax: defaultSyncQlenMax(), ...o.sysctl, synCookies: kernel.synCookies.mode }; // the kernel's default needs the machine's memory
    const carry = carried && restoreCarried(carried, { ops: initial.ops, sharedState: slots.state, log });
    const tables = (this.#tables = KernelTableFollower.open(kernel.fastPathProgFd, initial.ops, rules, o.workers, (o.sysctl.kernelSetup ?? 0) === 1, log)); // publishes once the workers forward
    const pool = new WorkerPool(
      kernel.queues.map((q) => q.fd),
      (i) => {
        const fastPath = kernel.fastPathShare(i);
        return { seed: randomInt(0, 0x7fffffff), maxConns: Math.floor(o.maxConns / o.workers), ops: initial.ops, io: o.io, busyPollUs: o.busyPollUs, localAddrs: this.#local.addrs, sysctl, sharedState: slots.state, ...(kernel.marksFd >= 0 && { marksFd: kernel.marksFd }), ...(fastPath ? { fastPath } : {}), ...(handover?.[i]?.count ? { handover: handover[i] } : {}), ...(i === 0 && carry ? { carry } : {}) };
      },
      {
        warn: (msg) => log.warn(msg),
        ready: (io) => {
          const taken = importSummary(pool.imported);
          if (taken) log.info(taken);
          const services = (this.#control?.rules() ?? rules).services.length;
          log.info(`forwarding with ${o.workers} worker${o.workers > 1 ? 's' : ''} (ulvsd ${ulvsVersion()}, pid ${process.pid}, packet I/O: ${io.join(', ')}); ${services} service${services === 1 ? '' : 's'}${o.source.kind === 'none' ? ' (started without --rules: configure with ulvsadm)' : ''}; admin API on ${o.socket}`);
          this.#ready = true;
          tables.start(); // the engines have the rules: the kernel may set connections up and report them
          this.#notify(`READY=1\nSTATUS=forwarding with ${o.workers} worker${o.workers > 1 ? 's' : ''}, ${services} service${services === 1 ? '' : 's'}\nMAINPID=${process.pid}`);
          if (this.#health) void this.#applyHealth(); // health results that arrived during start-up
        },
        fatal: (msg) => {
          log.warn(msg);
          this.stop(1);
        },
        died: (msg) => {
          if (this.#cleaned) return;
          log.warn(msg);
          this.#cleanup();
          this.#exit(1);
        },
        syncDatagram: (i, dg) => this.#sync?.send(dg, i),
        stopped: (batches, carries) => {
          if (this.#handover) {
            if (batches) saveHandover(this.#paths.conns, batches, o.dev, this.#handoverCounters, log);
            saveCarry(this.#paths.carry, carries, this.#health?.byKey() ?? {}, log);
            this.#cleanup(true);
          } else {
            this.#cleanup();
            log.info('stopped, routing removed');
          }
          this.#exit(this.#exitCode);
        },
      },
    );
    this.#pool = pool;
    this.#defense = new DefenseFeed(pool, log).start(); // the flood defences' clock and memory
    new SynCookieWatch(kernel.synCookies, () => cookieSample(o.dev, () => kernel.synCookieCounters())).start(); // syn_cookies=2
    const cp = new ControlPlane(rules, { validate: (r) => (validate(r, kernel.capturing, this.#caps), kernel.synCookies.check(r)), stageSteering: (r) => kernel.stageSteering(r), applyOps: (ops) => pool.apply(ops), published: (ops, r) => tables.applied(ops, r), route: (r) => kernel.route(r), log: (s) => log.info(s, 'config') }, slots);
    this.#control = cp;
    const sync = syncDaemonFor(pool, () => cp.rules(), (m) => log.warn(m, 'sync'), (running) => tables.setBackupRunning(running));
    this.#sync = sync;
    this.#syncRole.attach(sync);

    const servers = startApiServers({ o, log, cp, pool, sync, synCookies: kernel.synCookies, kernelSetup: (on) => tables.setEnabled(on), kernelTracing: (on) => tables.setTracing(on), health: this.#health, vrrp: () => this.#vrrp, counters: () => this.#counters(pool), reload: () => this.reload(), events: () => this.#events.list(), onMetricsError: () => this.stop(1) });
    this.#metrics = servers.metrics;
    this.#admin = servers.admin;
    (this.#pressure = new DaemonPressure(o.dev, log, () => this.#health?.notRun ?? {})).follow(() => this.#stopping);
    const unanswered = new UnansweredWatch((m, f) => log.warn(m, 'unanswered', f)); // servers whose replies bypass the director
    let unansweredSeen = 0; // the engines' count; a snapshot (it harvests the fast path) only when it grew: unanswered-watch.ts
    setInterval(() => void (this.#stopping ? null : pool.counters().then(async (c) => (c.engine['unanswered'] ?? 0) !== unansweredSeen && ((unansweredSeen = c.engine['unanswered'] ?? 0), unanswered.observe(await pool.snapshot(), Date.now())), () => {})), FOLLOW_MS).unref();

    // Interfaces that appear after start (a VLAN, a bond brought up later) get the capture
    // filters and the fast path too, and VIPs that become local or stop being local are noticed;
    // the changes go through the same serial queue.
    setInterval(() => {
      if (this.#stopping) return;
      void cp.serial(async () => {
        if (this.#stopping) return;
        // one listing of the host's addresses serves both (each would run `ip addr` itself)
        const host = this.#hostAddresses();
        if (kernel.following) kernel.follow(FOLLOW_MS, host ?? undefined);
        const ch = host === null ? null : this.#pollLocal(cp.rules(), host);
        if (ch?.addrsChanged) await pool.setLocalAddresses(this.#local.addrs).catch((e: Error) => log.warn(`local addresses not given to the workers: ${e.message}`));
        if (ch) logLocalChange(ch, kernel.capturing, log); // after the workers have the list: the log says it is in effect
      });
    }, FOLLOW_MS).unref();
  }

  /** The workers' counters (their resource-exhaustion causes looked at: pressure.ts), with what this start found of the previous process (handover_*). */
  async #counters(pool: WorkerPool): Promise<PoolCounters> {
    const c = await pool.counters().then((x) => (this.#pressure?.observe(x.datapath), x));
    return { ...c, datapath: { ...c.datapath, ...this.#handoverCounters, ...this.#pressure?.counters(), ...this.#kernel?.synCookieCounters(), ...this.#tables?.counters() }, ...(this.#defense?.status ? { defense: this.#defense.status } : {}) };
  }

  /** The host's addresses (routing.ts hostAddresses); null when they cannot be listed (logged). Never throws. */
  #hostAddresses(): HostAddress[] | null {
    try {
      return hostAddresses();
    } catch (e) {
      this.#log.warn(`cannot list this host's addresses: ${(e as Error).message.split('\n')[0]}`);
      return null;
    }
  }

  /** Which VIPs are local now (local-vips.ts), from `host`, else its own listing; null when that fails (logged). */
  #pollLocal(r: Rules, host?: HostAddress[]): LocalChange | null {
    const addrs = host ?? this.#hostAddresses();
    return addrs === null ? null : this.#local.poll(vipsOf(r), addrs.map((a) => a.addr));
  }

  /** The initial rules (keepalived mode: with the health `carried` over); a refusal is a DaemonError with status 2. */
  #loadRules(carried: Carried | null): Rules {
    const { source } = this.#o;
    try {
      const tc = this.#o.capture === 'tc'; // checked again once the capture is in place
      if (source.kind === 'none') return { services: [], dests: [] }; // as loading ip_vs: an empty table
      if (source.kind === 'rules') return readRules(source.file, tc, this.#caps);
      const health = new Health(
        source.file,
        this.#log,
        () => {
          if (this.#ready) void this.#applyHealth(); // before that, the reconciliation at start-up covers it
        },
        this.#o.configId,
      );
      this.#health = health;
      const cfg = health.read();
      health.watch(cfg, carried?.health);
      const rules = health.desired().rules;
      validate(rules, tc, this.#caps);
      this.#vrrp = VrrpFollower.start(cfg.vrrp, this.#log, this.#syncRole); // the notify FIFO: created if missing, opened
      return rules;
    } catch (e) {
      this.#health?.stop();
      throw new DaemonError((e as Error).message, 2);
    }
  }

  /** Bring the rules to what health and quorum want now (evaluated inside the serial section). */
  async #applyHealth(): Promise<void> {
    try {
      await this.control.mutate(this.#health!.mutation());
    } catch (e) {
      this.#log.warn(`health change not applied: ${(e as Error).message}`, 'health');
    }
  }

  async reload(): Promise<string> {
    const { source } = this.#o;
    if (source.kind === 'none') throw new Error('ulvsd was started without --rules or --keepalived: there is no file to re-read (the rules are changed with ulvsadm; restart with --rules FILE to use one)');
    const health = this.#health;
    if (health) {
      const cfg = health.read(); // throws: running configuration unchanged
      validate(health.desiredFor(cfg), this.#kernel?.capturing ?? false, this.#caps);
      if (this.#vrrp && cfg.vrrp.notifyFifo !== null) this.#vrrp.reload(cfg.vrrp, this.#log); // throws: unchanged
      else if (!this.#vrrp) this.#vrrp = VrrpFollower.start(cfg.vrrp, this.#log, this.#syncRole);
      else this.#log.warn('notify_fifo was removed from the configuration: ulvsd keeps following the FIFO it has open until it restarts', 'vrrp');
      health.watch(cfg);
      this.#syncRole.reconfigure(); // a changed lvs_sync_daemon line: at once, in the current role
      await this.#applyHealth();
    } else await this.control.replace(readRules(source.file, this.#kernel?.capturing ?? false, this.#caps));
    const msg = `reloaded ${source.file}`;
    this.#notify('READY=1'); // after ulvsd.ts's RELOADING=1 (systemd's ExecReload=kill -HUP)
    this.#log.info(msg);
    return msg;
  }

  async dump(): Promise<string> {
    const pool = this.#pool!;
    const snap = await pool.snapshot();
    const c = await this.#counters(pool); // as /metrics has them: hand-over, pressure, SYN cookies, defences
    const nonzero = (o: Record<string, number>) => Object.entries(o).flatMap(([k, v]) => (v !== 0 ? [`${k}=${v}`] : [])).join(' ');
    const flat = (o: object, pre = ''): string[] => Object.entries(o).flatMap(([k, v]) => (typeof v === 'object' && v !== null ? flat(v as object, `${pre}${k}.`) : [`${pre}${k}=${String(v)}`]));
    const defense = c.defense ? `; defense ${flat(c.defense).join(' ')}` : '';
    return `${listServices(snap, 'default')}${listServices(snap, 'stats')}ulvsd: connections ${snap.connections}; engine ${nonzero(c.engine)}; datapath ${nonzero(c.datapath)}${defense}\nulvsd: end of dump\n`;
  }

  get stopping(): boolean {
    return this.#stopping;
  }

  /** See the file header; `handover`: leave the connections and the kernel side to the next start. */
  stop(code: number, handover = false): void {
    this.#exitCode = code;
    if (this.#stopping) return;
    this.#stopping = true;
    this.#claims?.markStopping(); // a start meanwhile waits for this one to finish
    this.#handover = handover;
    this.#notify('STOPPING=1');
    if (!handover && this.#o.saveOnStop !== null && this.#control) {
      try {
        saveRules(this.#o.saveOnStop, this.#control.rules());
        this.#log.info(`rules saved to ${this.#o.saveOnStop} (--save-on-stop)`);
      } catch (e) {
        this.#log.warn((e as Error).message);
      }
    }
    this.#admin?.close();
    this.#metrics?.close();
    this.#health?.stop();
    this.#defense?.stop();
    this.#kernel?.pauseKernelSetup(); // no connection made in the kernel that no worker reads of
    this.#pool?.stop(handover);
    setTimeout(() => {
      this.#cleanup(handover); // a hand-over without the file: the next start rebuilds from the kernel
      this.#exit(code || 1);
    }, 3000).unref();
  }

  crash(e: Error): void {
    this.#log.warn(e.stack ?? e.message);
    this.#cleanup();
    this.#exit(1);
  }

  /** Remove what the kernel set-up installed (`keep`: close this process's fds only) and the
   *  admin socket; idempotent, never throws. */
  #cleanup(keep = false): void {
    if (this.#cleaned) return;
    this.#cleaned = true;
    this.#vrrp?.stop();
    this.#syncRole.close();
    this.#sync?.close();
    this.#tables?.close(); // before the fast path's maps go
    this.#kernel?.remove(keep, this.#claims && !keep ? restoreFor(this.#claims) : undefined);
    rmSync(this.#o.socket, { force: true }); // absent when not created yet
    this.#claims?.release(!keep); // last: nothing of ours is left for another ulvsd to meet
  }
}
