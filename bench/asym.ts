/**
 * The asymmetric benchmark (`npm run bench -- --tests asym`): small requests, large replies,
 * through ulvs by VS/NAT and by VS/DR in one run, on one test bed (1 client, director, 3 real
 * servers running nginx, which serves a 1 MiB body at /1m).
 *
 *   ulvs         ulvsd, VIP:80 -> RS:80 -m (NAT: requests and replies both cross ulvs)
 *   ulvs-dr      ulvsd, VIP:80 -> RS:80 -g (DR), replies straight to the client: every real
 *                server has a second link to the client namespace (retI <-> ret0) and a source
 *                policy route (`from VIP lookup 4201`: 198.51.100.0/24 dev ret0), so only
 *                replies from the VIP use it (NAT replies, from the server's own address, still
 *                go to the director, as NAT needs)
 *   ulvs-nofp    NAT with --fast-path off: ulvsd itself carries every packet both ways (what a
 *                user-space NAT director costs without the kernel fast path)
 *   ulvs-dr-fwd  the same DR service without that policy rule: replies go to the real servers'
 *                default gateway, the director, whose kernel forwards them (not ulvs)
 *
 * The real servers are DR-ready for every set-up (VIP /32 on lo, arp_ignore=1, arp_announce=2):
 * NAT rewrites the destination to the server's own address and is not affected.
 * Measurement (each --seconds): wrk, 2 threads, 64 connections, `Connection: close` (one new
 * connection per request), GET /1m (a request of about 100 bytes, a reply of 1 MiB + headers).
 * Figures: client throughput (Gbit/s, from wrk's bytes read), busy CPU seconds of the whole
 * machine (/proc/stat: client, director, servers, all on the 2 cores) per GB and per 1,000
 * connections, and ulvsd's own CPU seconds (utime + stime, its workers are threads) per GB and
 * per 1,000 connections. Median of --rounds. Writes bench/results/<date>-asym.md and .json;
 * last line: JSON with the figures and the ratios DR/NAT.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../src/lab/shell.js';
import { LAB, TestBed } from '../src/lab/testbed.js';
import { SCRIPTS, waitFor } from '../src/lab/director-bed.js';
import { median } from './report.js';

export const ASYM_SETUPS = ['ulvs', 'ulvs-nofp', 'ulvs-dr', 'ulvs-dr-fwd'] as const;
type AsymSetup = (typeof ASYM_SETUPS)[number];
const NAMES: Record<AsymSetup, string> = {
  ulvs: 'ulvs NAT (-m)',
  'ulvs-nofp': 'ulvs NAT, --fast-path off',
  'ulvs-dr': 'ulvs DR (-g), replies direct to the client',
  'ulvs-dr-fwd': "ulvs DR (-g), replies through the director's kernel",
};
const METRICS = [
  ['gbps', 'client throughput', 'Gbit/s', 2],
  ['machine_cpu_s_per_gb', 'machine busy CPU s per GB', 's/GB', 3],
  ['machine_cpu_s_per_1000_conns', 'machine busy CPU s per 1,000 conns', 's', 3],
  ['ulvsd_cpu_s_per_gb', 'ulvsd CPU s per GB', 's/GB', 4],
  ['ulvsd_cpu_s_per_1000_conns', 'ulvsd CPU s per 1,000 conns', 's', 4],
  ['conns_per_s', 'connections (1 MiB replies) per second', 'conn/s', 0],
  ['direct_return_share', "share of the client's bytes that came by the direct return links", '', 3],
] as const;
const log = (s: string) => process.stderr.write(`${s}\n`);
const V = LAB.VIP;
const POLICY_TABLE = '4201';
/** what wrk sends (its request line, Host, our header) */
const req = `GET /1m HTTP/1.1\r\nHost: ${V}\r\nConnection: close\r\n\r\n`;

export interface AsymOptions {
  rounds: number;
  seconds: number;
  setups: string[];
  resultsDir: string;
  ulvsArgs: string[];
}

function busy(): number {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  return (f[0]! + f[1]! + f[2]! + f[5]! + f[6]!) / 100; // user nice system irq softirq (USER_HZ 100)
}
function procCpu(pid: number | undefined): number {
  if (!pid) return 0;
  const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}
/** wrk's "N requests in Xs, Y MB read" as requests and bytes. */
export function parseWrk(out: string): { requests: number; bytes: number; seconds: number; errors: string | null } {
  const m = /(\d+) requests in ([\d.]+)(m?s|m), ([\d.]+)([KMGT]?B) read/.exec(out);
  if (!m) throw new Error(`wrk output not understood: ${out}`);
  const unit = { B: 1, KB: 2 ** 10, MB: 2 ** 20, GB: 2 ** 30, TB: 2 ** 40 }[m[5]!]!;
  const secs = m[3] === 'ms' ? Number(m[2]) / 1000 : m[3] === 'm' ? Number(m[2]) * 60 : Number(m[2]);
  const err = /Non-2xx.*|Socket errors: .*/.exec(out);
  return { requests: Number(m[1]), bytes: Number(m[4]) * unit, seconds: secs, errors: err ? err[0] : null };
}

export async function runAsym(o: AsymOptions): Promise<void> {
  const setups = o.setups.filter((s): s is AsymSetup => (ASYM_SETUPS as readonly string[]).includes(s));
  if (!setups.length) throw new Error(`--tests asym: choose --setups from ${ASYM_SETUPS.join(',')}`);
  const tmp = mkdtempSync(join(tmpdir(), 'ulvs-asym-'));
  const bed = new TestBed({ realServers: 3, clients: 1 });
  const RS = bed.realServers.map((_, i) => LAB.realServer(i));
  const client = bed.clients[0]!;
  const procs: ChildProcess[] = [];
  let ulvsd: ChildProcess | null = null;
  const samples = new Map<string, number[]>();
  const push = (s: AsymSetup, k: string, v: number) => samples.set(`${k}/${s}`, [...(samples.get(`${k}/${s}`) ?? []), v]);
  const ns = (n: string, argv: string[]) => run(['ip', 'netns', 'exec', n, ...argv]);
  const policy = (op: 'add' | 'del') => bed.realServers.forEach((r) => (op === 'add' ? run : tryRun)(['ip', '-n', r, 'rule', op, 'from', V, 'lookup', POLICY_TABLE, 'pref', '100']));
  /** bytes the client received on its direct links from the real servers */
  const returned = () => bed.realServers.reduce((a, _, i) => a + Number(ns(client, ['cat', `/sys/class/net/ret${i + 1}/statistics/rx_bytes`])), 0);
  const stopUlvsd = async () => {
    const p = ulvsd;
    ulvsd = null;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise((r) => p.once('exit', r));
      p.kill('SIGTERM');
      await gone;
    }
  };
  const onSignal = () => {
    log('interrupted: removing the test bed');
    for (const p of [...procs, ...(ulvsd ? [ulvsd] : [])]) p.kill('SIGKILL');
    bed.down();
    process.exit(130);
  };
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);
  const t0 = Date.now();
  try {
    log(`asym: building the test bed (${bed.prefix}-*); ${o.rounds} rounds x ${setups.join(', ')}, ${o.seconds} s each`);
    bed.up();
    const www = join(tmp, 'www');
    mkdirSync(www);
    writeFileSync(join(www, '1m'), Buffer.alloc(2 ** 20, 0x61), { mode: 0o644 });
    for (const d of [tmp, www]) chmodSync(d, 0o755); // nginx's workers run as another user
    tryRun(['ip', 'netns', 'exec', client, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
    tryRun(['ip', 'netns', 'exec', client, 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
    for (const k of ['all', 'default', 'eth0']) ns(client, ['sysctl', '-qw', `net.ipv4.conf.${k}.rp_filter=0`]); // replies arrive on retI
    for (const [i, r] of bed.realServers.entries()) {
      // DR real server: the VIP on lo, its ARP neither answered nor announced
      for (const k of ['all', 'eth0', 'lo']) {
        ns(r, ['sysctl', '-qw', `net.ipv4.conf.${k}.arp_ignore=1`]);
        ns(r, ['sysctl', '-qw', `net.ipv4.conf.${k}.arp_announce=2`]);
      }
      run(['ip', '-n', r, 'addr', 'add', `${V}/32`, 'dev', 'lo']);
      // the direct return link to the client (no addresses: a static neighbour entry)
      run(['ip', 'link', 'add', 'name', `ret${i + 1}`, 'netns', client, 'type', 'veth', 'peer', 'name', 'ret0', 'netns', r]);
      run(['ip', '-n', client, 'link', 'set', `ret${i + 1}`, 'up']);
      ns(client, ['sysctl', '-qw', `net.ipv4.conf.ret${i + 1}.rp_filter=0`]);
      run(['ip', '-n', r, 'link', 'set', 'ret0', 'up']);
      const mac = (JSON.parse(run(['ip', '-j', '-n', client, 'link', 'show', `ret${i + 1}`])) as { address: string }[])[0]!.address;
      run(['ip', '-n', r, 'neigh', 'add', LAB.client(0), 'lladdr', mac, 'dev', 'ret0', 'nud', 'permanent']);
      run(['ip', '-n', r, 'route', 'add', LAB.CLIENT_NET, 'via', LAB.client(0), 'dev', 'ret0', 'onlink', 'table', POLICY_TABLE]);
      const d = join(tmp, `rs${i + 1}`);
      mkdirSync(d);
      const conf = join(d, 'nginx.conf');
      writeFileSync(
        conf,
        `worker_processes 1; daemon off; pid ${d}/nginx.pid; error_log ${d}/error.log;
events { worker_connections 8192; }
http { access_log off; sendfile on; client_body_temp_path ${d}; proxy_temp_path ${d}; fastcgi_temp_path ${d}; uwsgi_temp_path ${d}; scgi_temp_path ${d};
  server { listen 80 backlog=8192; root ${www}; location / { } } }\n`,
      );
      procs.push(spawn('ip', ['netns', 'exec', r, 'nginx', '-c', conf], { stdio: ['ignore', 'pipe', 'pipe'] }));
    }
    await new Promise((r) => setTimeout(r, 500));
    for (let round = 1; round <= o.rounds; round++) {
      for (const s of setups) {
        const method = s === 'ulvs' || s === 'ulvs-nofp' ? '-m' : '-g';
        const extra = s === 'ulvs-nofp' ? ['--fast-path', 'off'] : [];
        writeFileSync(join(tmp, 'rules'), [`-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:80 ${method} -w 1`)].join('\n'));
        if (s === 'ulvs-dr') policy('add');
        ulvsd = spawn('ip', ['netns', 'exec', bed.director, process.execPath, SCRIPTS.ulvsd, '--rules', join(tmp, 'rules'), '--socket', join(tmp, 'ulvs.sock'), '--log-format', 'text', ...extra, ...o.ulvsArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
        try {
          await waitFor(ulvsd, /forwarding/);
          const r0 = returned();
          const m0 = busy();
          const u0 = procCpu(ulvsd.pid);
          const w = parseWrk(ns(client, ['wrk', '-t', '2', '-c', '64', '-d', `${o.seconds}s`, '-H', 'Connection: close', `http://${V}/1m`]));
          const machine = busy() - m0;
          const own = procCpu(ulvsd.pid) - u0;
          push(s, 'direct_return_share', (returned() - r0) / w.bytes);
          if (w.errors) log(`    wrk: ${w.errors}`);
          if (/Non-2xx/.test(w.errors ?? '')) throw new Error(`${s}: the servers did not answer 200: ${w.errors}`);
          const gb = w.bytes / 1e9;
          push(s, 'gbps', (w.bytes * 8) / w.seconds / 1e9);
          push(s, 'conns_per_s', w.requests / w.seconds);
          push(s, 'machine_cpu_s_per_gb', machine / gb);
          push(s, 'machine_cpu_s_per_1000_conns', machine / (w.requests / 1000));
          push(s, 'ulvsd_cpu_s_per_gb', own / gb);
          push(s, 'ulvsd_cpu_s_per_1000_conns', own / (w.requests / 1000));
          log(`  round ${round}/${o.rounds} ${s.padEnd(11)} ${((w.bytes * 8) / w.seconds / 1e9).toFixed(2)} Gbit/s, ${w.requests} conns, machine ${(machine / gb).toFixed(3)} s/GB, ulvsd ${(own / gb).toFixed(4)} s/GB  [${Math.round((Date.now() - t0) / 1000)} s]`);
        } finally {
          await stopUlvsd();
          if (s === 'ulvs-dr') policy('del');
        }
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  } finally {
    await stopUlvsd();
    for (const p of procs) p.kill('SIGKILL');
    bed.down();
    rmSync(tmp, { recursive: true, force: true });
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(sig, onSignal);
  }

  const figures: Record<string, Partial<Record<AsymSetup, number>>> = {};
  for (const [k, xs] of samples) {
    const [metric, s] = k.split('/') as [string, AsymSetup];
    (figures[metric] ??= {})[s] = median(xs);
  }
  const ratios: Record<string, Record<string, number>> = {};
  for (const base of ['ulvs', 'ulvs-nofp'] as const)
    for (const dr of ['ulvs-dr', 'ulvs-dr-fwd'] as const)
      for (const [metric] of METRICS) {
        const a = figures[metric]?.[dr];
        const b = figures[metric]?.[base];
        if (a !== undefined && b && metric !== 'direct_return_share') (ratios[`${dr}/${base}`] ??= {})[metric] = a / b;
      }
  const date = new Date().toISOString();
  const head = `| metric | ${setups.map((s) => NAMES[s]).join(' | ')} |${Object.keys(ratios).map((r) => ` ${r} |`).join('')}`;
  const rows = METRICS.map(([k, title, unit, digits]) => `| ${title}${unit ? ` (${unit})` : ''} | ${setups.map((s) => figures[k]?.[s]?.toFixed(digits) ?? '—').join(' | ')} |${Object.values(ratios).map((r) => ` ${r[k]?.toFixed(3) ?? '—'} |`).join('')}`);
  const md = `# Asymmetric benchmark, ${date}\n\nNode ${process.version}; ${o.rounds} rounds of ${o.seconds} s; medians. wrk -t 2 -c 64, Connection: close, GET /1m (request ${Buffer.byteLength(req)} bytes, reply 1 MiB).\n\n${head}\n|${'---|'.repeat(setups.length + 1 + Object.keys(ratios).length)}\n${rows.join('\n')}\n\nSamples: \`${JSON.stringify(Object.fromEntries(samples))}\`\n`;
  mkdirSync(o.resultsDir, { recursive: true });
  const stem = join(o.resultsDir, `${date.slice(0, 19).replace(/:/g, '-')}-asym`);
  const summary = { date, test: 'asym', node: process.version, rounds: o.rounds, seconds: o.seconds, request_bytes: Buffer.byteLength(req), reply_bytes: 2 ** 20, figures, ratios };
  writeFileSync(`${stem}.md`, md);
  writeFileSync(`${stem}.json`, `${JSON.stringify({ ...summary, samples: Object.fromEntries(samples) }, null, 1)}\n`);
  log(`wrote ${stem}.md and .json`);
  process.stdout.write(`${md.split('\n\nSamples')[0]}\n`);
  console.log(JSON.stringify(summary));
}
