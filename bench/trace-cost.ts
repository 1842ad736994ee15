/**
 * What `ulvsadm --trace` costs per packet (issue 15): one core, packets in memory, the engine
 * benchmark's established workload (10,000 TCP flows over 3 real servers, per flow a 1,400-byte
 * client data packet and a server ACK, shuffled), forwarded four ways in interleaved rounds:
 *
 *   plain      d.process() alone (the worker before tracing existed)
 *   off        the worker's path now: `trace.on ? traced() : d.process()` with no trace running
 *   on_nomatch a trace running whose filter matches none of these packets (before/after run,
 *              the filter checked, nothing recorded)
 *   on_all     a trace matching every packet: a record written per packet (the ring drained
 *              between rounds, untimed)
 *
 *   npm run bench:trace         (node --expose-gc dist/bench/trace-cost.js)
 *
 * Medians of per-round ns/packet; last line JSON. The per-traced-packet cost is on_all - off.
 */
import os from 'node:os';
import { Director } from '../src/core/director.js';
import { PacketTrace } from '../src/core/trace/packet-trace.js';
import { compileFilter } from '../src/core/trace/trace-filter.js';
import { defaultRegistry } from '../src/sched/index.js';
import { ipv4 } from '../src/wire/build.js';
import { formatIPv4, parseIPv4 } from '../src/wire/addr.js';

const VIP = parseIPv4('203.0.113.10');
const RS = ['192.0.2.11', '192.0.2.12', '192.0.2.13'].map(parseIPv4);
const FLOWS = 10_000;
const ROUNDS = Number(process.env['ROUNDS'] ?? 40);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const d = new Director({ schedulers: defaultRegistry(), seed: 0x9e3779b9, maxConns: 1 << 16 });
d.addService({ proto: 6, addr: VIP, port: 80, scheduler: 'wlc' });
for (const a of RS) d.addDest({ proto: 6, addr: VIP, port: 80 }, { addr: a, port: 8080 });

const SLOT = 1400 + 64;
const N = FLOWS * 2;
const pristine = Buffer.alloc(N * SLOT);
const slab = Buffer.alloc(N * SLOT);
const lens = new Uint32Array(N);
for (let f = 0; f < FLOWS; f++) {
  const c = formatIPv4((0xc6336402 + Math.floor(f / 50)) >>> 0);
  const p = 10000 + (f % 50) * 1000;
  const run = (b: Buffer) => d.process(Buffer.from(b), 0, b.length, 0, 0);
  run(ipv4({ src: c, dst: VIP }).tcp({ sport: p, dport: 80, flags: 'S' }).build());
  const rs = formatIPv4(d.conns.daddr(d.lastConn) >>> 0);
  run(ipv4({ src: c, dst: VIP }).tcp({ sport: p, dport: 80, flags: 'A', seq: 2 }).build());
  const data = ipv4({ src: c, dst: VIP }).tcp({ sport: p, dport: 80, flags: 'PA', seq: 2 }).payload(Buffer.alloc(1400, 0x61)).build();
  const ack = ipv4({ src: rs, dst: c }).tcp({ sport: 8080, dport: p, flags: 'A', seq: 9 }).build();
  data.copy(pristine, 2 * f * SLOT);
  ack.copy(pristine, (2 * f + 1) * SLOT);
  lens[2 * f] = data.length;
  lens[2 * f + 1] = ack.length;
}
const order = Uint32Array.from({ length: N }, (_, i) => i);
for (let i = N - 1, x = 12345; i > 0; i--) {
  x = (Math.imul(x, 1103515245) + 12345) >>> 0;
  const j = x % (i + 1);
  [order[i], order[j]] = [order[j]!, order[i]!];
}

/** The worker's per-packet step (datapath/tun/worker.ts verdict/traced), on this engine. */
class Step {
  readonly trace = new PacketTrace();
  run(b: Buffer, off: number, len: number, now: number): number {
    return this.trace.on ? this.traced(b, off, len, now) : d.process(b, off, len, now, 0);
  }
  traced(b: Buffer, off: number, len: number, now: number): number {
    this.trace.before(d, b, off, len);
    const v = d.process(b, off, len, now, 0);
    this.trace.after(d, b, off, v, now);
    return v;
  }
}
const step = new Step();

function round(kind: 'plain' | 'off' | 'on_nomatch' | 'on_all', r: number): number {
  pristine.copy(slab);
  if (kind === 'on_nomatch') step.trace.start(compileFilter({ client: { addr: parseIPv4('192.0.2.99') } }), 1e9);
  else if (kind === 'on_all') step.trace.start(compileFilter({ service: { addr: VIP } }), 1e9);
  else step.trace.stop();
  let fwd = 0;
  let ms = 0;
  // timed in chunks of 2,048 packets (half the ring); the ring is drained between chunks,
  // untimed: the reader is another thread in ulvsd (its 100 ms poll)
  for (let at = 0; at < N; at += 2048) {
    const end = Math.min(N, at + 2048);
    const t0 = performance.now();
    if (kind === 'plain') {
      for (let k = at; k < end; k++) {
        const p = order[k]!;
        if (d.process(slab, p * SLOT, lens[p]!, 1000 + r, 0) === 0) fwd++;
      }
    } else {
      for (let k = at; k < end; k++) {
        const p = order[k]!;
        if (step.run(slab, p * SLOT, lens[p]!, 1000 + r) === 0) fwd++;
      }
    }
    ms += performance.now() - t0;
    if (kind === 'on_all') step.trace.drain();
  }
  step.trace.stop();
  step.trace.drain();
  if (fwd !== N) throw new Error(`${kind} round ${r}: forwarded ${fwd} of ${N}`);
  return (ms * 1e6) / N;
}

const KINDS = ['plain', 'off', 'on_nomatch', 'on_all'] as const;
const ns: Record<string, number[]> = { plain: [], off: [], on_nomatch: [], on_all: [] };
for (let r = 0; r < ROUNDS; r++) for (const k of KINDS) {
  const x = round(k, r);
  if (r >= 3) ns[k]!.push(x);
}
const m = Object.fromEntries(KINDS.map((k) => [k, median(ns[k]!)])) as Record<(typeof KINDS)[number], number>;
process.stderr.write(`ulvs trace cost (one core, 10k established flows, ns/packet, medians of ${ROUNDS - 3} rounds)\n`);
for (const k of KINDS) process.stderr.write(`  ${k.padEnd(10)} ${m[k].toFixed(1)}\n`);
process.stderr.write(`  trace off costs ${(m.off - m.plain).toFixed(1)} ns/packet; a traced packet ${(m.on_all - m.off).toFixed(1)} ns more; a running trace's non-matching packet ${(m.on_nomatch - m.off).toFixed(1)} ns more\n`);
console.log(
  JSON.stringify({
    bench: 'trace-cost',
    date: new Date().toISOString(),
    node: process.version,
    cpu: `${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}`,
    ns_per_packet: Object.fromEntries(KINDS.map((k) => [k, Number(m[k].toFixed(1))])),
    off_minus_plain_ns: Number((m.off - m.plain).toFixed(1)),
    traced_minus_off_ns: Number((m.on_all - m.off).toFixed(1)),
    nomatch_minus_off_ns: Number((m.on_nomatch - m.off).toFixed(1)),
    rounds: ROUNDS - 3,
  }),
);
