/**
 * Engine benchmark: one core, no I/O, packets already in memory (issue 2).
 *
 *   npm run bench:engine            (node --expose-gc dist/bench/engine.js)
 *
 * 1. established_pps: 10,000 established TCP flows over 3 real servers (wlc). A round forwards
 *    a slab of 20,000 packets in shuffled order: per flow one client->VIP data packet (1,400
 *    bytes) and one RS->client ACK. Only process() is timed; the slab is restored from a
 *    pristine copy between rounds (untimed), so every timed packet is a full lookup + TCP state
 *    update + counters + NAT rewrite with incremental checksums of an unmodified packet.
 *    established_pps_1m_flows: the same with 1,000,000 flows (64-byte packets), where the
 *    table (48 MB) no longer fits in cache.
 * 2. new_conns_per_s: 1,000,000 SYNs from distinct clients into an empty director (wlc):
 *    lookup miss both ways, service lookup, scheduling, entry creation, rewrite.
 * 3. bytes_per_conn: memory (ArrayBuffers + JS heap, after GC) of the director holding those
 *    1,000,000 live connections at the default table capacity (2^20), divided by 1,000,000.
 * Peer in the same run: `rewrite_only_pps`, the NAT rewrite alone on the same packets, measured
 * in rounds interleaved with the engine's so both see the same machine noise. Medians of
 * per-round rates. Last line: JSON.
 */
import os from 'node:os';
import { Director } from '../src/core/director.js';
import { defaultRegistry } from '../src/sched/index.js';
import { natRewrite, NatSide } from '../src/core/nat.js';
import { ipv4 } from '../src/wire/build.js';
import { parseIPv4 } from '../src/wire/addr.js';
import { IPV4, readI32, readU16, writeU16, writeU32 } from '../src/wire/ipv4.js';
import { csumReplace32, csumReplaceAddrPort } from '../src/wire/checksum.js';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});
const VIP = parseIPv4('203.0.113.10');
const RS = ['192.0.2.11', '192.0.2.12', '192.0.2.13'].map(parseIPv4);
const log = (s: string) => process.stderr.write(`${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function mkDirector(maxConns?: number): Director {
  const d = new Director({ schedulers: defaultRegistry(), seed: 0x9e3779b9, ...(maxConns ? { maxConns } : {}) });
  const k = { proto: 6, addr: VIP, port: 80 };
  d.addService({ ...k, scheduler: 'wlc' });
  for (const a of RS) d.addDest(k, { addr: a, port: 8080 });
  return d;
}

/** Flow n's client: 198.51.100.0/24 upward, 50 source ports each (documentation ranges only). */
const client = (n: number) => (0xc6336402 + Math.floor(n / 50)) >>> 0;
const clientPort = (n: number) => 10000 + (n % 50) * 1000;

/** Copy a TCP/IPv4 template to `off` and give it new endpoints, with valid checksums. */
function stamp(buf: Buffer, off: number, t: Buffer, src: number, sport: number, dst: number, dport: number): void {
  t.copy(buf, off);
  const oldS = readI32(t, IPV4.SRC);
  const oldD = readI32(t, IPV4.DST);
  writeU32(buf, off + IPV4.SRC, src);
  writeU32(buf, off + IPV4.DST, dst);
  writeU16(buf, off + 10, csumReplace32(csumReplace32(readU16(t, 10), oldS, src), oldD, dst));
  writeU16(buf, off + 20, sport);
  writeU16(buf, off + 22, dport);
  const c1 = csumReplaceAddrPort(readU16(t, 36), oldS, src, readU16(t, 20), sport);
  writeU16(buf, off + 36, csumReplaceAddrPort(c1, oldD, dst, readU16(t, 22), dport));
}

function shuffled(n: number, seed: number): Uint32Array {
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  let x = seed;
  for (let i = n - 1; i > 0; i--) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const j = x % (i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

function established(flows: number, dataBytes: number, rounds: number) {
  const d = mkDirector(flows <= 60_000 ? 1 << 16 : 1 << 21);
  const slot = dataBytes + 64;
  const n = flows * 2;
  const pristine = Buffer.alloc(n * slot);
  const slab = Buffer.alloc(n * slot);
  const lens = new Uint32Array(n);
  const syn = ipv4({ src: 1, dst: 2 }).tcp({ sport: 1, dport: 2, flags: 'S' }).build();
  const ack = ipv4({ src: 1, dst: 2 }).tcp({ sport: 1, dport: 2, flags: 'A', seq: 2 }).build();
  const data = ipv4({ src: 1, dst: 2 }).tcp({ sport: 1, dport: 2, flags: 'PA', seq: 2 }).payload(Buffer.alloc(dataBytes, 0x61)).build();
  const rsAck = ipv4({ src: 1, dst: 2 }).tcp({ sport: 1, dport: 2, flags: 'A', seq: 9 }).build();
  const tmp = Buffer.alloc(slot);
  for (let f = 0; f < flows; f++) {
    const c = client(f);
    const p = clientPort(f);
    stamp(tmp, 0, syn, c, p, VIP, 80);
    d.process(tmp, 0, syn.length, 0, 0);
    const rs = d.conns.daddr(d.lastConn);
    stamp(tmp, 0, ack, c, p, VIP, 80);
    d.process(tmp, 0, ack.length, 0, 0);
    stamp(pristine, 2 * f * slot, data, c, p, VIP, 80);
    stamp(pristine, (2 * f + 1) * slot, rsAck, rs, 8080, c, p);
    lens[2 * f] = data.length;
    lens[2 * f + 1] = rsAck.length;
  }
  if (d.conns.count !== flows) throw new Error(`established ${d.conns.count} of ${flows} flows`);
  const order = shuffled(n, 12345);
  const engine: number[] = [];
  const rewrite: number[] = [];
  for (let r = 0; r < rounds; r++) {
    pristine.copy(slab);
    let t0 = performance.now();
    let fwd = 0;
    for (let k = 0; k < n; k++) {
      const p = order[k]!;
      if (d.process(slab, p * slot, lens[p]!, 1000 + r, 0) === 0) fwd++;
    }
    let t1 = performance.now();
    if (fwd !== n) throw new Error(`round ${r}: forwarded ${fwd} of ${n}`);
    if (r >= 2) engine.push((n / (t1 - t0)) * 1000);
    pristine.copy(slab);
    t0 = performance.now();
    for (let k = 0; k < n; k++) {
      const p = order[k]!;
      const o = p * slot;
      natRewrite(slab, o, o + 20, lens[p]! - 20, 6, NatSide.DST, RS[0]!, 8080, false);
    }
    t1 = performance.now();
    if (r >= 2) rewrite.push((n / (t1 - t0)) * 1000);
  }
  return { pps: median(engine), rewritePps: median(rewrite), min: Math.min(...engine), max: Math.max(...engine), rounds: engine.length };
}

function newConns() {
  const N = 1_000_000;
  const LEN = 40;
  const slab = Buffer.alloc(N * LEN);
  const syn = ipv4({ src: 1, dst: 2 }).tcp({ sport: 1, dport: 2, flags: 'S' }).build();
  for (let i = 0; i < N; i++) stamp(slab, i * LEN, syn, client(i), clientPort(i), VIP, 80);
  gc();
  gc();
  const m0 = process.memoryUsage();
  const d = mkDirector(); // default capacity 2^20
  const t0 = performance.now();
  let ok = 0;
  for (let i = 0; i < N; i++) if (d.process(slab, i * LEN, LEN, 5000, 0) === 0) ok++;
  const t1 = performance.now();
  if (ok !== N || d.conns.count !== N) throw new Error(`created ${d.conns.count} connections from ${ok} forwarded SYNs, expected ${N}`);
  gc();
  gc();
  const m1 = process.memoryUsage();
  const used = m1.arrayBuffers - m0.arrayBuffers + (m1.heapUsed - m0.heapUsed);
  return { cps: (N / (t1 - t0)) * 1000, bytesPerConn: used / d.conns.count, live: d.conns.count, capacity: d.conns.capacity, tableBytes: d.conns.byteLength };
}

log('ulvs engine benchmark (one core, packets in memory)');
const e = established(10_000, 1400, 60);
log(`  established, 10k flows: ${(e.pps / 1e6).toFixed(2)} Mpps median (${(e.min / 1e6).toFixed(2)}..${(e.max / 1e6).toFixed(2)}), ${(1e9 / e.pps).toFixed(0)} ns/packet; rewrite alone ${(e.rewritePps / 1e6).toFixed(2)} Mpps`);
const big = established(1_000_000, 0, 7);
log(`  established, 1M flows:  ${(big.pps / 1e6).toFixed(2)} Mpps median (${(big.min / 1e6).toFixed(2)}..${(big.max / 1e6).toFixed(2)}); rewrite alone ${(big.rewritePps / 1e6).toFixed(2)} Mpps`);
const c = newConns();
log(`  new connections: ${(c.cps / 1e6).toFixed(2)} M/s; ${c.live.toLocaleString('en')} live connections take ${c.bytesPerConn.toFixed(1)} bytes each (table arrays ${c.tableBytes.toLocaleString('en')} bytes, capacity ${c.capacity.toLocaleString('en')})`);
console.log(
  JSON.stringify({
    bench: 'engine',
    date: new Date().toISOString(),
    node: process.version,
    cpu: `${os.cpus()[0]?.model ?? 'unknown'} x${os.cpus().length}`,
    established_pps: Math.round(e.pps),
    established_ns_per_packet: Math.round(1e9 / e.pps),
    rewrite_only_pps: Math.round(e.rewritePps),
    established_vs_rewrite_only: Number((e.pps / e.rewritePps).toFixed(3)),
    established_pps_1m_flows: Math.round(big.pps),
    rewrite_only_pps_1m_flows: Math.round(big.rewritePps),
    new_conns_per_s: Math.round(c.cps),
    bytes_per_conn: Number(c.bytesPerConn.toFixed(1)),
    live_conns: c.live,
    table_capacity: c.capacity,
    scheduler: 'wlc',
    bar: { established_pps: 5_000_000, new_conns_per_s: 1_000_000, bytes_per_conn: 64 },
  }),
);
