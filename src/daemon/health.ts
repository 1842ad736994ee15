/**
 * keepalived mode: the virtual_server blocks of a keepalived.conf, their health checkers
 * (src/health), quorum, and the notify/quorum/omega scripts.
 *
 * Contract: every health transition is logged with its reason (kind `health`) and its script
 * started, then `onChange()` is called; the daemon answers with `mutation()` through the control
 * plane, which evaluates the desired rules (and logs quorum changes, starting their scripts)
 * inside the serial section, so a health change never overwrites a change applied meanwhile.
 * Scripts run detached through /bin/sh; a script that cannot start is logged, never thrown.
 */
import { spawn } from 'node:child_process';
import { loadKeepalived, type KeepalivedConfig } from '../control/keepalived/config.js';
import { desiredRules, omegaScripts, rsKey, vsKey, type QuorumChange } from '../control/keepalived/desired.js';
import type { Rules } from '../control/rules.js';
import { runCheck } from '../health/checks.js';
import { HealthMonitor, type ServerHealth } from '../health/monitor.js';
import { formatIPv4 } from '../wire/addr.js';
import type { DaemonLog } from './log.js';

/** Health and quorum as the metrics report them. */
export interface HealthStates {
  health: { proto: number; vaddr: number; vport: number; raddr: number; rport: number; up: boolean }[];
  /** `sorry`: the service's sorry_server (port 0: the service's port), null when none */
  quorum: { proto: number; vaddr: number; vport: number; up: boolean; sorry: { addr: number; port: number } | null }[];
}

export class Health {
  #cfg: KeepalivedConfig | null = null;
  #monitor: HealthMonitor | null = null;
  readonly #quorum = new Map<string, boolean>();
  /** checks that did not run for want of this director's resources, by errno name (health/monitor.ts) */
  readonly notRun: Record<string, number> = {};
  /** the health when stop() was called (the monitor is gone after it) */
  #atStop: Record<string, ServerHealth> | null = null;

  constructor(
    readonly file: string,
    readonly log: DaemonLog,
    readonly onChange: () => void,
    /** decides the conditional lines (@ID, @^ID) */
    readonly configId?: string,
  ) {}

  /** The `@ulvs lvs_sync_daemon` line of the configuration watched now, if any. */
  get syncDaemon(): KeepalivedConfig['vrrp']['syncDaemon'] {
    return this.#cfg?.vrrp.syncDaemon ?? null;
  }

  /** Read and check the configuration (throws: nothing changes), logging its warnings. */
  read(): KeepalivedConfig {
    const cfg = loadKeepalived(this.file, undefined, this.configId);
    for (const w of cfg.warnings) this.log.warn(`keepalived.conf: ${w}`, 'config');
    return cfg;
  }

  /** Start (or restart, keeping the health of servers that are still configured) the monitor.
   *  `carried`: the health the previous process handed over (carry-handover.ts), for the first
   *  start: a server that was up starts up, as it was, instead of as keepalived starts it
   *  (`alpha`: down until a check passes), so its connections are taken over. */
  watch(cfg: KeepalivedConfig, carried?: ReadonlyMap<string, ServerHealth>): void {
    const old = this.#monitor;
    const previous = new Map<string, ServerHealth>(old ? [] : (carried ?? []));
    if (old) for (const v of this.#cfg?.services ?? []) for (const r of v.realServers) {
      const h = old.health(rsKey(v, r));
      if (h) previous.set(rsKey(v, r), h);
    }
    old?.stop();
    const monitor = new HealthMonitor(runCheck, (key, h) => this.#onHealth(key, h), undefined, this.notRun);
    this.#monitor = monitor;
    for (const v of cfg.services) for (const r of v.realServers) monitor.add(rsKey(v, r), r.checkers, r.alpha, previous.get(rsKey(v, r)));
    this.#cfg = cfg;
  }

  /** The rules health and quorum want now; updates the quorum state and returns its changes. */
  desired(): { rules: Rules; changes: QuorumChange[] } {
    return desiredRules(this.#cfg!, (k) => this.#monitor!.health(k), this.#quorum);
  }

  /** What `cfg` would want with the present health, without touching the quorum state (reload's check). */
  desiredFor(cfg: KeepalivedConfig): Rules {
    return desiredRules(cfg, (k) => this.#monitor?.health(k), new Map(this.#quorum)).rules;
  }

  /** A control-plane mutation to the desired rules; logs the quorum changes it makes. */
  mutation(): (current: Rules) => Rules {
    return () => {
      const { rules, changes } = this.desired();
      this.#logQuorum(changes);
      return rules;
    };
  }

  states(): HealthStates {
    const services = this.#cfg?.services ?? [];
    return {
      health: services.flatMap((v) => v.realServers.map((r) => ({ proto: v.proto, vaddr: v.addr, vport: v.port, raddr: r.addr, rport: r.port, up: this.#monitor?.health(rsKey(v, r))?.alive ?? true }))),
      quorum: services.map((v) => ({ proto: v.proto, vaddr: v.addr, vport: v.port, up: this.#quorum.get(vsKey(v)) ?? true, sorry: v.sorryServer ?? null })),
    };
  }

  /** Each real server's health by key (rsKey), as it is now or was at stop(): what a restart
   *  hands to the next process. */
  byKey(): Record<string, ServerHealth> {
    if (this.#atStop) return this.#atStop;
    const out: Record<string, ServerHealth> = {};
    for (const v of this.#cfg?.services ?? []) for (const r of v.realServers) {
      const h = this.#monitor?.health(rsKey(v, r));
      if (h) out[rsKey(v, r)] = h;
    }
    return out;
  }

  /** At shutdown: run the omega scripts, stop the checkers. */
  stop(): void {
    this.#atStop ??= this.byKey();
    const cfg = this.#cfg;
    const monitor = this.#monitor;
    if (cfg && monitor) for (const cmd of omegaScripts(cfg, (k) => monitor.health(k), this.#quorum)) this.#runScript(cmd);
    monitor?.stop();
  }

  #runScript(cmd: string | undefined): void {
    if (!cmd) return;
    try {
      spawn('/bin/sh', ['-c', cmd], { detached: true, stdio: 'ignore' }).unref();
    } catch (e) {
      this.log.warn(`script ${cmd}: ${(e as Error).message}`);
    }
  }

  #onHealth(key: string, h: ServerHealth): void {
    for (const v of this.#cfg?.services ?? []) for (const r of v.realServers) {
      if (rsKey(v, r) !== key) continue;
      const service = `${v.proto === 6 ? 'TCP' : 'UDP'} ${formatIPv4(v.addr)}:${v.port}`;
      const server = `${formatIPv4(r.addr)}:${r.port}`;
      const action = h.alive ? 'added' : r.inhibitOnFailure ? 'weight 0 (inhibit_on_failure)' : 'removed';
      this.log.info(
        `health: real server ${server} of ${service} is ${h.alive ? 'up' : 'down'}${h.dynamicWeight !== undefined ? ` (weight ${h.dynamicWeight})` : ''}: ${h.reason} -> ${action}`,
        'health',
        { service, server, state: h.alive ? 'up' : 'down', reason: h.reason, action, ...(h.dynamicWeight !== undefined ? { weight: h.dynamicWeight } : {}) },
      );
      this.#runScript(h.alive ? r.notifyUp : r.notifyDown);
    }
    this.onChange();
  }

  #logQuorum(changes: QuorumChange[]): void {
    for (const c of changes) {
      this.log.info(
        `quorum ${c.up ? 'gained' : 'lost'} for ${formatIPv4(c.vs.addr)}:${c.vs.port} (alive weight ${c.weight}, quorum ${c.vs.quorum}, hysteresis ${c.vs.hysteresis})${!c.up && c.vs.sorryServer ? `: sorry server ${formatIPv4(c.vs.sorryServer.addr)}:${c.vs.sorryServer.port || c.vs.port} takes over` : ''}`,
        'quorum',
        { service: `${formatIPv4(c.vs.addr)}:${c.vs.port}`, state: c.up ? 'up' : 'down', aliveWeight: c.weight },
      );
      this.#runScript(c.up ? c.vs.quorumUp : c.vs.quorumDown);
    }
  }
}
