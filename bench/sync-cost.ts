/**
 * What connection sync costs through the HA pair bed (issue 13: "the sync daemon's cost: CPU per
 * 10,000 new connections/s, bytes on the wire per connection"), measured with real packets:
 *
 *   node dist/bench/sync-cost.js [--seconds 10] [--rounds 3] [--connections 64]
 *
 * The pair of `ulvs lab up --pair` (src/lab/pair.ts: keepalived -P and ulvsd on each director,
 * the sync daemon driven by VRRP), nginx on the two real servers instead of the lab's Node
 * servers, and wrk in the client namespace making new HTTP connections (`Connection: close`,
 * one request each) through the VIP as fast as it can. Rounds alternate between
 *
 *   sync      the master's and the backup's sync daemons running (as VRRP started them)
 *   no-sync   both stopped with `ulvsadm --stop-daemon` (VRRP leaves them stopped until the
 *             next role change)
 *
 * and read, per round, each director's ulvsd CPU time (utime + stime of the whole process,
 * /proc/PID/stat, all threads) and the master's sync counters (bytes and records sent), divided
 * by the connections wrk completed. The sync daemon's cost is the master's CPU per connection
 * with sync minus without, plus the backup's CPU per connection with sync (without sync the
 * backup sees no packets: its CPU is the idle baseline, subtracted too). Kernel work (softirq
 * for the multicast datagrams) is not in any process's time and is not counted. Both directors,
 * nginx, wrk and the kernel share the machine's 2 cores: the connection rate is whatever the bed
 * reaches; "per 10,000 new connections/s" is the per-connection figure x 10,000.
 * Medians over rounds; the last line is JSON.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { processCpuTicks } from './machine-info.js';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pair } from '../src/lab/pair.js';
import { PAIR } from '../src/lab/pair-bed.js';
import { run } from '../src/lab/shell.js';
import { writeNginxConf } from './nginx-conf.js';
import { formatDaemons, type SyncDaemonStatus, type SyncState } from '../src/control/daemon-listing.js';

const { values: opts } = parseArgs({ options: { seconds: { type: 'string', default: '10' }, rounds: { type: 'string', default: '3' }, connections: { type: 'string', default: '64' } } });
const SECS = Number(opts.seconds);
const ROUNDS = Number(opts.rounds);
const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const TICK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** CPU seconds (user + system, all threads) the process has used. */
function cpuSeconds(pid: number): number {
  const [user, system] = processCpuTicks(pid);
  return (user + system) / TICK;
}


interface SyncCounters {
  /** the master's: UDP payload bytes and records sent */
  bytes: number;
  records: number;
  /** the backup's: records that created or updated an entry (a replaced one is also created) */
  applied: number;
}

type Counters = { sync: Record<string, number>; syncDaemon: Record<string, number> };
async function counters(pair: Pair, i: number): Promise<Counters> {
  let c: Counters | null = null;
  // the admin API answers within 2 s (Pair.api); on a loaded machine try a few times
  for (let t = 0; t < 5 && !c; t++) c = await pair.api<Counters>(i, '/v1/counters');
  if (!c) throw new Error(`director ${i + 1}'s ulvsd does not answer GET /v1/counters`);
  return c;
}
async function syncCounters(pair: Pair): Promise<SyncCounters> {
  const [m, b] = [await counters(pair, 0), await counters(pair, 1)];
  return { bytes: m.syncDaemon['sync_daemon_tx_bytes'] ?? 0, records: m.sync['sync_tx_Records'] ?? 0, applied: ['Created', 'CreatedUnbound', 'Updated'].reduce((n, k) => n + (b.sync[`sync_apply_${k}`] ?? 0), 0) };
}

interface Round {
  mode: 'sync' | 'no-sync';
  connections: number;
  rate: number;
  masterUsPerConn: number;
  backupUsPerConn: number;
  bytesPerConn: number;
  recordsPerConn: number;
  appliedPerConn: number;
}

function wrk(pair: Pair): { rate: number; requests: number } {
  const out = run(['ip', 'netns', 'exec', pair.net.client, 'wrk', '-t', '2', '-c', opts.connections!, '-d', `${SECS}s`, '-H', 'Connection: close', `http://${PAIR.VIP}:${PAIR.VPORT}/`]);
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const n = /(\d+) requests in/.exec(out);
  const errors = /Socket errors: (.*)/.exec(out);
  if (errors) log(`    wrk: ${errors[0]}`);
  return { rate: m ? Number(m[1]) : 0, requests: n ? Number(n[1]) : 0 };
}

async function round(pair: Pair, mode: Round['mode']): Promise<Round> {
  const [m, b] = [pair.ulvsd[0]!.pid!, pair.ulvsd[1]!.pid!];
  const c0 = await syncCounters(pair);
  const cpu0 = [cpuSeconds(m), cpuSeconds(b)];
  const w = wrk(pair);
  const cpu1 = [cpuSeconds(m), cpuSeconds(b)];
  const c1 = await syncCounters(pair);
  const n = Math.max(1, w.requests);
  const r: Round = {
    mode,
    connections: w.requests,
    rate: w.rate,
    masterUsPerConn: ((cpu1[0]! - cpu0[0]!) * 1e6) / n,
    backupUsPerConn: ((cpu1[1]! - cpu0[1]!) * 1e6) / n,
    bytesPerConn: (c1.bytes - c0.bytes) / n,
    recordsPerConn: (c1.records - c0.records) / n,
    appliedPerConn: (c1.applied - c0.applied) / n,
  };
  // the rounds measure what they claim: records went out with sync, none without
  if (mode === 'sync' ? r.recordsPerConn < 1 || r.appliedPerConn < 1 : r.recordsPerConn !== 0 || r.appliedPerConn !== 0) throw new Error(`${mode} round: ${r.recordsPerConn} sync records sent and ${r.appliedPerConn} applied per connection`);
  log(`  ${mode.padEnd(7)} ${w.requests} conns ${w.rate.toFixed(0)}/s  master ${r.masterUsPerConn.toFixed(2)} us/conn  backup ${r.backupUsPerConn.toFixed(2)} us/conn  sync ${r.bytesPerConn.toFixed(1)} B/conn ${r.recordsPerConn.toFixed(2)} records/conn (${r.appliedPerConn.toFixed(2)} applied)`);
  return r;
}

async function main(): Promise<void> {
  const need = ['wrk', 'nginx', 'keepalived'].filter((t) => !['/usr/bin', '/usr/sbin'].some((d) => existsSync(join(d, t))));
  if (need.length) {
    log(`installing ${need.join(' ')}`);
    run(['apt-get', 'install', '-y', '-qq', 'wrk', 'nginx-light', 'keepalived']);
  }
  const pair = new Pair({ prefix: `usc${process.pid % 10000}`, servers: 'none', track: 'none' });
  const nginx: ChildProcess[] = [];
  try {
    await pair.start();
    // as bench/datapath.ts: the client reuses ports quickly over the rounds' hundreds of thousands of connections
    run(['ip', 'netns', 'exec', pair.net.client, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
    run(['ip', 'netns', 'exec', pair.net.client, 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
    pair.net.realServers.forEach((ns, i) => nginx.push(spawn('ip', ['netns', 'exec', ns, 'nginx', '-c', writeNginxConf(join(pair.net.dir, `rs${i + 1}`), PAIR.RPORT)], { stdio: 'ignore' })));
    await pair.waitRole(0, 'MASTER');
    await pair.waitRole(1, 'BACKUP');
    // the daemons VRRP started (GET /v1/daemon), restarted with the same settings after no-sync rounds
    const running = async (i: number, state: SyncState) => (await pair.api<SyncDaemonStatus[]>(i, '/v1/daemon'))?.find((d) => d.state === state);
    let master: SyncDaemonStatus | undefined;
    let backup: SyncDaemonStatus | undefined;
    for (let t0 = Date.now(); !(master = await running(0, 'master')) || !(backup = await running(1, 'backup')); await new Promise((r) => setTimeout(r, 200))) if (Date.now() - t0 > 20_000) throw new Error('sync daemons did not start');
    log(`director 1: ${formatDaemons([master])}director 2: ${formatDaemons([backup])}`.trimEnd());
    const startArgs = (d: SyncDaemonStatus) => ['--start-daemon', d.state, '--mcast-interface', d.iface, '--syncid', String(d.syncid), '--sync-maxlen', String(d.maxlen), '--mcast-group', d.group, '--mcast-port', String(d.port), '--mcast-ttl', String(d.ttl)];
    const setSync = (on: boolean) => {
      if (on) {
        pair.adm(0, startArgs(master!));
        pair.adm(1, startArgs(backup!));
      } else {
        pair.adm(0, ['--stop-daemon', 'master']);
        pair.adm(1, ['--stop-daemon', 'backup']);
      }
    };
    log('warm-up');
    wrk(pair);
    const rounds: Round[] = [];
    let on = true;
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of ['sync', 'no-sync'] as const) {
        if ((mode === 'sync') !== on) setSync((on = mode === 'sync'));
        rounds.push(await round(pair, mode));
      }
    }
    const of = (mode: Round['mode'], k: keyof Omit<Round, 'mode'>) => median(rounds.filter((r) => r.mode === mode).map((r) => r[k] as number));
    const masterCost = of('sync', 'masterUsPerConn') - of('no-sync', 'masterUsPerConn');
    const backupCost = of('sync', 'backupUsPerConn') - of('no-sync', 'backupUsPerConn');
    const result = {
      bench: 'sync-cost',
      seconds: SECS,
      rounds: ROUNDS,
      conn_per_s_sync: Math.round(of('sync', 'rate')),
      conn_per_s_no_sync: Math.round(of('no-sync', 'rate')),
      master_us_per_conn_sync: +of('sync', 'masterUsPerConn').toFixed(3),
      master_us_per_conn_no_sync: +of('no-sync', 'masterUsPerConn').toFixed(3),
      backup_us_per_conn_sync: +of('sync', 'backupUsPerConn').toFixed(3),
      backup_us_per_conn_no_sync: +of('no-sync', 'backupUsPerConn').toFixed(3),
      master_cost_us_per_conn: +masterCost.toFixed(3),
      backup_cost_us_per_conn: +backupCost.toFixed(3),
      cpu_ms_per_s_at_10k_conn_per_s: +(((masterCost + backupCost) * 10_000) / 1000).toFixed(2),
      sync_bytes_per_conn: +of('sync', 'bytesPerConn').toFixed(1),
      sync_records_per_conn: +of('sync', 'recordsPerConn').toFixed(2),
      no_sync_bytes_per_conn: +of('no-sync', 'bytesPerConn').toFixed(1),
    };
    log(`sync costs the master ${masterCost.toFixed(2)} us and the backup ${backupCost.toFixed(2)} us of CPU per new connection: ${result.cpu_ms_per_s_at_10k_conn_per_s} ms of CPU per second at 10,000 new connections/s; ${result.sync_bytes_per_conn} B of sync payload per connection`);
    console.log(JSON.stringify(result));
  } finally {
    for (const p of nginx) p.kill('SIGKILL');
    pair.stop();
  }
}

main().catch((e) => {
  log(String(e?.stack ?? e));
  process.exit(1);
});
