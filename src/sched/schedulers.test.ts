/**
 * Every scheduler runs the shared conformance suite, then per-scheduler tests with sequences
 * worked out by hand from ipvs-spec §5 and the kernel sources.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runSchedulerSuite } from '../../test/support/sched-conformance.js';
import { SchedHarness } from '../../test/support/sched-harness.js';
import { defaultRegistry } from './index.js';
import { SvcFlag } from '../core/service.js';
import { hash32 } from './common.js';
import { buildMaglevTable, MH_TAB_SIZE } from './mh.js';
import { hsiphashRef } from '../../test/support/siphash-ref.js';
import type { RealServer } from '../core/service.js';

runSchedulerSuite('rr', { distribution: 'equal' });
runSchedulerSuite('wrr', { distribution: 'weighted' });
runSchedulerSuite('lc', { distribution: 'equal', accumulate: true });
runSchedulerSuite('wlc', { distribution: 'weighted', accumulate: true });
runSchedulerSuite('sed', { distribution: 'weighted', accumulate: true });
runSchedulerSuite('nq', { distribution: 'weighted', accumulate: true });
runSchedulerSuite('fo', { distribution: 'highest' });
runSchedulerSuite('ovf', { distribution: 'highest', skip: { distribution: 'capacity-limited: ovf moves on once active > weight; tested below' } });
runSchedulerSuite('twos', { distribution: 'weighted', accumulate: true, skip: { dryRun: 'random: every pick draws fresh random numbers, so no pick can be predicted' } });
runSchedulerSuite('dh', { distribution: 'equal', keyedOn: 'vaddr' });
runSchedulerSuite('sh', { distribution: 'weighted' });
runSchedulerSuite('mh', { distribution: 'weighted' });
runSchedulerSuite('lblc', { distribution: 'weighted', keyedOn: 'vaddr', accumulate: true });
runSchedulerSuite('lblcr', { distribution: 'weighted', keyedOn: 'vaddr', accumulate: true });

test('registry: all 14 IPVS schedulers, duplicates and bad names refused', () => {
  const r = defaultRegistry();
  assert.deepEqual(r.names().sort(), ['dh', 'fo', 'lblc', 'lblcr', 'lc', 'mh', 'nq', 'ovf', 'rr', 'sed', 'sh', 'twos', 'wlc', 'wrr']);
  assert.throws(() => r.register('rr', () => ({ name: 'rr', pick: () => null })), /already registered/);
  assert.throws(() => r.register('', () => ({ name: '', pick: () => null })), /invalid/);
  assert.throws(() => r.register('a-very-long-name-x', () => ({ name: 'x', pick: () => null })), /invalid/);
});

/** Add servers so that kernel list order is A, B, C, ... (each added at the head, so add in reverse). */
function abc(h: SchedHarness, weights: number[]): Map<RealServer, string> {
  const names = new Map<RealServer, string>();
  for (let i = weights.length - 1; i >= 0; i--) names.set(h.add(`192.0.2.${11 + i}`, weights[i]), String.fromCharCode(65 + i));
  return names;
}

test('rr: list order (newest first), skips weight 0 and overloaded, cursor survives removal', () => {
  const h = new SchedHarness('rr');
  const n = abc(h, [1, 1, 1]);
  assert.equal(h.sequence(7, n), 'A B C A B C A');
  const [b] = [...n.keys()].filter((d) => n.get(d) === 'B');
  h.setWeight(b!, 0);
  assert.equal(h.sequence(4, n), 'C A C A');
  h.setWeight(b!, 5);
  // cursor is on A; delete A -> cursor moves to its predecessor (head), so the next pick is B
  const a = [...n.keys()].find((d) => n.get(d) === 'A')!;
  h.del(a);
  assert.equal(h.sequence(3, n), 'B C B');
  // a new server goes to the head; the cursor stays on B
  const d = h.add('192.0.2.20');
  n.set(d, 'D');
  assert.equal(h.sequence(4, n), 'C D B C');
});

/** True when `seq` is `cycle` repeated from some starting offset. */
function isRotationOf(seq: string, cycle: string): boolean {
  const s = seq.split(' ');
  const c = cycle.split(' ');
  return c.some((_, r) => s.every((x, i) => x === c[(i + r) % c.length]));
}

test('wrr: the spec cycles for weights 4,3,2 / 4,2 / 5,1,1 / 3,3, in the kernel phase', () => {
  // Servers are added one at a time (as ipvsadm does), so cw starts where the kernel's
  // dest_changed leaves it, not at the maximum weight: e.g. 4,3,2 starts with cw = 1.
  const cases: [number[], string, string][] = [
    [[4, 3, 2], 'A A B A B C A B C', 'A B C A A B A B C A B C A A B A B C'],
    [[4, 2], 'A A B', 'A B A A B A'], // after the adds: cw = 1, mw = 3, di = 2
    [[5, 1, 1], 'A A A A A B C', 'A B C A A A A A B C A A A A A B C'],
    [[3, 3], 'A B', 'A B A B'],
  ];
  for (const [w, cycle, kernel] of cases) {
    const h = new SchedHarness('wrr');
    const n = abc(h, w);
    const seq = h.sequence(kernel.split(' ').length, n);
    assert.equal(seq, kernel, `weights ${w}`);
    const after = h.sequence(cycle.split(' ').length * 3, n);
    assert.ok(isRotationOf(after, cycle), `weights ${w}: ${after} is not the cycle ${cycle}`);
  }
});

test('wrr: a weight change restarts at the list head with cw kept in range', () => {
  const h = new SchedHarness('wrr');
  const n = abc(h, [4, 3, 2]);
  h.sequence(5, n);
  const [a] = [...n.keys()].reverse();
  h.setWeight(a!, 4); // unchanged weights, but dest_changed resets cl to the head
  assert.ok(isRotationOf(h.sequence(27, n), 'A A B A B C A B C'));
});

test('wrr: all weights 0 -> null; overloaded servers are skipped', () => {
  const h = new SchedHarness('wrr');
  const n = abc(h, [0, 0]);
  assert.equal(h.pick(), null);
  const [a, b] = [...n.keys()].reverse();
  h.setWeight(a!, 2);
  h.setWeight(b!, 1);
  b!.overloaded = true;
  assert.equal(h.sequence(4, n), 'A A A A');
});

test('lc / wlc: the spec worked example (A w=1 3 active 12 inactive vs B w=2 0/1) picks B', () => {
  for (const s of ['wlc', 'lc']) {
    const h = new SchedHarness(s);
    const n = abc(h, [1, 2]);
    const [a, b] = [...n.keys()].reverse();
    a!.activeConns = 3;
    a!.inactConns = 12;
    b!.inactConns = 1;
    assert.equal(n.get(h.pick()!), 'B', s);
  }
  // wlc ties keep the earlier server in list order; lc ignores weights
  const h = new SchedHarness('wlc');
  const n = abc(h, [1, 2]);
  const [a, b] = [...n.keys()].reverse();
  a!.activeConns = 1;
  b!.activeConns = 2; // 256/1 vs 512/2: tie -> A
  assert.equal(n.get(h.pick()!), 'A');
  const l = new SchedHarness('lc');
  const ln = abc(l, [1, 100]);
  const [la, lb] = [...ln.keys()].reverse();
  la!.inactConns = 5;
  lb!.inactConns = 6;
  assert.equal(ln.get(l.pick()!), 'A');
});

test('sed and nq: (active+1)/weight; nq takes an idle server at once', () => {
  const h = new SchedHarness('sed');
  const n = abc(h, [1, 3]);
  const [a, b] = [...n.keys()].reverse();
  a!.activeConns = 0; // (0+1)/1 = 1
  b!.activeConns = 2; // (2+1)/3 = 1 -> tie -> A
  assert.equal(n.get(h.pick()!), 'A');
  b!.activeConns = 1; // 2/3 < 1 -> B
  assert.equal(n.get(h.pick()!), 'B');
  const q = new SchedHarness('nq');
  const qn = abc(q, [1, 100, 1]);
  const [qa, qb, qc] = [...qn.keys()].reverse();
  qa!.activeConns = 1;
  qb!.activeConns = 1;
  qc!.activeConns = 0; // idle: wins although B has weight 100
  assert.equal(qn.get(q.pick()!), 'C');
  qc!.activeConns = 1;
  assert.equal(qn.get(q.pick()!), 'B');
});

test('fo and ovf: highest weight; ovf moves on when active > weight', () => {
  const f = new SchedHarness('fo');
  const fn = abc(f, [3, 5, 5]);
  assert.equal(fn.get(f.pick()!), 'B'); // tie between B and C: first in list order
  const o = new SchedHarness('ovf');
  const on = abc(o, [2, 1]);
  const seq: string[] = [];
  for (let i = 0; i < 6; i++) {
    const d = o.pick();
    seq.push(d ? on.get(d)! : '-');
    if (d) d.activeConns++;
  }
  assert.equal(seq.join(' '), 'A A A B B -');
});

test('twos: two weighted random draws, the less loaded one wins (deterministic random)', () => {
  const draws = [0, 5]; // r1 = 0 % 7 -> first server; r2 = 5 % 7 -> third (weights 1,2,3; 1+2 < 5)
  const h = new SchedHarness('twos', { random: () => draws.shift() ?? 0 });
  const n = abc(h, [1, 2, 3]);
  const [a, , c] = [...n.keys()].reverse();
  a!.activeConns = 1; // overhead 256, weight 1
  c!.activeConns = 1; // overhead 256, weight 3: 3*256 > 1*256 -> C
  assert.equal(n.get(h.pick()!), 'C');
});

test('dh: 256 buckets cycling through the list, keyed on hash_32(destination)', () => {
  const h = new SchedHarness('dh');
  const n = abc(h, [1, 9, 1]);
  const order = [...n.keys()]; // kernel order A, B, C ... is n insertion reversed
  void order;
  for (let i = 0; i < 50; i++) {
    const vaddr = (0xcb007100 + i) >>> 0;
    const want = ['A', 'B', 'C'][hash32(vaddr, 8) % 3];
    assert.equal(n.get(h.pick({ vaddr })!), want);
  }
});

test('sh: weight w takes w consecutive buckets; sh-fallback probes (2H + k) mod 256; sh-port', () => {
  const h = new SchedHarness('sh');
  const n = abc(h, [2, 1, 0]);
  const [a, b, c] = [...n.keys()].reverse();
  // fill: A A B C | A A B C ... (C has weight 0 but still takes one bucket)
  const bucketOwner = (bkt: number) => ['A', 'A', 'B', 'C'][bkt % 4];
  for (let i = 0; i < 200; i++) {
    const caddr = (0xc6336400 + i) >>> 0;
    const bkt = hash32(caddr, 8);
    const d = h.pick({ caddr, cport: 1234 });
    assert.equal(d ? n.get(d) : '-', bucketOwner(bkt) === 'C' ? '-' : bucketOwner(bkt), `client ${i}`);
  }
  // With fallback, a client hashing to C's bucket is moved to bucket (2H + k) & 255, k = 0, 1, ...
  const hf = new SchedHarness('sh', { flags: SvcFlag.SCHED1 });
  const nf = abc(hf, [2, 1, 0]);
  for (let i = 0; i < 400; i++) {
    const caddr = (0xc6336400 + i) >>> 0;
    const H = hash32(caddr, 8);
    let want = bucketOwner(H);
    if (want === 'C') {
      for (let k = 0; k < 256; k++) {
        const o = bucketOwner((2 * H + k) & 255);
        if (o !== 'C') {
          want = o;
          break;
        }
      }
    }
    assert.equal(nf.get(hf.pick({ caddr })!), want);
  }
  // sh-port: the client port is added to the address before hashing
  const hp = new SchedHarness('sh', { flags: SvcFlag.SCHED2 });
  const np = abc(hp, [1, 1, 1, 1]);
  const caddr = 0xc6336402;
  const seen = new Set<string>();
  for (let port = 1000; port < 1100; port++) {
    assert.equal(np.get(hp.pick({ caddr, cport: port })!), 'ABCD'[hash32((caddr + port) >>> 0, 8) % 4]);
    seen.add(np.get(hp.pick({ caddr, cport: port })!)!);
  }
  assert.equal(seen.size, 4);
  void a;
  void b;
  void c;
});

/** An independent, slow Maglev population written from the paper and ip_vs_mh.c's rules. */
function referenceMaglev(dests: { addr: number; port: number; lw: number }[], M: number): number[] {
  const H = (v: number, k: bigint) => hsiphashRef(v >>> 0, k, k);
  const k1 = 2654435761n;
  const k2 = 2654446892n;
  const pos = dests.map((d) => d.lw).filter((w) => w > 0);
  if (pos.length === 0) return new Array(M).fill(-1);
  const g = pos.reduce((a, b) => {
    while (b) [a, b] = [b, a % b];
    return a;
  });
  const maxw = Math.max(...dests.map((d) => d.lw));
  const bits = Math.floor(maxw / g).toString(2).length;
  const shift = Math.max(0, bits - 6);
  const perms = dests.map((d) => {
    const offset = H(d.port + d.addr, k1) % M;
    const skip = (H(d.port + d.addr, k2) % (M - 1)) + 1;
    let turns = Math.floor(d.lw / g) >> shift;
    if (turns === 0 && d.lw !== 0) turns = 1;
    return { next: offset, skip, turns };
  });
  const table = new Array<number>(M).fill(-1);
  let filled = 0;
  let carry = 0; // claims made by the current server in this turn, carried across list wraps
  for (;;) {
    for (let i = 0; i < dests.length; i++) {
      const p = perms[i]!;
      if (p.turns < 1) continue;
      while (carry < p.turns) {
        while (table[p.next] !== -1) p.next = (p.next + p.skip) % M;
        table[p.next] = i;
        if (++filled === M) return table;
        carry++;
      }
      carry = 0;
    }
  }
}

test('mh: the lookup table equals an independent reference computation (weights 1,2,3 and 100,1)', () => {
  for (const weights of [[1, 2, 3], [100, 1], [7], [0, 4, 4]]) {
    const h = new SchedHarness('mh');
    weights.forEach((w, i) => h.add(`192.0.2.${11 + i}`, w, 8080 + i));
    const t = buildMaglevTable(h.svc.dests);
    const ref = referenceMaglev(h.svc.dests.map((d) => ({ addr: d.addr, port: d.port, lw: d.lastWeight })), MH_TAB_SIZE);
    const got = t.map((d) => (d === null ? -1 : h.svc.dests.indexOf(d)));
    assert.deepEqual(got, ref, `weights ${weights}`);
    assert.ok(got.every((x) => x >= 0), 'every slot filled');
  }
});

test('mh: quiescing a server keeps the table (last_weight); its clients fail or fall back', () => {
  const h = new SchedHarness('mh');
  const ds = [1, 1, 1].map((w, i) => h.add(`192.0.2.${11 + i}`, w));
  const before = buildMaglevTable(h.svc.dests);
  h.setWeight(ds[0]!, 0);
  assert.deepEqual(buildMaglevTable(h.svc.dests), before);
  let nulls = 0;
  for (let i = 0; i < 300; i++) if (h.pick({ caddr: 0xc6336400 + i }) === null) nulls++;
  assert.ok(nulls > 50 && nulls < 150, `about a third fail: ${nulls}`);
  const hf = new SchedHarness('mh', { flags: SvcFlag.SCHED1 });
  const dsf = [1, 1, 1].map((w, i) => hf.add(`192.0.2.${11 + i}`, w));
  hf.setWeight(dsf[0]!, 0);
  for (let i = 0; i < 300; i++) assert.notEqual(hf.pick({ caddr: 0xc6336400 + i }), null);
});

test('lblc: cache hit keeps the server even when flagged overloaded; lblc overload heuristic moves it', () => {
  const h = new SchedHarness('lblc');
  const n = abc(h, [1, 4]);
  const [a, b] = [...n.keys()].reverse();
  b!.activeConns = 10; // wlc prefers A now
  assert.equal(n.get(h.pick()!), 'A');
  a!.overloaded = true; // flag ignored on a cache hit
  assert.equal(n.get(h.pick()!), 'A');
  a!.overloaded = false;
  a!.activeConns = 2; // active > weight(1)...
  b!.activeConns = 1; // ...and B has 2*1 < 4: lblc calls A overloaded -> reschedule (wlc -> B)
  assert.equal(n.get(h.pick()!), 'B');
  assert.equal(n.get(h.pick()!), 'B', 'the entry now points at B');
});

test('lblcr: the set grows when its members are overloaded and shrinks after lblcr_expiration', () => {
  const h = new SchedHarness('lblcr', { expiration: 10 });
  const n = abc(h, [1, 1]);
  const [a, b] = [...n.keys()].reverse();
  assert.equal(n.get(h.pick({ now: 0 })!), 'A');
  a!.activeConns = 2;
  b!.activeConns = 0; // 2*0 < 1 and A.active > weight -> A overloaded -> wlc -> B joins the set
  assert.equal(n.get(h.pick({ now: 1000 })!), 'B');
  a!.activeConns = 0;
  b!.activeConns = 1;
  assert.equal(n.get(h.pick({ now: 2000 })!), 'A', 'set {B, A}: least loaded member');
  // 10 s after the last change the most loaded member is dropped
  b!.activeConns = 5;
  h.pick({ now: 12_500 });
  a!.activeConns = 9; // B (less loaded now) was dropped from the set, so A stays the answer;
  // A is not overloaded by the heuristic (no server has 2 * active < weight)
  assert.equal(n.get(h.pick({ now: 13_000 })!), 'A');
});

test('rr and wrr with state shared by two engines (as two data-path workers): the picks of both, in order, are the one-engine sequence', () => {
  for (const name of ['rr', 'wrr'] as const) {
    const state = new Int32Array(new SharedArrayBuffer(4 * 4 * 8));
    const single = new SchedHarness(name);
    const engines = [new SchedHarness(name, { shared: { state, slot: 3 } }), new SchedHarness(name, { shared: { state, slot: 3 } })];
    const all = [single, ...engines];
    const weights = name === 'rr' ? [1, 1, 1, 1] : [4, 3, 2, 1];
    const names = all.map((h) => abc(h, weights));
    // the engines' picks interleaved irregularly; each engine names servers its own way
    const pattern = [0, 0, 1, 0, 1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 0, 1];
    const run = (count: number): string => {
      const want: string[] = [];
      const got: string[] = [];
      for (let i = 0; i < count; i++) {
        want.push(single.sequence(1, names[0]!));
        const e = pattern[i % pattern.length]!;
        got.push(engines[e]!.sequence(1, names[e + 1]!));
      }
      assert.deepEqual(got, want, name);
      return want.at(-1)!;
    };
    run(23);
    // list changes applied by every engine (one after the other, as workers do): a weight
    // change, a deletion of the server under the cursor, an addition
    const server = (i: number, label: string) => [...names[i]!.keys()].find((d) => names[i]!.get(d) === label)!;
    all.forEach((h, i) => h.setWeight(server(i, 'B'), 5));
    const last = run(7);
    all.forEach((h, i) => h.del(server(i, last))); // the server under the cursor
    run(9);
    all.forEach((h, i) => names[i]!.set(h.add('192.0.2.30', 2), 'E'));
    run(17);
  }
});
