/**
 * By hand (root): the spoofed SYN-flood rate at which real clients' requests start failing, with
 * syn_cookies=0 and =1 on the same bed (issue 14). For each mode and rate: a fresh DirectorBed
 * (NAT, 2 real servers, default table size), src/lab/flood.ts --proto tcp at that rate for
 * --seconds from up to 1,000,000 spoofed sources (16 addresses x 64,000 ports), and two seconds
 * in, --requests concurrent HTTP requests from a real client (3 s timeout each: one lost SYN is
 * sent again after 1 s). Prints one JSON line per run: mode, asked rate, achieved rate, answered.
 *   node dist/bench/syn-flood-rate.js --rates 10000,20000,40000,80000 [--seconds 8] [--requests 50] [--modes 0,1]
 */
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { DirectorBed, SCRIPTS } from '../src/lab/director-bed.js';
import { run } from '../src/lab/shell.js';
import { LAB } from '../src/lab/testbed.js';
import { callAdmin } from '../src/control/admin-client.js';

const { values } = parseArgs({ options: { rates: { type: 'string', default: '10000,20000,40000,80000' }, seconds: { type: 'string', default: '8' }, requests: { type: 'string', default: '50' }, modes: { type: 'string', default: '0,1' } } });
const V = LAB.VIP;
const rules = [`-A -t ${V}:80 -s rr`, ...[0, 1].map((i) => `-a -t ${V}:80 -r ${LAB.realServer(i)}:8080 -m`)].join('\n');
const N = Number(values.requests);
const S = Number(values.seconds);

for (const mode of values.modes!.split(',').map(Number)) {
  for (const rate of values.rates!.split(',').map(Number)) {
    const bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080, prefix: `qsm${process.pid % 10000}`, ulvsdArgs: ['--sysctl', `syn_cookies=${mode}`] }).start();
    try {
      const client = bed.bed.clients[0]!;
      const flows = Math.min(rate * S, 16 * 64000);
      const flood = spawn('ip', ['netns', 'exec', client, process.execPath, SCRIPTS.flood, '--proto', 'tcp', '--dst', V, '--port', '80', '--flows', String(flows), '--rate', String(rate), '--addrs', '16', '--src-base', '198.51.100.128'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      flood.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      const done = new Promise((r) => flood.once('exit', r));
      await new Promise((r) => setTimeout(r, 2000));
      const lines = run(['ip', 'netns', 'exec', client, process.execPath, SCRIPTS.client, '--host', V, '--http', '80', '--requests', String(N), '--concurrent', '--timeout', '3000']);
      const ok = lines.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; ok?: boolean }).filter((j) => j.kind === 'http' && j.ok).length;
      await done;
      const f = JSON.parse(out) as { sent: number; seconds: number };
      const c = (await callAdmin(bed.socket, 'GET', '/v1/counters')).json as { engine: Record<string, number> };
      console.log(JSON.stringify({ mode, rate, achieved: Math.round(f.sent / f.seconds), sent: f.sent, answered: ok, of: N, conns_created: c.engine['conns_created'], synproxy_syn: c.engine['send_synproxy_syn'] }));
    } finally {
      await bed.stop();
    }
  }
}
