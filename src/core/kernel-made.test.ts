/**
 * Exactness of kernel-made connections (kernel-made.ts): two engines with the same rules and
 * seed; `eng` gets every packet through process(), `ker` gets the same history as the kernel
 * fast path would report it (KREPORT_NEW for the SYN, KREPORT_SEGMENT for the segments the
 * fast path reports: SYN, FIN, RST, the first request segment without them (KF_ACK), any
 * segment after a FIN or RST (KF_ALL)), the other segments counted in the connection's slot and
 * handed over by the harvest (offloadActivity), as for any offloaded connection. After every
 * step both must show the same -L -c listing (state, time left), the same counters of the
 * totals, the service and its servers (conns, packets and bytes each way), the same active and
 * inactive counts, the same sync records, and the connection must leave both at the same tick.
 * The control: `ker` with one report skipped (the handshake's ACK) differs (last test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../wire/build.js';
import { TcpFlag } from '../wire/tcp.js';
import { CLIENT, director, ip, key, RS1, RS2, TCP, VIP } from '../../test/support/bed.js';
import { capture, records, type Captured } from '../../test/support/sync-bed.js';
import type { Director } from './director.js';
import { ConnFlag } from './conn-table.js';
import { KernelOpen, KernelSegment } from './kernel-made.js';
import { OffloadReport, type OffloadPort } from './offload.js';
import { Fwd } from './service.js';
import { TcpState } from './tcp-states.js';
import { Event } from './verdict.js';

const K = key(TCP, VIP, 80);
const KSLOT0 = 100; // the kernel's set-up slots in this test: [100, 116)

/** A port that takes kernel-made connections in slots [KSLOT0, KSLOT0 + 16) and records calls;
 *  a withdrawal reports nothing (the harvests reported everything). */
class KernelPort implements OffloadPort {
  log: string[] = [];
  held = new Map<number, number>(); // slot -> connection
  /** accept the engine's own offers (the engine-side director with offload after N) */
  constructor(readonly accepts = false) {}
  offer(c: number): boolean {
    this.log.push(`offer ${c}`);
    return this.accepts;
  }
  withdraw(c: number, out: OffloadReport): void {
    this.log.push(`withdraw ${c}`);
    out.clear();
    for (const [s, x] of this.held) if (x === c) this.held.delete(s);
  }
  route(c: number): void {
    this.log.push(`route ${c}`);
  }
  unroute(c: number): void {
    this.log.push(`unroute ${c}`);
  }
  kernelSlotFree(slot: number): boolean {
    return slot >= KSLOT0 && slot < KSLOT0 + 16 && !this.held.has(slot);
  }
  adoptKernel(c: number, slot: number): void {
    this.log.push(`adoptKernel ${c} ${slot}`);
    this.held.set(slot, c);
  }
  moveKernel(from: number, to: number, out: OffloadReport): void {
    this.log.push(`moveKernel ${from} ${to}`);
    out.clear();
    for (const [s, x] of this.held) if (x === from) this.held.set(s, to);
  }
}

interface Pair {
  eng: Director;
  ker: Director;
  port: KernelPort;
  capE: Captured;
  capK: Captured;
}

/** `engAfter`: the engine-side director offloads its connection after that many packets (its
 *  later packets without SYN/FIN/RST then reach it through the harvest, as the fast path's) */
function pair(fwd: number = Fwd.MASQ, engAfter = 1000, servers = 2): Pair {
  const port = new KernelPort();
  const eng = director({ offload: { port: () => new KernelPort(true), after: engAfter } });
  const ker = director({ offload: { port: () => port, after: 1000 } });
  const capE = capture();
  const capK = capture();
  for (const [d, cap] of [[eng, capE], [ker, capK]] as const) {
    d.addService({ ...K, scheduler: 'rr' });
    d.addDest(K, { addr: ip(RS1), port: fwd === Fwd.MASQ ? 8080 : 80, fwd });
    if (servers > 1) d.addDest(K, { addr: ip(RS2), port: fwd === Fwd.MASQ ? 8080 : 80, fwd });
    d.sync.startMaster({ syncid: 1, maxlen: 1472 }, cap.sink);
  }
  return { eng, ker, port, capE, capK };
}

/** One packet of the history: a request (client -> VIP) or a reply, its flags, payload bytes, time (ms). */
type Step = [dir: 'in' | 'out', flags: string, payload: number, t: number];
const FLAG_BITS: Record<string, number> = { F: TcpFlag.FIN, S: TcpFlag.SYN, R: TcpFlag.RST, P: TcpFlag.PSH, A: TcpFlag.ACK };
const bits = (f: string) => [...f].reduce((b, ch) => b | FLAG_BITS[ch]!, 0);

/**
 * Play `steps` on both engines; `check` compares them after each. Returns the connection of
 * each. `skip`: the index of a report `ker` does not get (the control).
 */
function play(p: Pair, steps: Step[], cport = 40000, skip = -1): { ce: number; ck: number; rs: number; rport: number } {
  const { eng, ker, port } = p;
  let ce = -1;
  let ck = -1;
  let rs = 0;
  let rport = 0;
  let kfAck = true; // the request entry's KF_ACK
  let kfAll = false; // KF_ALL on both entries
  const before = port.log.length;
  steps.forEach(([dir, flags, n, t], i) => {
    eng.tick(t);
    ker.tick(t);
    const fl = bits(flags);
    const src = dir === 'in' ? CLIENT : rs === 0 ? RS1 : fmt(rs);
    const pkt = (dir === 'in' ? ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: cport, dport: 80, flags }) : ipv4({ src, dst: CLIENT }).tcp({ sport: rport, dport: cport, flags })).payload(Buffer.alloc(n)).build();
    const viaKernel = i > 0 && (eng.conns.flags(ce) & ConnFlag.OFFLOADED) !== 0 && (fl & (TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) === 0;
    if (viaKernel) eng.offloadActivity(ce, activity(dir, pkt.length, t));
    else assert.ok(eng.process(Buffer.from(pkt), 0, pkt.length, t, 0) >= 0);
    if (i === 0) {
      ce = eng.lastConn;
      rs = eng.conns.daddr(ce);
      rport = eng.conns.dport(ce);
      ck = ker.kernel.open(TCP, ip(CLIENT), cport, ip(VIP), 80, rs, rport, ker.getService(K)!.dests.find((d) => d.addr >>> 0 === rs >>> 0)!.fwd, KSLOT0 + (cport % 16), pkt.length, t);
      assert.ok(ck >= 0, `open: ${ck}`);
      return;
    }
    const reported = (fl & (TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) !== 0 || (dir === 'in' && kfAck) || kfAll;
    if (dir === 'in' && (fl & (TcpFlag.SYN | TcpFlag.FIN | TcpFlag.RST)) === 0) kfAck = false;
    if ((fl & (TcpFlag.FIN | TcpFlag.RST)) !== 0) kfAll = true;
    if (i === skip) return;
    if (reported) assert.equal(ker.kernel.segment(TCP, ip(CLIENT), cport, ip(VIP), 80, rs, rport, dir === 'in' ? 0 : 1, fl, pkt.length, t), KernelSegment.Applied);
    else ker.offloadActivity(ck, activity(dir, pkt.length, t));
    if (skip < 0) same(p, t, `after step ${i} (${dir} ${flags})`);
  });
  // no routing, and no withdrawal on a state change but the last: a connection that has
  // finished (TIME_WAIT, CLOSE) leaves the kernel, so its slot and entries serve new ones
  const log = port.log.slice(before);
  assert.ok(!log.some((l) => l.startsWith('route')), `no routing while reports are applied: ${port.log.join(', ')}`);
  const withdrawals = log.filter((l) => l.startsWith('withdraw')).length;
  const finished = ker.conns.state(ck) === TcpState.TIME_WAIT || ker.conns.state(ck) === TcpState.CLOSE;
  assert.ok(withdrawals === 0 || (withdrawals === 1 && finished), `a withdrawal only once finished: ${port.log.join(', ')}`);
  return { ce, ck, rs, rport };
}

/** one packet forwarded by the kernel, as the harvest reports it */
const activity = (dir: 'in' | 'out', len: number, t: number) => Object.assign(new OffloadReport(), dir === 'in' ? { inPkts: 1, inBytes: len } : { outPkts: 1, outBytes: len }, { lastSeenMs: t });
const fmt = (a: number) => [a >>> 24, (a >>> 16) & 255, (a >>> 8) & 255, a & 255].join('.');

/** What must agree between the two engines at time t. */
function view(d: Director, cap: Captured, t: number) {
  const snap = d.snapshot();
  return {
    conns: d.connections(t).map((c) => `${c.caddr}:${c.cport} ${c.daddr}:${c.dport} ${c.state} ${c.expiresInMs}`),
    totals: snap.totals.counters,
    services: snap.services.map((s) => ({ counters: s.counters, dests: s.dests.map((x) => ({ addr: x.addr, counters: x.counters, active: x.activeConns, inact: x.inactConns })) })),
    created: d.events[Event.ConnsCreated],
    expired: d.events[Event.ConnsExpired],
    rescheduled: d.events[Event.Rescheduled],
    sync: (d.sync.flush(), records(cap.datagrams)),
  };
}
function same(p: Pair, t: number, what: string): void {
  assert.deepEqual(view(p.ker, p.capK, t), view(p.eng, p.capE, t), what);
}

/** Tick both engines every 100 ms from t until both tables are empty; the times they emptied. */
function expiry(p: Pair, t: number): { eng: number; ker: number } {
  const out = { eng: -1, ker: -1 };
  for (; t < 20 * 60_000 && (out.eng < 0 || out.ker < 0); t += 100) {
    p.eng.tick(t);
    p.ker.tick(t);
    if (out.eng < 0 && p.eng.conns.count === 0) out.eng = t;
    if (out.ker < 0 && p.ker.conns.count === 0) out.ker = t;
    if (t % 10_000 === 0) same(p, t, `expiring at ${t}`);
  }
  return out;
}

const CLOSE: Step[] = [
  ['in', 'S', 0, 1000],
  ['out', 'SA', 0, 1001],
  ['in', 'A', 0, 1002],
  ['in', 'PA', 120, 1003],
  ['out', 'A', 0, 1004],
  ['out', 'PA', 1400, 1005],
  ['in', 'A', 0, 1006],
  ['in', 'PA', 80, 1500],
  ['out', 'PA', 300, 1501],
  ['in', 'FA', 0, 1600],
  ['out', 'A', 0, 1601],
  ['out', 'FA', 0, 1602],
  ['in', 'A', 0, 1603],
];

test('SYN .. data .. FIN, ACK, FIN, ACK: the same listing, counters, sync records and expiry as the engine', () => {
  const p = pair();
  const { ck } = play(p, CLOSE);
  assert.equal(p.ker.connections(1603)[0]!.state, 'TIME_WAIT');
  assert.deepEqual(p.port.log.slice(0, 1), [`adoptKernel ${ck} ${KSLOT0 + 0}`]);
  const e = expiry(p, 1700);
  assert.equal(e.ker, e.eng);
  assert.ok(p.port.log.includes(`withdraw ${ck}`), 'taken back from the kernel at expiry');
});

test('the same against an engine that offloaded the connection itself after 3 packets (its FIN withdrew it)', () => {
  const p = pair(Fwd.MASQ, 3);
  const { ce } = play(p, CLOSE, 40010);
  assert.equal(p.eng.counters()['offloaded'], 1, 'the engine-side connection went to the kernel');
  assert.equal((p.eng.conns.flags(ce) & ConnFlag.OFFLOADED) === 0, true, 'and came back at the FIN');
  const e = expiry(p, 1700);
  assert.equal(e.ker, e.eng);
});

test('an RST ends it as in the engine', () => {
  const p = pair();
  play(p, [['in', 'S', 0, 1000], ['out', 'SA', 0, 1010], ['in', 'A', 0, 1020], ['in', 'PA', 50, 1030], ['out', 'PA', 500, 1040], ['in', 'R', 0, 1050]], 40001);
  assert.equal(p.ker.connections(1050)[0]!.state, 'CLOSE');
  const e = expiry(p, 1100);
  assert.equal(e.ker, e.eng);
});

test('a client that never completes the handshake (its SYN sent again at 1 s and 3 s)', () => {
  const p = pair();
  play(p, [['in', 'S', 0, 1000], ['out', 'SA', 0, 1010], ['in', 'S', 0, 2000], ['out', 'SA', 0, 2010], ['in', 'S', 0, 4000]], 40002);
  assert.equal(p.ker.connections(4000)[0]!.state, 'SYN_RECV');
  const e = expiry(p, 4100);
  assert.equal(e.ker, e.eng);
});

test('direct routing: the input-only table, one entry, no routing by the engine', () => {
  const p = pair(Fwd.DROUTE);
  play(p, [['in', 'S', 0, 1000], ['in', 'A', 0, 1010], ['in', 'PA', 300, 1020], ['in', 'A', 0, 1030], ['in', 'FA', 0, 1040], ['in', 'A', 0, 1050]], 40003);
  assert.equal(p.ker.connections(1050)[0]!.state, 'FIN_WAIT');
  const e = expiry(p, 1100);
  assert.equal(e.ker, e.eng);
});

test('tunnelling: as direct routing (input-only table), the request entry only', () => {
  const p = pair(Fwd.TUNNEL);
  play(p, [['in', 'S', 0, 1000], ['in', 'A', 0, 1010], ['in', 'PA', 300, 1020], ['in', 'R', 0, 1030]], 40011);
  const e = expiry(p, 1100);
  assert.equal(e.ker, e.eng);
});

test('the rr cursor does not move for a kernel-made connection', () => {
  const p = pair();
  const { rs } = play(p, CLOSE.slice(0, 3), 40004); // eng scheduled (its cursor moved), ker was told the same server
  const syn = ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40005, dport: 80, flags: 'S' }).build();
  p.eng.process(Buffer.from(syn), 0, syn.length, 2000, 0);
  p.ker.process(Buffer.from(syn), 0, syn.length, 2000, 0);
  assert.notEqual(p.eng.conns.daddr(p.eng.lastConn) >>> 0, rs >>> 0, "eng's cursor moved on");
  assert.equal(p.ker.conns.daddr(p.ker.lastConn) >>> 0, rs >>> 0, "ker's cursor still at the first server");
});

test('refusals change nothing: unknown service, unknown server, another method, a bad slot, a kept tuple', () => {
  const p = pair();
  const k = p.ker;
  const before = JSON.stringify(view(k, p.capK, 1000));
  const open = (vport: number, rs: string, rport: number, fwd: number, slot: number, cport = 41000) => k.kernel.open(TCP, ip(CLIENT), cport, ip(VIP), vport, ip(rs), rport, fwd, slot, 60, 1000);
  assert.equal(open(81, RS1, 8080, Fwd.MASQ, KSLOT0), KernelOpen.NoService);
  assert.equal(open(80, '192.0.2.99', 8080, Fwd.MASQ, KSLOT0), KernelOpen.NoDest);
  assert.equal(open(80, RS1, 8081, Fwd.MASQ, KSLOT0), KernelOpen.NoDest);
  assert.equal(open(80, RS1, 8080, Fwd.DROUTE, KSLOT0), KernelOpen.NotEligible);
  assert.equal(open(80, RS1, 8080, Fwd.MASQ, 5), KernelOpen.BadSlot);
  assert.equal(k.kernel.segment(TCP, ip(CLIENT), 41000, ip(VIP), 80, ip(RS1), 8080, 0, TcpFlag.ACK, 40, 1000), KernelSegment.NoConn);
  assert.equal(JSON.stringify(view(k, p.capK, 1000)), before);
  // the engine holds 41001 in SYN_RECV (scheduled by itself): IPVS keeps it for a SYN, so the report is refused
  const syn = ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 41001, dport: 80, flags: 'S' }).build();
  k.process(Buffer.from(syn), 0, syn.length, 1000, 0);
  const held = JSON.stringify(view(k, p.capK, 1000));
  assert.equal(open(80, RS2, 8080, Fwd.MASQ, KSLOT0, 41001), KernelOpen.Conflict);
  assert.equal(JSON.stringify(view(k, p.capK, 1000)), held);
  assert.ok(!p.port.log.some((l) => l.startsWith('adoptKernel')));
});

test('a tuple whose engine connection has finished (TIME_WAIT) is reused as IPVS does: expired, counted rescheduled', () => {
  const p = pair();
  play(p, CLOSE, 40006);
  // the same client port again: eng gets the SYN (conn_reuse_mode expires the TIME_WAIT entry), ker the report
  const syn = ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40006, dport: 80, flags: 'S' }).build();
  p.eng.tick(5000);
  p.ker.tick(5000);
  p.eng.process(Buffer.from(syn), 0, syn.length, 5000, 0);
  const c = p.eng.lastConn;
  const got = p.ker.kernel.open(TCP, ip(CLIENT), 40006, ip(VIP), 80, p.eng.conns.daddr(c), 8080, Fwd.MASQ, KSLOT0 + 1, syn.length, 5000);
  assert.ok(got >= 0);
  assert.equal(p.ker.events[Event.Rescheduled], 1);
  same(p, 5000, 'after the reuse');
});

test("a SYN on a finished kernel-made connection (the client's port again): as IPVS, the old expired and a new one made, in the same slot", () => {
  const p = pair(Fwd.MASQ, 1000, 1); // one server: the engine's scheduler picks the one the kernel's entry goes to
  const { ck } = play(p, CLOSE, 40008);
  const rs = p.ker.conns.daddr(ck);
  const again: Step[] = [['in', 'S', 0, 5000], ['out', 'SA', 0, 5001], ['in', 'A', 0, 5002], ['in', 'PA', 99, 5003], ['in', 'FA', 0, 5004]];
  const pkt = (dir: 'in' | 'out', flags: string, n: number) => (dir === 'in' ? ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 40008, dport: 80, flags }) : ipv4({ src: RS1, dst: CLIENT }).tcp({ sport: 8080, dport: 40008, flags })).payload(Buffer.alloc(n)).build();
  for (const [dir, flags, n, t] of again) {
    p.eng.tick(t);
    p.ker.tick(t);
    const b = pkt(dir, flags, n);
    p.eng.process(Buffer.from(b), 0, b.length, t, 0);
    // the kernel's entries still exist with KF_ALL (a FIN was seen): every segment is reported
    assert.equal(p.ker.kernel.segment(TCP, ip(CLIENT), 40008, ip(VIP), 80, rs, 8080, dir === 'in' ? 0 : 1, bits(flags), b.length, t), KernelSegment.Applied);
    same(p, t, `reuse: ${dir} ${flags}`);
  }
  assert.equal(p.ker.events[Event.Rescheduled], 1);
  assert.equal(p.ker.events[Event.ConnsCreated], 2);
  // the old connection left the kernel when it finished (TIME_WAIT): one withdrawal, before the
  // SYN; a SYN that still met its entries (before the flush deleted them) is applied as above
  assert.equal(p.port.log.filter((l) => l.startsWith('withdraw')).length, 1, p.port.log.join(', '));
  const e = expiry(p, 5100);
  assert.equal(e.ker, e.eng);
});

test('a SYN on a finished kernel-made connection whose server is quiesced: expired with its entries (Ended)', () => {
  const p = pair(Fwd.MASQ, 1000, 1);
  const { ck } = play(p, CLOSE, 40009);
  const rs = p.ker.conns.daddr(ck);
  p.ker.editDest(K, { addr: ip(RS1), port: 8080, weight: 0 });
  assert.equal(p.ker.kernel.segment(TCP, ip(CLIENT), 40009, ip(VIP), 80, rs, 8080, 0, TcpFlag.SYN, 60, 5000), KernelSegment.Ended);
  assert.equal(p.ker.conns.count, 0);
  assert.ok(p.port.log.includes(`withdraw ${ck}`), 'its entries deleted');
  assert.equal(p.ker.events[Event.Rescheduled], 1);
});

test('control: one report left out (the handshake ACK) is seen by the comparison', () => {
  const p = pair();
  play(p, CLOSE.slice(0, 5), 40007, 2);
  assert.throws(() => same(p, 1004, 'control'), assert.AssertionError);
});

test('a full table: a kernel-made connection still in SYN_RECV is evicted for a new one as an engine-made one is (evict_embryonic), withdrawn first; control: evict_embryonic=0 refuses (TableFull)', () => {
  const fill = (evict: boolean) => {
    const port = new KernelPort();
    const d = director({ maxConns: 8, offload: { port: () => port, after: 1000 }, sysctl: { evictEmbryonic: evict } });
    d.addService({ ...K, scheduler: 'rr' });
    d.addDest(K, { addr: ip(RS1), port: 8080, fwd: Fwd.MASQ });
    d.tick(1000);
    const made: number[] = [];
    let last = 0;
    for (let i = 0; i < 16; i++) {
      // each a SYN the kernel set up: a free slot of its own
      const slot = [...Array(16).keys()].map((x) => KSLOT0 + x).find((s) => !port.held.has(s))!;
      last = d.kernel.open(TCP, ip(CLIENT), 42000 + i, ip(VIP), 80, ip(RS1), 8080, Fwd.MASQ, slot, 60, 1000 + i);
      if (last < 0) break;
      made.push(last);
    }
    return { d, port, made, last };
  };
  const control = fill(false);
  assert.equal(control.last, KernelOpen.TableFull, 'without eviction the table fills and the report is refused');
  assert.equal(control.d.counters()['embryonic_evicted'], 0);
  const cap = control.made.length;
  assert.ok(cap >= 8 && cap < 16, `capacity ${cap}`);
  const f = fill(true);
  assert.equal(f.made.length, 16, 'with eviction every report is taken');
  assert.equal(f.d.counters()['embryonic_evicted'], 16 - cap);
  assert.equal(f.port.log.filter((l) => l.startsWith('withdraw')).length, 16 - cap, 'the evicted ones were withdrawn (entries deleted, slot back)');
  assert.equal(f.port.held.size, cap, 'slots held: one per connection in the table');
});
