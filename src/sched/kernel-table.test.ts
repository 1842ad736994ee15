/**
 * kernel-table.ts: the model of the program's index function over the built table picks what
 * the user-space scheduler picks, for thousands of random clients (sh, dh, mh, with and without
 * the port flag, weights including 0, an overloaded server), and KDEST_USER exactly where the
 * scheduler's first bucket cannot be used (where it would need its fallback); wrr's cycle;
 * every ineligibility rule; the constants against bpf/ulvs_maps.h.
 *
 * Control (the comparison can fail): 'the model catches a wrong table' rotates a correct table by
 * one element and expects disagreements, so a builder or index function that differs from the
 * scheduler would not pass.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Director } from '../core/director.js';
import { Fwd, SvcFlag, ULVS_EXACT, type RealServer, type VirtualService } from '../core/service.js';
import { defaultRegistry } from './index.js';
import { SH_FALLBACK, SH_PORT } from './sh.js';
import { MH_FALLBACK, MH_PORT } from './mh.js';
import { headerEnum } from '../datapath/tun/layouts.js';
import { INELIGIBLE_REASONS, KDEST_USER, KDestDir, kdestOf, kernelIndex, kernelTable, KSched, KSVC_PORT, KTAB_REGION, type KernelTable } from './kernel-table.js';

const TCP = 6;
const VIP = 0xcb007110; // 203.0.113.16
const key = (port: number, proto = TCP) => ({ proto, addr: VIP, port });
const rip = (i: number) => (0xc0000200 + i) >>> 0; // 192.0.2.i

/** A director with one service: servers in `weights` order of addition (kernel list: reversed). */
function service(sched: string, weights: number[], flags = 0, over: Partial<{ port: number; proto: number; persistent: number; ops: boolean; fwd: number }> = {}) {
  const d = new Director({ schedulers: defaultRegistry(), maxConns: 16 });
  const k = key(over.port ?? 80, over.proto ?? TCP);
  d.addService({ ...k, scheduler: sched, schedFlags: flags, persistent: over.persistent ?? 0, ops: over.ops ?? false });
  const rport = (over.fwd ?? Fwd.MASQ) === Fwd.MASQ ? 8080 : k.port; // DR/TUN keep the service port
  weights.forEach((w, i) => d.addDest(k, { addr: rip(i + 1), port: rport, weight: w, fwd: over.fwd ?? Fwd.MASQ }));
  return { d, k, svc: d.getService(k)! };
}

function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

const table = (svc: VirtualService): KernelTable => {
  const t = kernelTable(svc);
  assert.ok(!('ineligible' in t), `ineligible: ${'ineligible' in t ? t.ineligible : ''}`);
  return t;
};

/** Compare model(table) with the scheduler for `n` random clients; returns the disagreements. */
function disagreements(svc: VirtualService, t: KernelTable, n: number, seed: number, fallbackFlag: number): number {
  const r = rng(seed);
  const ctx = { proto: TCP, caddr: 0, cport: 0, vaddr: 0, vport: svc.port, now: 0, dryRun: true };
  let bad = 0;
  for (let i = 0; i < n; i++) {
    ctx.caddr = r() | 0; // the engine's int32 form
    ctx.cport = r() & 0xffff;
    ctx.vaddr = i % 7 === 0 ? VIP | 0 : (r() | 0); // dh keys on the VIP: vary it too
    const ix = kernelIndex(t.sched, t.flags, t.size, ctx.caddr, ctx.cport, ctx.vaddr, i);
    const e = t.elements[ix]!;
    const flags = svc.flags;
    svc.flags = flags & ~fallbackFlag; // what the first bucket gives, without the fallback
    const first = svc.sched!.pick(svc, ctx);
    svc.flags = flags;
    const picked = svc.sched!.pick(svc, ctx); // with the service's own flags
    if (e.dir === KDEST_USER) {
      if (first !== null) bad++; // USER only where the first bucket fails
    } else {
      const chosen = svc.dests.find((d) => d.addr >>> 0 === e.addr && d.port === e.rport) ?? null;
      if (chosen === null || chosen !== first || chosen !== picked) bad++;
    }
  }
  return bad;
}

const weightsSets = [[1, 1, 1], [3, 0, 2, 5], [7, 1], [0, 4, 4, 1, 9, 2], [1]];

for (const [sched, fb, port] of [['sh', SH_FALLBACK, SH_PORT], ['mh', MH_FALLBACK, MH_PORT], ['dh', 0, 0]] as const) {
  for (const withPort of sched === 'dh' ? [false] : [false, true]) {
    for (const withFallback of fb === 0 ? [false] : [false, true]) {
      test(`${sched}${withPort ? ' -port' : ''}${withFallback ? ' -fallback' : ''}: model(table) = scheduler's pick for 4000 clients per server set; USER exactly where the first bucket fails`, () => {
        weightsSets.forEach((ws, n) => {
          const { svc } = service(sched, ws, (withPort ? port : 0) | (withFallback ? fb : 0));
          if (n === 3) svc.dests[1]!.overloaded = true; // overload, as thresholds would set it
          const t = table(svc);
          assert.equal(t.sched, { sh: KSched.SH, mh: KSched.MH, dh: KSched.DH }[sched]);
          assert.equal(t.flags, withPort ? KSVC_PORT : 0);
          assert.equal(t.size, sched === 'mh' ? 4093 : 256);
          assert.equal(disagreements(svc, t, 4000, 1 + n, fb), 0, `weights ${ws.join(',')}`);
          const users = t.elements.filter((e) => e.dir === KDEST_USER).length;
          const unusable = svc.dests.filter((d) => d.weight === 0 || d.overloaded).length;
          if (unusable > 0 && sched !== 'mh') assert.ok(users > 0, 'an unusable server has USER elements'); // mh: weight 0 keeps lastWeight's slots
        });
      });
    }
  }
}

test('mh: quiescing a server (weight 0) keeps the table, its slots become USER', () => {
  const { d, k, svc } = service('mh', [2, 3, 1]);
  const before = table(svc);
  d.editDest(k, { addr: rip(2), port: 8080, weight: 0 });
  const after = table(svc);
  let changed = 0;
  for (let i = 0; i < before.size; i++) {
    const a = before.elements[i]!, b = after.elements[i]!;
    if (a.addr === rip(2)) assert.equal(b.dir, KDEST_USER);
    else assert.deepEqual(b, a);
    if (b.dir !== a.dir) changed++;
  }
  assert.ok(changed > 0);
  assert.equal(disagreements(svc, after, 4000, 9, MH_FALLBACK), 0);
});

test('the model catches a wrong table (control): a table rotated by one disagrees', () => {
  for (const sched of ['sh', 'mh', 'dh']) {
    const { svc } = service(sched, [3, 1, 2]);
    const t = table(svc);
    const rotated = { ...t, elements: [...t.elements.slice(1), t.elements[0]!] };
    assert.ok(disagreements(svc, rotated, 2000, 5, 0) > 100, sched);
  }
});

test('no server: size 0 (every SYN to ulvsd); all weights 0 in rr/wrr: size 0', () => {
  for (const s of ['sh', 'dh', 'mh', 'rr', 'wrr']) assert.equal(table(service(s, []).svc).size, 0, s);
  for (const s of ['rr', 'wrr']) assert.equal(table(service(s, [0, 0]).svc).size, 0, s);
});

test('elements carry the forwarding: NAT rip:rport, DR port 0, TUN the GUE port and type', () => {
  const nat = table(service('rr', [1]).svc).elements[0]!;
  assert.deepEqual(nat, { addr: rip(1), port: 8080, dir: KDestDir.NAT, tunType: 0, rport: 8080 });
  // DR and TUN services keep the user-space path for now (kernel-table.ts ineligibility), but
  // their elements are what the program takes (kernel-setup-program.test sets them up)
  const drSvc = service('rr', [1], 0, { fwd: Fwd.DROUTE }).svc;
  assert.equal((kernelTable(drSvc) as { ineligible?: string }).ineligible, 'forwarding');
  assert.deepEqual(kdestOf(drSvc.dests[0]!), { addr: rip(1), port: 0, dir: KDestDir.DR, tunType: 0, rport: 80 });
  const { d, k, svc } = service('rr', []);
  d.addDest(k, { addr: rip(9), port: 80, fwd: Fwd.TUNNEL, tunType: 1, tunPort: 6080 });
  assert.equal((kernelTable(svc) as { ineligible?: string }).ineligible, 'forwarding');
  assert.deepEqual(kdestOf(svc.dests[0]!), { addr: rip(9), port: 6080, dir: KDestDir.TUN, tunType: 1, rport: 80 });
});

test('rr: the servers with weight > 0 in list order, an overloaded one USER', () => {
  const { svc } = service('rr', [1, 0, 5, 2]); // list order: newest first -> rip4, rip3, rip2(0), rip1
  svc.dests[0]!.overloaded = true;
  const t = table(svc);
  assert.equal(t.sched, KSched.SEQ);
  assert.deepEqual(t.elements.map((e) => (e.dir === KDEST_USER ? 'U' : e.addr - rip(0))), ['U', 3, 1]);
  assert.equal(kernelIndex(t.sched, 0, t.size, 0, 0, 0, 7), 1); // cursor mod size
});

test("wrr: one cycle is IPVS's sequence, each server weight/gcd times (A,B,C = 4,3,2: A A B A B C A B C)", () => {
  const { svc } = service('wrr', [2, 3, 4]); // list order A(4) B(3) C(2)
  const name = (a: number) => ({ [rip(3)]: 'A', [rip(2)]: 'B', [rip(1)]: 'C' })[a];
  assert.equal(table(svc).elements.map((e) => name(e.addr)).join(' '), 'A A B A B C A B C');
  for (const ws of [[6, 4, 2], [10, 0, 5, 15], [1, 1], [7, 3, 0, 2, 9]]) {
    const s = service('wrr', ws).svc;
    const t = table(s);
    const g = ws.filter((w) => w > 0).reduce((a, b) => { while (b) [a, b] = [b, a % b]; return a; });
    for (const d of s.dests) assert.equal(t.elements.filter((e) => e.addr === d.addr >>> 0).length, d.weight / g);
    // the same order as the engine's own wrr from a fresh cursor (the head, cw = mw)
    s.sched!.setCursor!(s, { server: null, weight: 0 });
    const ctx = { proto: TCP, caddr: 1, cport: 1, vaddr: VIP, vport: 80, now: 0, dryRun: false };
    const picks: number[] = [];
    for (let i = 0; i < t.size * 2; i++) picks.push(s.sched!.pick(s, ctx)!.addr >>> 0);
    assert.deepEqual(picks, [...t.elements, ...t.elements].map((e) => e.addr), ws.join(','));
  }
});

test('ineligible: each rule gives its reason', () => {
  const why = (s: VirtualService) => {
    const t = kernelTable(s);
    return 'ineligible' in t ? t.ineligible : 'eligible';
  };
  assert.equal(why(service('sh', [1], ULVS_EXACT).svc), 'exact');
  assert.equal(why(service('rr', [1], 0, { proto: 17 }).svc), 'proto');
  assert.equal(why(service('rr', [1], 0, { persistent: 300 }).svc), 'persistent');
  assert.equal(why(service('rr', [1], 0, { proto: 17, ops: true }).svc), 'proto'); // ops exists for UDP only: proto decides first
  const ops = service('rr', [1]).svc;
  ops.flags |= SvcFlag.ONEPACKET;
  assert.equal(why(ops), 'ops');
  for (const s of ['wlc', 'lc', 'lblc', 'lblcr', 'sed', 'nq', 'fo', 'ovf', 'twos']) assert.equal(why(service(s, [1]).svc), 'sched', s);
  const fw = new Director({ schedulers: defaultRegistry(), maxConns: 16 });
  fw.addService({ proto: 0, addr: 5, port: 0, scheduler: 'rr' });
  assert.equal(why(fw.getService({ proto: 0, addr: 5, port: 0 })!), 'fwmark');
  const th = service('sh', [1, 1]);
  th.d.editDest(th.k, { addr: rip(1), port: 8080, uThreshold: 10 });
  assert.equal(why(th.svc), 'threshold');
  const lt = service('mh', [1, 1]);
  lt.d.editDest(lt.k, { addr: rip(2), port: 8080, uThreshold: 10, lThreshold: 5 });
  assert.equal(why(lt.svc), 'threshold');
  const local = service('dh', [1]).svc;
  (local.dests[0] as RealServer).fwd = Fwd.LOCALNODE;
  assert.equal(why(local), 'forwarding');
  assert.equal(why(service('wrr', [4096, 1]).svc), 'cycle'); // 4097 elements
  assert.equal(why(service('wrr', [4095, 1]).svc), 'eligible'); // 4096: fits
  assert.equal(why(service('wrr', [4000, 2000]).svc), 'eligible'); // gcd 2000: 3 elements
  assert.deepEqual([...INELIGIBLE_REASONS].sort(), ['cycle', 'exact', 'forwarding', 'fwmark', 'ops', 'persistent', 'proto', 'sched', 'threshold']);
});

test('constants match bpf/ulvs_maps.h', () => {
  const header = readFileSync(fileURLToPath(new URL('../../../bpf/ulvs_maps.h', import.meta.url)), 'utf8');
  assert.deepEqual(headerEnum(header, 'ksched'), { KSCHED_SH: KSched.SH, KSCHED_DH: KSched.DH, KSCHED_MH: KSched.MH, KSCHED_SEQ: KSched.SEQ });
  assert.deepEqual(headerEnum(header, 'ksvc_flags'), { KSVC_PORT });
  const lim = (name: string) => Number(new RegExp(`\\b${name} = (0x[0-9a-f]+|\\d+)`).exec(header)?.[1]); // enum ksetup_limits
  assert.equal(lim('KDEST_USER'), KDEST_USER);
  assert.equal(lim('KTAB_REGION'), KTAB_REGION);
  const dir = headerEnum(header, 'flow_dir');
  assert.deepEqual([dir['FLOW_REQUEST'], dir['FLOW_DR'], dir['FLOW_TUN']], [KDestDir.NAT, KDestDir.DR, KDestDir.TUN]);
});
