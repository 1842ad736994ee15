/**
 * Kernel set-up's scheduling (bpf/ulvs_ksetup.h kindex, bpf/ulvs_khash.h) against ulvs's own
 * schedulers (src/sched), by BPF_PROG_TEST_RUN: for many clients, the real server the program
 * picks from a table is the one the TypeScript scheduler picks (sh, sh-port, dh, mh, mh-port;
 * the tables written as IPVS fills them: sh and dh by their fill rule, mh by buildMaglevTable),
 * the seq cursor walks the table one element per SYN, and each record lands in the ring of the
 * worker steering.ts queueOf names (also for a service keyed on the masked client address).
 * Also: the program's cost per SYN (the kernel's own time per run) and its instruction count.
 *
 * Controls: each scheduler's clients reach every server (so a program that ignored the hash
 * passes no case; one that hashed other bytes, or with another key, disagrees with the model
 * for some client: mutating khash_32's constant or the port's addition fails the test); the
 * seq run wraps round the table end.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testRun } from '../../src/datapath/tun/bpf.js';
import { queueOf } from '../../src/datapath/tun/steering.js';
import { FLOW_DIR, KSCHED, KSETUP_LIMITS, KSVC_FLAGS } from '../../src/datapath/tun/layouts.gen.js';
import { buildMaglevTable, MH_PORT } from '../../src/sched/mh.js';
import { SH_PORT } from '../../src/sched/sh.js';
import type { RealServer } from '../../src/core/service.js';
import { ipv4 } from '../../src/wire/build.js';
import { needsRoot } from '../support/root.js';
import { SchedHarness } from '../support/sched-harness.js';
import { Prng } from '../support/prng.js';
import { CLIENT_MAC, IN_MAC, ip4, KsetupBed, mac, RIPS, type KDest } from '../support/ksetup-bed.js';

const REDIRECT = 7;
const REGION = KSETUP_LIMITS.KTAB_REGION;
const CLIENTS = 150;

/** ip_vs_sh_reassign: each server `weight` consecutive buckets (1 if 0), in list order, wrapping. */
function shTable(ds: readonly RealServer[]): RealServer[] {
  const t: RealServer[] = [];
  let p = 0, count = 0;
  for (let i = 0; i < 256; i++) {
    t.push(ds[p]!);
    if (++count >= ds[p]!.weight) {
      p = (p + 1) % ds.length;
      count = 0;
    }
  }
  return t;
}

describe('fast-path program: kernel set-up schedules as src/sched does (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  const bed = new KsetupBed('hkps');
  const A = 'hkpsa';
  const prng = new Prng(16);

  before(() => {
    bed.enter({ slots: 8, kernelSlots: 64, workers: 3, ringBytes: 1 << 16 });
  });
  after(() => bed.leave());

  const send = (ip: Buffer) => {
    const ctx = Buffer.alloc(44);
    ctx.writeUInt32LE(bed.ifindex[A]!, 36);
    ctx.writeUInt32LE(bed.ifindex[A]!, 40);
    return testRun(bed.prog, Buffer.concat([mac(IN_MAC), mac(CLIENT_MAC), Buffer.from([8, 0]), ip]), ctx);
  };
  const syn = (client: string, cport: number, vip: string, vport: number) =>
    ipv4({ src: client, dst: vip, ttl: 64, id: 7 }).tcp({ sport: cport, dport: vport, flags: 'S', seq: 1, window: 64240 }).build();
  const harness = (name: string, flags: number) => {
    const h = new SchedHarness(name, { flags });
    [1, 3, 2, 1].forEach((w, i) => h.add(RIPS[i]!, w, 8080));
    return h;
  };
  const kdests = (t: readonly (RealServer | null)[]): KDest[] => t.map((d) => (d ? { rip: [24, 16, 8, 0].map((s) => (d.addr >>> s) & 255).join('.'), port: 8080, dir: FLOW_DIR.FLOW_REQUEST } : { rip: '0.0.0.0', port: 0, dir: KSETUP_LIMITS.KDEST_USER }));
  /** Send one SYN, take its record from the owner's ring (checking the owner), undo the connection. */
  const schedule = (client: string, cport: number, vip: string, vport: number, steer: { mask: number } | null = null): number => {
    const r = send(syn(client, cport, vip, vport));
    assert.equal(r.retval, REDIRECT, `${client}:${cport} -> ${vip}:${vport} scheduled`);
    const spec = { vips: [], inbound: steer ? [{ proto: 6, addr: ip4(vip), port: vport, mask: steer.mask }] : [], outbound: [] };
    const w = queueOf(spec, 3, 6, ip4(client), cport, ip4(vip), vport);
    const recs = bed.drain(w);
    for (let o = 0; o < 3; o++) if (o !== w) assert.deepEqual(bed.drain(o), [], `no record in ring ${o} (owner ${w})`);
    assert.equal(recs.length, 1, 'one record in the owner ring');
    const rec = recs[0]!;
    const rip = [24, 16, 8, 0].map((s) => (rec.raddr >>> s) & 255).join('.');
    bed.deleteEntry(client, vip, cport, vport);
    bed.deleteEntry(rip, client, 8080, cport);
    bed.pushSlot(rec.slot);
    return rec.raddr >>> 0; // readKReport gives int32 (the engine's form); the checks compare uint32
  };
  const clients = (n: number) => Array.from({ length: n }, () => ({ client: `198.51.100.${2 + (prng.u32() % 240)}`, cport: 1024 + (prng.u32() % 60000) }));

  const CASES: { name: string; sched: string; ksched: number; flags: number; kflags: number; table: (h: SchedHarness) => (RealServer | null)[] }[] = [
    { name: 'sh', sched: 'sh', ksched: KSCHED.KSCHED_SH, flags: 0, kflags: 0, table: (h) => shTable(h.svc.dests) },
    { name: 'sh-port', sched: 'sh', ksched: KSCHED.KSCHED_SH, flags: SH_PORT, kflags: KSVC_FLAGS.KSVC_PORT, table: (h) => shTable(h.svc.dests) },
    { name: 'mh', sched: 'mh', ksched: KSCHED.KSCHED_MH, flags: 0, kflags: 0, table: (h) => buildMaglevTable(h.svc.dests) },
    { name: 'mh-port', sched: 'mh', ksched: KSCHED.KSCHED_MH, flags: MH_PORT, kflags: KSVC_FLAGS.KSVC_PORT, table: (h) => buildMaglevTable(h.svc.dests) },
  ];
  CASES.forEach((c, n) => {
    test(`${c.name}: ${CLIENTS} clients get the server ${c.sched}.ts picks`, () => {
      const h = harness(c.sched, c.flags);
      const table = c.table(h);
      const vip = `203.0.113.${20 + n}`;
      bed.putTable(n * 2 * REGION, kdests(table));
      bed.putService({ vip, port: 80, base: n * 2 * REGION, size: table.length, region: n, sched: c.ksched, flags: c.kflags });
      const seen = new Set<number>();
      for (const { client, cport } of clients(CLIENTS)) {
        const want = h.pick({ caddr: ip4(client), cport, vaddr: ip4(vip), vport: 80 })!;
        const got = schedule(client, cport, vip, 80);
        assert.equal(got, want.addr >>> 0, `${client}:${cport}`);
        seen.add(got);
      }
      assert.equal(seen.size, 4, 'control: every server chosen for some client (the choice depends on the hash)');
    });
  });

  test(`dh: SYNs to 40 VIPs get the server dh.ts picks (hash of the VIP)`, () => {
    const h = harness('dh', 0);
    const table = Array.from({ length: 256 }, (_, i) => h.svc.dests[i % h.svc.dests.length]!);
    bed.putTable(8 * 2 * REGION, kdests(table));
    const seen = new Set<number>();
    for (let v = 0; v < 40; v++) {
      const vip = `203.0.113.${100 + v}`;
      bed.putService({ vip, port: 80, base: 8 * 2 * REGION, size: 256, region: 8, sched: KSCHED.KSCHED_DH });
      const want = h.pick({ caddr: ip4('198.51.100.9'), cport: 5555, vaddr: ip4(vip), vport: 80 })!;
      const got = schedule('198.51.100.9', 5555 + v, vip, 80);
      assert.equal(got, want.addr >>> 0, vip);
      seen.add(got);
    }
    assert.ok(seen.size > 1, 'control: more than one server chosen');
  });

  test('seq (rr/wrr): the service\'s cursor (one for every CPU) walks the table one element per SYN and wraps', () => {
    const order = [0, 1, 2, 0, 3];
    bed.putTable(9 * 2 * REGION, order.map((i) => ({ rip: RIPS[i]!, port: 8080, dir: FLOW_DIR.FLOW_REQUEST })));
    bed.putService({ vip: '203.0.113.60', port: 80, base: 9 * 2 * REGION, size: order.length, region: 9, sched: KSCHED.KSCHED_SEQ });
    const got = Array.from({ length: 12 }, (_, k) => schedule('198.51.100.7', 30000 + k, '203.0.113.60', 80));
    assert.deepEqual(got, Array.from({ length: 12 }, (_, k) => ip4(RIPS[order[k % order.length]!]!)));
  });

  test('a service keyed on the masked client address: the record goes to the worker steering gives that mask', () => {
    bed.putTable(10 * 2 * REGION, [{ rip: RIPS[0]!, port: 8080, dir: FLOW_DIR.FLOW_REQUEST }]);
    const mask = 0xffffff00;
    bed.putService({ vip: '203.0.113.61', port: 80, base: 10 * 2 * REGION, size: 1, region: 10, sched: KSCHED.KSCHED_SEQ, steerMask: mask });
    for (const { client, cport } of clients(30)) schedule(client, cport, '203.0.113.61', 80, { mask }); // asserts the owner ring
  });

  test('cost: the kernel time per SYN run (made, then undone) and per reported retransmitted SYN', (t) => {
    const vip = '203.0.113.60';
    let made = 0, sum = 0;
    for (let k = 0; k < 300; k++) {
      const r = send(syn('198.51.100.8', 20000 + k, vip, 80));
      assert.equal(r.retval, REDIRECT);
      sum += r.durationNs;
      made++;
      for (let w = 0; w < 3; w++) for (const rec of bed.drain(w)) bed.pushSlot(rec.slot);
      bed.deleteEntry('198.51.100.8', vip, 20000 + k, 80);
      for (const rip of RIPS) bed.deleteEntry(rip, '198.51.100.8', 8080, 20000 + k);
    }
    const keep = send(syn('198.51.100.8', 29999, vip, 80));
    assert.equal(keep.retval, REDIRECT);
    // (repeat > 1 would run the program again on the packet it rewrote: one run per call)
    let again = 0;
    for (let k = 0; k < 300; k++) {
      const r = send(syn('198.51.100.8', 29999, vip, 80));
      assert.equal(r.retval, REDIRECT);
      again += r.durationNs / 300;
      for (let w = 0; w < 3; w++) bed.drain(w);
    }
    // baselines in the same runs: a data segment of that connection (the ordinary offloaded path)
    // and a SYN to a VIP:port that is no kernel set-up service (lookups only, TCX_NEXT)
    let data = 0, miss = 0;
    const seg = ipv4({ src: '198.51.100.8', dst: vip, ttl: 64, id: 7 }).tcp({ sport: 29999, dport: 80, flags: 'PA', seq: 2, ack: 9, window: 502 }).payload('x'.repeat(100)).build();
    for (let k = 0; k < 300; k++) {
      const r = send(seg);
      assert.equal(r.retval, REDIRECT);
      data += r.durationNs / 300;
      miss += send(syn('198.51.100.8', 29999, vip, 81)).durationNs / 300;
    }
    t.diagnostic(`baselines: data segment forwarded ${data.toFixed(0)} ns per run, SYN to no kernel set-up service ${miss.toFixed(0)} ns per run`);
    t.diagnostic(`pure SYN made: ${(sum / made).toFixed(0)} ns per run (${made} runs, BPF_PROG_TEST_RUN duration); retransmitted SYN reported: ${again.toFixed(0)} ns per run (300 runs); program ${bed.insns} insns`);
    assert.ok(sum / made > 0);
  });

});
