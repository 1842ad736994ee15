/**
 * Run as a child process (see test/no-alloc.test.ts) with a tiny young generation:
 *   node --max-semi-space-size=1 dist/test/support/alloc-probe.js [PACKETS [sync]]
 * With `sync`, a connection-sync master runs (core/sync, sync_threshold 3 50) and its
 * datagrams go to a sink that drops them: announcing connections must not allocate either.
 * Establishes 1,000 TCP flows, warms the JIT, then forwards PACKETS established-flow packets
 * (half client -> VIP, half RS -> client) and reports the garbage collections seen and the
 * heap growth. Any allocation per packet (even 16 bytes) would fill the 1 MiB semi-space
 * dozens of times and show up as scavenges.
 */
import { PerformanceObserver } from 'node:perf_hooks';
import { Director } from '../../src/core/director.js';
import { defaultRegistry } from '../../src/sched/index.js';
import { ipv4 } from '../../src/wire/build.js';
import { parseIPv4 } from '../../src/wire/addr.js';

const PACKETS = Number(process.argv[2] ?? 2_000_000);
const FLOWS = 1000;
const d = new Director({ schedulers: defaultRegistry(), maxConns: 1 << 14, seed: 7 });
const k = { proto: 6, addr: parseIPv4('203.0.113.10'), port: 80 };
d.addService({ ...k, scheduler: 'wlc' });
for (const rs of ['192.0.2.11', '192.0.2.12', '192.0.2.13']) d.addDest(k, { addr: parseIPv4(rs), port: 8080 });
let datagrams = 0;
if (process.argv[3] === 'sync') d.sync.startMaster({ syncid: 1, maxlen: 1472 }, () => (datagrams++, true));

// One slab: pristine copies of an inbound data packet and an outbound ACK per flow, and a work
// area at the end. Copies use copyWithin (no allocation; Buffer.copy with an offset allocates
// a view in Node 20).
const size = 100;
const WORK = FLOWS * 2 * size;
const pristine = Buffer.alloc(WORK + size);
const lens = new Uint16Array(FLOWS * 2);
for (let f = 0; f < FLOWS; f++) {
  const client = `198.51.100.${2 + (f % 200)}`;
  const sport = 10000 + f;
  const syn = ipv4({ src: client, dst: '203.0.113.10' }).tcp({ sport, dport: 80, flags: 'S' }).build();
  d.process(syn, 0, syn.length, 0, 0);
  const rs = d.conns.daddr(d.lastConn);
  const inb = ipv4({ src: client, dst: '203.0.113.10' }).tcp({ sport, dport: 80, flags: 'PA', seq: 2 }).payload('x'.repeat(40)).build();
  const out = ipv4({ src: rs, dst: client }).tcp({ sport: 8080, dport: sport, flags: 'A', seq: 9 }).build();
  inb.copy(pristine, f * 2 * size);
  out.copy(pristine, (f * 2 + 1) * size);
  lens[f * 2] = inb.length;
  lens[f * 2 + 1] = out.length;
}
let forwarded = 0;
function run(n: number, t0: number): void {
  for (let i = 0; i < n; i++) {
    const p = i % (FLOWS * 2);
    pristine.copyWithin(WORK, p * size, p * size + lens[p]!);
    if (d.process(pristine, WORK, lens[p]!, t0 + (i >>> 10), 0) === 0) forwarded++;
  }
}
run(500_000, 1); // warm up: let TurboFan optimise the path
// V8 optimises on a background thread; on a busy machine the first measured round may still
// run partly unoptimised code. The steady state is what is measured: up to three rounds, each
// reported; the first without any collection ends the run.
let gcs = 0;
const obs = new PerformanceObserver((list) => {
  gcs += list.getEntries().length;
});
obs.observe({ entryTypes: ['gc'] });
const rounds: { forwarded: number; gcs: number; heapDelta: number }[] = [];
const tick = () => new Promise((r) => setTimeout(r, 20)); // GC entries are delivered asynchronously
for (let k = 0; k < 3; k++) {
  gcs = 0;
  forwarded = 0;
  const before = process.memoryUsage().heapUsed;
  run(PACKETS, 1000 + k * 10_000);
  const after = process.memoryUsage().heapUsed;
  await tick();
  rounds.push({ forwarded, gcs, heapDelta: after - before });
  if (gcs === 0) break;
}
obs.disconnect();
const last = rounds[rounds.length - 1]!;
console.log(JSON.stringify({ packets: PACKETS, ...last, rounds, forwardIn: d.outcomes[0], forwardOut: d.outcomes[1], datagrams }));
