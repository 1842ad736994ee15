/**
 * Data-path benchmark (issue 3): the same test bed, clients and real servers, measured through
 * (a) ulvsd and (b) the kernel's nftables DNAT doing the same balancing (this kernel has no
 * IPVS). Run as root:   npm run bench:datapath
 *
 * - single-stream and 4-stream TCP throughput, client -> VIP:5201, iperf3 (5 s each). iperf3's
 *   control and data connections must reach the same server, so both balancers hash the source
 *   address: ulvs `sh`, nft `jhash ip saddr`.
 * - new HTTP connections per second, wrk with `Connection: close` against nginx on the real
 *   servers, round robin: ulvs `rr`, nft `numgen inc`; from one client, and from two client
 *   namespaces at once (ulvsd steers each client to one of its data-path workers, so one
 *   client exercises one worker).
 * Each measurement alternates ulvs and nft, twice; the figure is the better of the two runs of
 * each (the machine is shared and noisy). Installs iperf3, wrk, nftables, nginx-light if missing.
 * Last line: JSON with the raw figures and the ulvs/nft ratios.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, tryRun } from '../src/lab/shell.js';
import { LAB, TestBed } from '../src/lab/testbed.js';
import { SCRIPTS, waitFor } from '../src/lab/director-bed.js';

const log = (s: string) => process.stderr.write(`${s}\n`);
if (process.getuid?.() !== 0) {
  log('bench:datapath needs root (network namespaces, TUN, nftables)');
  process.exit(1);
}
const need = ['iperf3', 'wrk', 'nft', 'nginx'].filter((t) => !['/usr/bin', '/usr/sbin'].some((d) => existsSync(join(d, t))));
if (need.length) {
  log(`installing ${need.join(' ')} ...`);
  run(['apt-get', 'install', '-y', '-qq', 'iperf3', 'wrk', 'nftables', 'nginx-light']);
}

const V = LAB.VIP;
const N = 3;
const RS = Array.from({ length: N }, (_, i) => LAB.realServer(i));
const tmp = mkdtempSync(join(tmpdir(), 'ulvs-bench-'));
const bed = new TestBed({ realServers: N, clients: 2 });
const procs: ChildProcess[] = [];
let ulvsd: ChildProcess | null = null;

function nginxConf(i: number): string {
  const d = join(tmp, `rs${i}`);
  run(['mkdir', '-p', d]);
  const f = join(d, 'nginx.conf');
  writeFileSync(
    f,
    `worker_processes 1; daemon off; pid ${d}/nginx.pid; error_log ${d}/error.log;
events { worker_connections 8192; }
http { access_log off; client_body_temp_path ${d}; proxy_temp_path ${d}; fastcgi_temp_path ${d}; uwsgi_temp_path ${d}; scgi_temp_path ${d};
  server { listen 8080 backlog=8192; location / { return 200 "ok\\n"; } } }\n`,
  );
  return f;
}

async function startUlvs(): Promise<void> {
  const rules = [`-A -t ${V}:5201 -s sh`, ...RS.map((a) => `-a -t ${V}:5201 -r ${a}:5201 -m`), `-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`)].join('\n');
  writeFileSync(join(tmp, 'rules'), rules);
  ulvsd = spawn('ip', ['netns', 'exec', bed.director, process.execPath, SCRIPTS.ulvsd, '--rules', join(tmp, 'rules')], { stdio: ['ignore', 'pipe', 'pipe'] });
  await waitFor(ulvsd, /forwarding/);
}
async function stopUlvs(): Promise<void> {
  if (!ulvsd) return;
  const p = ulvsd;
  ulvsd = null;
  const done = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM');
  await done;
}
function startNft(): void {
  const map = (port: number | null) => RS.map((a, i) => `${i} : ${a}${port ? ` . ${port}` : ''}`).join(', ');
  const conf = `table ip ulvsbench {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${V} tcp dport 5201 dnat to jhash ip saddr mod ${N} map { ${map(null)} }
    ip daddr ${V} tcp dport 80 dnat ip addr . port to numgen inc mod ${N} map { ${map(8080)} }
  }
}\n`;
  writeFileSync(join(tmp, 'nft.conf'), conf);
  run(['ip', 'netns', 'exec', bed.director, 'nft', '-f', join(tmp, 'nft.conf')]);
}
function stopNft(): void {
  tryRun(['ip', 'netns', 'exec', bed.director, 'nft', 'delete', 'table', 'ip', 'ulvsbench']);
}

function iperf(parallel: number): number {
  const out = run(['ip', 'netns', 'exec', bed.clients[0]!, 'iperf3', '-c', V, '-p', '5201', '-t', '5', '-P', String(parallel), '-J']);
  const j = JSON.parse(out) as { end: { sum_received: { bits_per_second: number } } };
  return j.end.sum_received.bits_per_second;
}
function wrkRate(out: string): number {
  const m = /Requests\/sec:\s+([\d.]+)/.exec(out);
  const errors = /Non-2xx|Socket errors: (.*)/.exec(out);
  if (errors) log(`  wrk: ${errors[0]}`);
  return m ? Number(m[1]) : 0;
}
function wrk(): number {
  return wrkRate(run(['ip', 'netns', 'exec', bed.clients[0]!, 'wrk', '-t', '2', '-c', '64', '-d', '5s', '-H', 'Connection: close', `http://${V}/`]));
}
/** wrk from both client namespaces at the same time; the sum of their rates. */
async function wrk2(): Promise<number> {
  const outs = await Promise.all(
    bed.clients.map(
      (ns) =>
        new Promise<string>((resolve) => {
          const p = spawn('ip', ['netns', 'exec', ns, 'wrk', '-t', '1', '-c', '32', '-d', '5s', '-H', 'Connection: close', `http://${V}/`], { stdio: ['ignore', 'pipe', 'pipe'] });
          let o = '';
          p.stdout!.on('data', (d: Buffer) => (o += d.toString()));
          p.on('exit', () => resolve(o));
        }),
    ),
  );
  return outs.map(wrkRate).reduce((a, b) => a + b, 0);
}

const results: Record<string, { ulvs: number[]; nft: number[] }> = {
  single_stream_bps: { ulvs: [], nft: [] },
  four_streams_bps: { ulvs: [], nft: [] },
  http_conns_per_s: { ulvs: [], nft: [] },
  http_conns_per_s_2_clients: { ulvs: [], nft: [] },
};

try {
  bed.up();
  for (const c of bed.clients) {
    tryRun(['ip', 'netns', 'exec', c, 'sysctl', '-qw', 'net.ipv4.ip_local_port_range=1024 65000']);
    tryRun(['ip', 'netns', 'exec', c, 'sysctl', '-qw', 'net.ipv4.tcp_tw_reuse=1']);
  }
  for (const [i, ns] of bed.realServers.entries()) {
    const ip = spawn('ip', ['netns', 'exec', ns, 'iperf3', '-s', '-p', '5201', '--forceflush'], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(ip);
    await waitFor(ip, /Server listening/);
    const ng = spawn('ip', ['netns', 'exec', ns, 'nginx', '-c', nginxConf(i + 1)], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(ng);
  }
  await new Promise((r) => setTimeout(r, 500));
  for (let rep = 0; rep < 2; rep++) {
    for (const mode of ['ulvs', 'nft'] as const) {
      if (mode === 'ulvs') await startUlvs();
      else startNft();
      try {
        const s1 = iperf(1);
        const s4 = iperf(4);
        const c = wrk();
        const c2 = await wrk2();
        results['single_stream_bps']![mode].push(s1);
        results['four_streams_bps']![mode].push(s4);
        results['http_conns_per_s']![mode].push(c);
        results['http_conns_per_s_2_clients']![mode].push(c2);
        log(`  ${mode.padEnd(4)} run ${rep + 1}: 1 stream ${(s1 / 1e9).toFixed(2)} Gbit/s, 4 streams ${(s4 / 1e9).toFixed(2)} Gbit/s, HTTP ${Math.round(c)} conn/s, from 2 clients ${Math.round(c2)} conn/s`);
      } finally {
        if (mode === 'ulvs') await stopUlvs();
        else stopNft();
      }
      await new Promise((r) => setTimeout(r, 1000)); // let TIME_WAITs and conntrack settle a little
    }
  }
} finally {
  await stopUlvs();
  for (const p of procs) p.kill('SIGKILL');
  bed.down();
  rmSync(tmp, { recursive: true, force: true });
}

const best = (xs: number[]) => Math.max(...xs);
const out: Record<string, unknown> = { bench: 'datapath', date: new Date().toISOString(), node: process.version };
for (const [k, v] of Object.entries(results)) {
  out[`${k}_ulvs`] = Math.round(best(v.ulvs));
  out[`${k}_nft`] = Math.round(best(v.nft));
  out[`${k}_ratio`] = Number((best(v.ulvs) / best(v.nft)).toFixed(3));
}
out['bar'] = { single_stream_ratio: 0.8, http_conns_ratio: 0.8 };
console.log(JSON.stringify(out));
