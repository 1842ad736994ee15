/**
 * What one ulvsd spends per short connection, run after run on the same process (issue 16):
 * a director bed (src/lab/director-bed.ts) with nginx on two real servers, an rr NAT service,
 * and `wrk -t1 -c32 -H 'Connection: close'` from the client, --runs times --seconds each. Per run:
 * connections per second, ulvsd's CPU microseconds per connection (user and system, from
 * /proc/PID/stat, USER_HZ 100), and what crossed user space per connection (TUN reads) or was
 * reported by the kernel (kernel set-up's NEW and SEGMENT records). The first run includes V8
 * compiling the connection code; the later ones are the steady state.
 *
 *   npm run bench:ulvsd -- [--runs 4] [--seconds 5] [--ulvsd-args='--sysctl kernel_setup=1']
 *
 * Root, nginx and wrk (installed if missing). Last line: JSON.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DirectorBed } from '../src/lab/director-bed.js';
import { LAB } from '../src/lab/testbed.js';
import { run } from '../src/lab/shell.js';
import { processCpuTicks } from './machine-info.js';
import { writeNginxConf } from './nginx-conf.js';

const { values: o } = parseArgs({ options: { runs: { type: 'string', default: '4' }, seconds: { type: 'string', default: '5' }, 'ulvsd-args': { type: 'string', default: '--sysctl kernel_setup=1' } } });
const RUNS = Number(o.runs);
const SECS = Number(o.seconds);
if (!(RUNS >= 1 && SECS >= 1)) {
  console.error('--runs and --seconds are numbers >= 1');
  process.exit(2);
}
if (process.getuid?.() !== 0) {
  console.error('needs root (network namespaces, TUN)');
  process.exit(1);
}
if (!['nginx', 'wrk'].every((t) => existsSync(`/usr/sbin/${t}`) || existsSync(`/usr/bin/${t}`))) run(['apt-get', 'install', '-y', '-qq', 'nginx-light', 'wrk']);

const V = LAB.VIP;
const RS = [0, 1].map((i) => LAB.realServer(i));
const rules = `-A -t ${V}:80 -s rr\n` + RS.map((r) => `-a -t ${V}:80 -r ${r}:80 -m\n`).join('');
const counter = (dump: string, name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(dump)?.[1] ?? 0);

// the real servers' udp port keeps servers.js (the bed's own program) off port 80, which nginx takes
const bed = await new DirectorBed({ rules, realServers: 2, udpPort: 9999, ulvsdArgs: o['ulvsd-args']!.split(' ').filter(Boolean) }).start();
const nginx: ChildProcess[] = [];
const rows: { run: number; conns_per_s: number; ulvsd_user_us: number; ulvsd_sys_us: number; ulvsd_us: number; tun_reads: number; kernel_reports: number }[] = [];
try {
  for (const [i, ns] of bed.bed.realServers.entries()) {
    nginx.push(spawn('ip', ['netns', 'exec', ns, 'nginx', '-c', writeNginxConf(join(bed.dir, `rs${i}`), 80)], { stdio: 'ignore' }));
  }
  await new Promise((r) => setTimeout(r, 800));
  const pid = bed.ulvsd!.pid!;
  for (let k = 1; k <= RUNS; k++) {
    const d0 = await bed.dump();
    const t0 = processCpuTicks(pid);
    const w = spawnSync('ip', ['netns', 'exec', bed.bed.clients[0]!, 'wrk', '-t1', '-c32', `-d${SECS}s`, '-H', 'Connection: close', `http://${V}/`], { encoding: 'utf8' });
    const t1 = processCpuTicks(pid);
    const d1 = await bed.dump();
    const n = Number(/(\d+) requests in/.exec(w.stdout)?.[1] ?? 0);
    if (!n) throw new Error(`wrk: ${w.stdout}${w.stderr}`);
    const per = (x: number) => Math.round((x * 10_000 * 10) / n) / 10; // ticks -> us per connection, one decimal
    const delta = (name: string) => counter(d1, name) - counter(d0, name);
    const row = { run: k, conns_per_s: Math.round(n / SECS), ulvsd_user_us: per(t1[0] - t0[0]), ulvsd_sys_us: per(t1[1] - t0[1]), ulvsd_us: per(t1[0] + t1[1] - t0[0] - t0[1]), tun_reads: Math.round((delta('reads') / n) * 100) / 100, kernel_reports: Math.round(((delta('kernel_opened') + delta('kernel_segments')) / n) * 100) / 100 };
    rows.push(row);
    console.error(`run ${k}: ${row.conns_per_s} conn/s, ulvsd ${row.ulvsd_us} us/conn (user ${row.ulvsd_user_us}, system ${row.ulvsd_sys_us}), per connection ${row.tun_reads} TUN reads, ${row.kernel_reports} kernel reports`);
  }
} finally {
  for (const p of nginx) p.kill('SIGKILL');
  await bed.stop();
}
console.log(JSON.stringify({ bench: 'ulvsd-cost', date: new Date().toISOString(), ulvsd_args: o['ulvsd-args'], seconds: SECS, runs: rows }));
