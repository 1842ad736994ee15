#!/usr/bin/env node
/**
 * The engine of several builds of the tree side by side (a refactoring's steps):
 *
 *   node bench/engine-trees.mjs [--processes N] [--v8 'FLAGS'] TREE_A TREE_B ...
 *                                                        (each tree built: TREE/dist/...)
 *
 * Each measurement runs in its own process (two trees in one process disturb each other: the one
 * loaded second is placed differently in memory, up to 40 % on new connections here), pinned to
 * the last CPU when `taskset` exists, and the trees' processes alternate, N times each (default 6),
 * so machine noise spreads over all trees alike. Per tree it reports the median over processes of
 * each process's mean rate, and the ratio to the first tree:
 *   established  10,000 established TCP flows (wlc, 3 servers), one data packet in and one ACK
 *                out each, 200 rounds (the first 50 not counted), packets restored between rounds
 *   new_conns    200,000 SYNs from distinct clients, 50 rounds (the first 10 not counted), the
 *                table emptied between rounds by an untimed tick
 * A tree given as TREE+sync is that tree with a connection-sync master running in the engine
 * (core/sync, default sync_threshold 3 50; its datagrams go to a sink that discards them), to
 * measure what announcing connections costs the packet path.
 * --v8 passes V8 flags to every measuring process, the same for all trees (e.g. inlining
 * budgets, to see what they do). Last line: JSON. Addresses are documentation ranges; nothing
 * is sent anywhere.
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';

const VIP = 0xcb00710a; // 203.0.113.10
const SERVERS = [0xc000020b, 0xc000020c, 0xc000020d]; // 192.0.2.11-13
const dotted = (a) => `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`;
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

async function child(tree, mode) {
  const [root, variant] = tree.split('+');
  const { Director } = await import(`${root}/dist/src/core/director.js`);
  const { defaultRegistry } = await import(`${root}/dist/src/sched/index.js`);
  const { ipv4 } = await import(`${root}/dist/src/wire/build.js`);
  const d = new Director({ schedulers: defaultRegistry(), seed: 1, maxConns: 1 << 20 });
  if (variant === 'sync') d.sync.startMaster({ syncid: 1, maxlen: 1472 }, () => true);
  const k = { proto: 6, addr: VIP, port: 80 };
  d.addService({ ...k, scheduler: 'wlc' });
  for (const a of SERVERS) d.addDest(k, { addr: a, port: 8080 });
  let total = 0;
  let timed = 0;
  if (mode === 'new_conns') {
    const N = 200_000;
    const SZ = 64;
    const syns = Buffer.alloc(N * SZ);
    let len = 0;
    for (let n = 0; n < N; n++) {
      const p = ipv4({ src: `198.51.${100 + ((n >> 16) & 3)}.${(n >> 8) & 255}`, dst: dotted(VIP) }).tcp({ sport: 1024 + (n & 255), dport: 80, flags: 'S' }).build();
      p.copy(syns, n * SZ);
      len = p.length;
    }
    const w = Buffer.alloc(syns.length);
    let now = 1000;
    for (let r = 0; r < 50; r++) {
      syns.copy(w);
      const t0 = performance.now();
      for (let n = 0; n < N; n++) d.process(w, n * SZ, len, now, 0);
      const dt = performance.now() - t0;
      if (r >= 10) (total += N), (timed += dt);
      now += 400_000;
      d.tick(now); // untimed: every entry expires
    }
  } else {
    const F = 10_000;
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
    const w = Buffer.alloc(pristine.length);
    for (let r = 0; r < 200; r++) {
      pristine.copy(w); // untimed: every packet is rewritten from the original
      const t0 = performance.now();
      for (let p = 0; p < F * 2; p++) d.process(w, p * 128, lens[p], 1000 + r, 0);
      const dt = performance.now() - t0;
      if (r >= 50) (total += F * 2), (timed += dt);
    }
  }
  console.log(JSON.stringify({ rate: (total / timed) * 1000 }));
}

function parent(argv) {
  let processes = 6;
  let v8 = [];
  const trees = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--processes') processes = Number(argv[++i]);
    else if (argv[i] === '--v8') v8 = argv[++i].split(/\s+/).filter(Boolean);
    else trees.push(argv[i]);
  }
  if (trees.length < 1 || !(processes >= 1)) {
    console.error('usage: node bench/engine-trees.mjs [--processes N] TREE_A TREE_B ...');
    process.exit(2);
  }
  const self = fileURLToPath(import.meta.url);
  const pin = spawnSync('taskset', ['-c', '0', 'true']).status === 0 ? ['taskset', '-c', String(availableParallelism() - 1)] : [];
  const out = { bench: 'engine-trees', processes, v8, trees: {} };
  for (const mode of ['established', 'new_conns']) {
    const rates = new Map(trees.map((t) => [t, []]));
    for (let i = 0; i < processes; i++) {
      for (const t of trees) {
        const cmd = [...pin, process.execPath, ...v8, self, '--child', t, mode];
        const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8' });
        if (r.status !== 0) throw new Error(`${t} ${mode}: ${r.stderr}`);
        rates.get(t).push(JSON.parse(r.stdout.trim().split('\n').pop()).rate);
      }
    }
    const base = median(rates.get(trees[0]));
    for (const t of trees) {
      const m = median(rates.get(t));
      (out.trees[t] ??= {})[mode] = { rate: Math.round(m), vs_first: +(m / base).toFixed(3), min: Math.round(Math.min(...rates.get(t))), max: Math.round(Math.max(...rates.get(t))) };
      console.error(`${mode.padEnd(11)} ${t}: ${Math.round(m).toLocaleString('en')}/s (${(m / base).toFixed(3)} of the first; ${Math.round(Math.min(...rates.get(t))).toLocaleString('en')}..${Math.round(Math.max(...rates.get(t))).toLocaleString('en')})`);
    }
  }
  console.log(JSON.stringify(out));
}

if (process.argv[2] === '--child') await child(process.argv[3], process.argv[4]);
else parent(process.argv.slice(2));
