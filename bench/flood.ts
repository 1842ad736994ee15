/**
 * `npm run bench:flood` (issue 14): the same SYN flood with spoofed sources against ulvs (NAT),
 * nftables DNAT and HAProxy, each in a fresh test bed, in one run. Per set-up and flood shape:
 * legitimate new connections answered during the flood, the established stream's throughput
 * during / before, the recovery time after the flood, and the director's memory (balancer RSS,
 * conntrack entries, ulvs connections) at its peak. bench/flood-run.ts has the timeline,
 * bench/flood-metrics.ts the definitions.
 *
 * Flood shapes: `few` 16 distinct spoofed sources (16 addresses, one port each), `many`
 * 1,000,000 distinct (address, port) pairs (128 addresses of 198.51.100.128/25 x 7,813 ports:
 * only documentation ranges may be used, so the million sources are pairs, not addresses).
 * The flood is unpaced by default: the generator's maximum on this machine (src/lab/flood.ts,
 * io_uring batches, one process: a second would take the second of the 2 cores from the
 * director). The flood lasts --flood seconds and, unless --exact-flood, goes on until every
 * source of the shape was used once (at most --max-flood seconds), so `many` means 1,000,000
 * distinct sources at every set-up's rate. The generator writes into a TUN, and the kernel forwards each SYN in the writer's
 * own softirq, so the rate it reaches depends on the set-up's per-packet cost (conntrack's
 * insertion slows it): the achieved rate is reported per set-up; --flood-rate fixes one rate.
 *
 * Run as root:  npm run bench:flood [-- --setups ulvs,nft,haproxy --shapes few,many
 *   --pre 3 --flood 10 --post 5 [--exact-flood] --max-flood 60 --flood-rate 0 --flood-io uring --flood-procs 1
 *   --probe-rate 20 --probe-timeout 3000 --stream-mbps 1000
 *   --ulvs-sysctl NAME=VALUE (repeatable) --ulvs-args '...' --prefix flood]
 *   npm run bench:flood -- --generator [--generator-seconds 5]: the generator's ceiling per
 *   method (bench/flood-generator.ts) alone.
 * Writes bench/results/<date>-flood.md and .json; the last line is the summary JSON.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { run } from '../src/lab/shell.js';
import { runFloodBench } from './flood-bench.js';
import { measureGenerator } from './flood-generator.js';
import { SHAPES } from './flood-run.js';
import { FLOOD_SETUPS, OPEN_BEDS, type FloodSetup } from './flood-setups.js';

const log = (s: string) => process.stderr.write(`${s}\n`);
const usage = (m: string): never => {
  log(`bench:flood: ${m}`);
  process.exit(2);
};
let parsed;
try {
  parsed = parseArgs({
    options: {
      setups: { type: 'string', default: FLOOD_SETUPS.join(',') },
      shapes: { type: 'string', default: Object.keys(SHAPES).join(',') },
      pre: { type: 'string', default: '3' },
      flood: { type: 'string', default: '10' },
      post: { type: 'string', default: '5' },
      'exact-flood': { type: 'boolean', default: false },
      'max-flood': { type: 'string', default: '60' },
      'flood-rate': { type: 'string', default: '0' },
      'flood-io': { type: 'string', default: 'uring' },
      'flood-procs': { type: 'string', default: '1' },
      'probe-rate': { type: 'string', default: '20' },
      'probe-timeout': { type: 'string', default: '3000' },
      'stream-mbps': { type: 'string', default: '1000' },
      'ulvs-sysctl': { type: 'string', multiple: true, default: [] },
      'ulvs-args': { type: 'string', default: '' },
      prefix: { type: 'string', default: 'flood' },
      generator: { type: 'boolean', default: false },
      'generator-seconds': { type: 'string', default: '5' },
    },
  }).values;
} catch (e) {
  usage((e as Error).message);
}
const o = parsed!;
const num = (k: keyof typeof o, min: number, max: number): number => {
  const v = Number(o[k]);
  if (!(Number.isFinite(v) && v >= min && v <= max)) usage(`--${k} is a number from ${min} to ${max}, not ${String(o[k])}`);
  return v;
};
const setups = o.setups!.split(',') as FloodSetup[];
for (const s of setups) if (!(FLOOD_SETUPS as readonly string[]).includes(s)) usage(`unknown set-up ${s}; choose from ${FLOOD_SETUPS.join(',')}`);
const shapes = o.shapes!.split(',').map((s) => SHAPES[s] ?? usage(`unknown shape ${s}; choose from ${Object.keys(SHAPES).join(',')}`));
if (o['flood-io'] !== 'write' && o['flood-io'] !== 'uring') usage('--flood-io is write or uring');
for (const s of o['ulvs-sysctl']!) if (!/^[a-z_0-9]+=\S+$/.test(s)) usage(`--ulvs-sysctl is NAME=VALUE, not ${s}`);
if (!/^[a-z][a-z0-9]{0,7}$/.test(o.prefix!)) usage('--prefix is 1..8 lower-case letters and digits, starting with a letter');
const params = {
  preS: num('pre', 2, 60),
  floodS: num('flood', 1, 300),
  postS: num('post', 1, 60),
  coverSources: !o['exact-flood'],
  maxFloodS: num('max-flood', 1, 600),
  floodRate: num('flood-rate', 0, 10_000_000),
  floodIo: o['flood-io'] as 'write' | 'uring',
  floodProcs: num('flood-procs', 1, 16),
  probeRate: num('probe-rate', 1, 1000),
  probeTimeoutMs: num('probe-timeout', 100, 30_000),
  streamMbps: num('stream-mbps', 0, 100_000),
};
if (process.getuid?.() !== 0) usage('the benchmark needs root (network namespaces, TUN, nftables)');
const need = ['iperf3', 'nft', 'nginx', 'haproxy'].filter((t) => !['/usr/bin', '/usr/sbin'].some((d) => existsSync(join(d, t))));
if (need.length) {
  log(`installing ${need.join(' ')} ...`);
  run(['apt-get', 'install', '-y', '-qq', 'iperf3', 'nftables', 'nginx-light', 'haproxy']);
}

// Interrupted: delete the open bed (its namespaces take ulvsd, haproxy, nft's table and the
// generator's TUN with them).
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const)
  process.on(sig, () => {
    log(`${sig}: removing the test bed`);
    for (const b of OPEN_BEDS) b.down();
    process.exit(130);
  });
const here = dirname(fileURLToPath(import.meta.url)); // dist/bench
const resultsDir = join(here, '..', '..', 'bench', 'results');
if (o.generator) {
  // the generator's ceiling per method (bench/flood-generator.ts), then exit
  const seconds = num('generator-seconds', 1, 60);
  log(`generator ceiling, ${seconds} s per method, load average before ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
  const rates = await measureGenerator(`${o.prefix}g`, seconds, log);
  const date = new Date().toISOString();
  const stem = join(resultsDir, `${date.slice(0, 19).replace(/:/g, '-')}-flood-generator`);
  mkdirSync(resultsDir, { recursive: true });
  const md = [`# SYN generator ceiling ${date}`, '', `Command: \`npm run bench:flood -- --generator --generator-seconds ${seconds}\`; load average before: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`, '', '| method | SYN/s | sent | seconds |', '|---|---|---|---|', ...Object.entries(rates).map(([k, r]) => `| ${k} | ${r.pps.toLocaleString('en-US')} | ${r.sent.toLocaleString('en-US')} | ${r.seconds} |`), ''];
  writeFileSync(`${stem}.md`, md.join('\n'));
  writeFileSync(`${stem}.json`, `${JSON.stringify({ date, seconds, rates })}\n`);
  log(`wrote ${stem}.md, .json`);
  console.log(JSON.stringify({ date, seconds, rates }));
  process.exit(0);
}
const { summary, files } = await runFloodBench({
  setups,
  shapes,
  params,
  variant: { args: o['ulvs-args']!.split(' ').filter(Boolean), sysctls: o['ulvs-sysctl']! },
  prefix: o.prefix!,
  resultsDir,
  command: `npm run bench:flood -- ${process.argv.slice(2).join(' ')}`.trim().replace(/ --$/, ''),
  log,
});
log(`wrote ${files.join(', ')}`);
console.log(JSON.stringify(summary));
