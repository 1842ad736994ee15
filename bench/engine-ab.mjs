#!/usr/bin/env node
/**
 * Same-process A/B of two builds of the engine (a refactoring's before and after):
 *
 *   node bench/engine-ab.mjs TREE_A TREE_B [pairs]      (each tree built: TREE/dist/src/...)
 *
 * Both trees' Directors are loaded into one process and measured in interleaved rounds (A then B,
 * B then A, alternately), so machine noise hits both alike; it reports the median of the per-pair
 * ratios B/A. Run it twice with the trees swapped: a position effect (the second tree loaded is
 * placed differently in memory) shows as both orders favouring the same position, and the mean
 * of the two orders cancels it.
 *   new_conns    200,000 SYNs from distinct clients into a director whose table was emptied by
 *                an untimed tick (lookup miss both ways, scheduling, entry creation, rewrite)
 *   established  10,000 established TCP flows, one data packet in and one ACK out each, 20 times
 *                per round (lookup, state, counters, rewrite)
 * Last line: JSON. Addresses are documentation ranges; nothing is sent anywhere.
 */
const [treeA, treeB] = process.argv.slice(2, 4);
const PAIRS = Number(process.argv[4] ?? 61);
if (!treeA || !treeB) {
  console.error('usage: node bench/engine-ab.mjs TREE_A TREE_B [pairs]');
  process.exit(2);
}
const load = async (root) => ({
  Director: (await import(`${root}/dist/src/core/director.js`)).Director,
  registry: (await import(`${root}/dist/src/sched/index.js`)).defaultRegistry,
});
const engines = [await load(treeA), await load(treeB)];
const { ipv4 } = await import(`${treeA}/dist/src/wire/build.js`);

const VIP = 0xcb00710a; // 203.0.113.10
const SERVERS = [0xc000020b, 0xc000020c, 0xc000020d]; // 192.0.2.11-13
const dotted = (a) => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
function director(m) {
  const d = new m.Director({ schedulers: m.registry(), seed: 1, maxConns: 1 << 20 });
  const k = { proto: 6, addr: VIP, port: 80 };
  d.addService({ ...k, scheduler: 'wlc' });
  for (const a of SERVERS) d.addDest(k, { addr: a, port: 8080 });
  return d;
}

const N = 200_000;
const SZ = 64;
const syns = Buffer.alloc(N * SZ);
let synLen = 0;
for (let n = 0; n < N; n++) {
  const p = ipv4({ src: `198.51.${100 + ((n >> 16) & 3)}.${(n >> 8) & 255}`, dst: dotted(VIP) }).tcp({ sport: 1024 + (n & 255), dport: 80, flags: 'S' }).build();
  p.copy(syns, n * SZ);
  synLen = p.length;
}
const work = Buffer.alloc(N * SZ);
const fresh = engines.map((m) => ({ d: director(m), now: 1000 }));
function newConns(k) {
  const s = fresh[k];
  syns.copy(work);
  const t0 = performance.now();
  for (let n = 0; n < N; n++) s.d.process(work, n * SZ, synLen, s.now, 0);
  const rate = (N / (performance.now() - t0)) * 1000;
  s.now += 400_000;
  s.d.tick(s.now); // untimed: every entry expires
  if (s.d.conns.count !== 0) throw new Error('the table was not emptied');
  return rate;
}

const F = 10_000;
const REPS = 20;
function establishedSetup(m) {
  const d = director(m);
  const pristine = Buffer.alloc(F * 256);
  const lens = new Uint16Array(F * 2);
  const send = (p) => d.process(p, 0, p.length, 0, 0);
  for (let f = 0; f < F; f++) {
    const c = `198.51.100.${2 + (f % 200)}`;
    const sport = 10000 + f;
    send(ipv4({ src: c, dst: dotted(VIP) }).tcp({ sport, dport: 80, flags: 'S' }).build());
    const rs = dotted(d.conns.daddr(d.lastConn) >>> 0);
    send(ipv4({ src: rs, dst: c }).tcp({ sport: 8080, dport: sport, flags: 'SA' }).build());
    send(ipv4({ src: c, dst: dotted(VIP) }).tcp({ sport, dport: 80, flags: 'A' }).build());
    const req = ipv4({ src: c, dst: dotted(VIP) }).tcp({ sport, dport: 80, flags: 'PA' }).payload('x'.repeat(60)).build();
    const ack = ipv4({ src: rs, dst: c }).tcp({ sport: 8080, dport: sport, flags: 'A' }).build();
    req.copy(pristine, f * 256);
    ack.copy(pristine, f * 256 + 128);
    lens[f * 2] = req.length;
    lens[f * 2 + 1] = ack.length;
  }
  return { d, pristine, lens, work: Buffer.alloc(pristine.length) };
}
const est = engines.map(establishedSetup);
function established(k) {
  const { d, pristine, lens, work: w } = est[k];
  let ns = 0;
  for (let rep = 0; rep < REPS; rep++) {
    pristine.copy(w); // untimed: every packet is rewritten from the original
    const t0 = performance.now();
    for (let p = 0; p < F * 2; p++) d.process(w, p * 128, lens[p], 1000 + rep, 0);
    ns += performance.now() - t0;
  }
  return ((F * 2 * REPS) / ns) * 1000;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const out = { bench: 'engine-ab', a: treeA, b: treeB, pairs: PAIRS };
for (const [name, run] of [
  ['new_conns', newConns],
  ['established', established],
]) {
  for (let w = 0; w < 3; w++) run(0), run(1); // warm both up
  const a = [];
  const b = [];
  const ratio = [];
  for (let r = 0; r < PAIRS; r++) {
    let x, y;
    if (r & 1) (y = run(1)), (x = run(0));
    else (x = run(0)), (y = run(1));
    a.push(x);
    b.push(y);
    ratio.push(y / x);
  }
  out[name] = { a: Math.round(median(a)), b: Math.round(median(b)), ratio: +median(ratio).toFixed(3), min: +Math.min(...ratio).toFixed(3), max: +Math.max(...ratio).toFixed(3) };
  console.error(`${name}: A ${out[name].a}/s, B ${out[name].b}/s, B/A median ${out[name].ratio} (${out[name].min}..${out[name].max})`);
}
console.log(JSON.stringify(out));
