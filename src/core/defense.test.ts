/**
 * IPVS's flood defences in the engine (defense.ts): update_defense_level's mode machine fed a
 * fake memory reading (and the connection table's own free entries), ip_vs_todrop's one-in-rate
 * drop, ip_vs_random_dropentry's choice of entries, and secure_tcp switching the TCP table.
 * Each check has its control in the same test: the same traffic with the defence off (mode 0)
 * or the memory plentiful leaves everything alone.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../wire/build.js';
import { director, ip, key, RS1, TCP, UDP, VIP } from '../../test/support/bed.js';
import { mergeDefense, PAGE_BYTES } from './defense.js';
import type { Director, Sysctls } from './director.js';
import { Verdict } from './verdict.js';

const k80 = key(TCP, VIP, 80);
/** 1024 entries take 50 bytes each: 12 pages when empty (floor(1024 * 50 / 4096)) */
const CAP = 1024;
const PLENTY = 1 << 20; // pages of host memory

function setUp(sysctl: Partial<Sysctls>, o: { maxConns?: number; random?: () => number; persistent?: number } = {}): Director {
  const d = director({ maxConns: o.maxConns ?? CAP, sysctl: { amemthresh: 10, ...sysctl }, ...(o.random ? { random: o.random } : {}) });
  d.addService({ ...k80, scheduler: 'rr', ...(o.persistent ? { persistent: o.persistent } : {}) });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  d.addService({ ...key(UDP, VIP, 53), scheduler: 'rr' });
  d.addDest(key(UDP, VIP, 53), { addr: ip(RS1), port: 53 });
  return d;
}
const tcp = (d: Director, src: string, sport: number, flags: string, now: number, dst = VIP, dport = 80) => {
  const b = ipv4({ src, dst }).tcp({ sport, dport, flags }).build();
  return d.process(b, 0, b.length, now, 0);
};
const udp = (d: Director, src: string, sport: number, now: number) => {
  const b = ipv4({ src, dst: VIP }).udp({ sport, dport: 53 }).payload('q').build();
  return d.process(b, 0, b.length, now, 0);
};
/** client n of 198.51.100.0/24 (ports from 1024) */
const client = (n: number): [string, number] => [`198.51.100.${10 + (n % 200)}`, 1024 + Math.floor(n / 200)];
const modes = (d: Director) => [d.sysctl.dropEntry, d.sysctl.dropPacket, d.sysctl.secureTcp];
const count = (d: Director, name: string) => d.counters()[name] ?? 0;

test('update_defense_level with a fake memory feed: modes 1 <-> 2 written back, 0 and 3 fixed, the changes reported', () => {
  const d = setUp({ dropEntry: 1, dropPacket: 1, secureTcp: 1 });
  assert.deepEqual(d.defend(PLENTY, 1000), [], 'plenty of memory: nothing switches on');
  assert.deepEqual(modes(d), [1, 1, 1]);
  assert.equal(d.defense.status().tablePages, Math.floor((CAP * 50) / PAGE_BYTES));
  // the host runs low: 4 pages < amemthresh 10
  const on = d.defend(4, 2000);
  assert.deepEqual(modes(d), [2, 2, 2]);
  assert.deepEqual(on.map((c) => [c.defense, c.on, c.mode, c.availPages]), [['drop_entry', true, 2, 4], ['drop_packet', true, 2, 4], ['secure_tcp', true, 2, 4]]);
  assert.equal(d.defense.dropRate, 1, 'amemthresh / (amemthresh - available) = 10 / 6');
  assert.deepEqual(d.defense.status().on, { drop_entry: 1, drop_packet: 1, secure_tcp: 1 });
  assert.equal(d.defense.status().memLow, 1);
  d.defend(8, 3000);
  assert.equal(d.defense.dropRate, 5, '10 / (10 - 8)');
  assert.deepEqual(d.defend(8, 3500), [], 'still low: no change to report');
  const off = d.defend(PLENTY, 4000);
  assert.deepEqual(modes(d), [1, 1, 1]);
  assert.deepEqual(off.map((c) => [c.defense, c.on, c.mode]), [['drop_entry', false, 1], ['drop_packet', false, 1], ['secure_tcp', false, 1]]);
  // control: modes 0 and 3 do not follow memory
  const fixed = setUp({ dropEntry: 0, dropPacket: 3, secureTcp: 3, amDroprate: 7 });
  fixed.defend(0, 1000);
  assert.deepEqual(modes(fixed), [0, 3, 3]);
  assert.deepEqual(fixed.defense.status().on, { drop_entry: 0, drop_packet: 1, secure_tcp: 1 });
  assert.equal(fixed.defense.dropRate, 7, 'mode 3 drops by am_droprate');
  fixed.defend(PLENTY, 2000);
  assert.deepEqual(fixed.defense.status().on, { drop_entry: 0, drop_packet: 1, secure_tcp: 1 });
});

test('the connection table counts as memory: below amemthresh pages of free entries drop_entry switches on, drains the flood, switches off', () => {
  for (const dropEntry of [1, 0]) {
    const d = setUp({ dropEntry, secureTcp: 1 });
    // empty: 12 pages free; low below 10 pages, i.e. fewer than 820 free entries (50 bytes each)
    let t = 1000;
    for (let n = 0; n < 204; n++) tcp(d, ...client(n), 'S', (t += 1));
    d.defend(PLENTY, t);
    assert.deepEqual(modes(d), [dropEntry, 0, 1], '820 entries free: 10 pages, not low');
    for (let n = 204; n < 260; n++) tcp(d, ...client(n), 'S', (t += 1));
    const on = d.defend(PLENTY, (t += 1000));
    const st = d.defense.status();
    assert.deepEqual([st.memLow, st.tableLow, st.tablePages], [0, 1, 9]);
    assert.deepEqual(modes(d), [dropEntry ? 2 : 0, 0, 2]);
    assert.deepEqual(on.map((c) => c.defense), dropEntry ? ['drop_entry', 'secure_tcp'] : ['secure_tcp']);
    // drop_entry drops the flood's half-open entries, 1/32 of the table a second, until the
    // table is no longer low; control (mode 0): nothing is dropped, it stays low
    let seconds = 0;
    while (d.sysctl.secureTcp === 2 && seconds < 10) d.defend(PLENTY, (t += 1000)), seconds++; // within the flood's 60 s SYN_RECV timeout
    const left = d.connections(t).length;
    if (dropEntry) {
      assert.deepEqual(modes(d), [1, 0, 1], `off again after ${seconds} s`);
      assert.equal(count(d, 'defense_entry_dropped'), 260 - left);
      assert.ok(left <= 204 && left > 150, `dropped until 820 entries were free: ${left} left`);
    } else {
      assert.deepEqual(modes(d), [0, 0, 2]);
      assert.equal(left, 260);
      assert.equal(count(d, 'defense_entry_dropped'), 0);
    }
  }
});

test('drop_entry chooses as ip_vs_random_dropentry: half-open always, established idle 60 s with n <= 8 inbound packets one in n, never others', () => {
  let next = 0;
  const d = setUp({ dropEntry: 3 }, { maxConns: 64, random: () => next++ });
  let t = 1000;
  const open = (n: number, flags: string[]) => {
    const [src, sport] = client(n);
    tcp(d, src, sport, 'S', (t += 1));
    // 'rs:F': a segment from the server (NAT: the reply crosses the director), else the client's
    for (const f of flags) f.startsWith('rs:') ? tcp(d, RS1, 8080, f.slice(3), (t += 1), src, sport) : tcp(d, src, sport, f, (t += 1));
  };
  open(0, []); //                                         SYN_RECV: dropped
  open(1, ['rs:SA']); //                                      SYNACK (NAT: the server answered): dropped
  for (let n = 2; n < 6; n++) open(n, ['rs:SA', 'A']); //     ESTABLISHED, 2 inbound packets: one in 2
  open(6, ['rs:SA', 'A', ...Array<string>(10).fill('PA')]); // ESTABLISHED, 12 inbound packets: kept
  open(7, ['rs:SA', 'A', 'rs:FA']); //                        FIN_WAIT (120 s): kept
  udp(d, ...client(8), (t += 1)); //                      UDP, 1 packet, timeout 300 s: dropped once idle 60 s
  const fresh = t;
  const states = () => new Map(d.connections(t).map((c) => [`${c.caddr >>> 0}:${c.cport}`, c.state]));
  const has = (n: number) => states().has(`${ip(client(n)[0]) >>> 0}:${client(n)[1]}`);
  // 30 s after the last packet: only the half-open entries go (todrop_entry wants 60 s idle)
  for (next = 0; next < 64; ) d.defend(PLENTY, fresh + 30_000);
  t = fresh + 30_000;
  assert.deepEqual([0, 1, 2, 3, 4, 5, 6, 7, 8].map(has), [false, false, true, true, true, true, true, true, true]);
  // 61 s idle: of the four established with 2 packets, every second one; the UDP entry; no others
  t = fresh + 61_000;
  for (next = 0; next < 64; ) d.defend(PLENTY, t);
  assert.deepEqual([2, 3, 4, 5].map(has).filter((x) => x).length, 2, 'one in 2 of those with 2 inbound packets');
  assert.deepEqual([6, 7, 8].map(has), [true, true, false]);
  assert.equal(count(d, 'defense_entry_dropped'), 5);
  // control: drop_entry 0 drops nothing, whatever the memory
  next = 0;
  const off = setUp({ dropEntry: 0 }, { maxConns: 64, random: () => next++ });
  tcp(off, ...client(0), 'S', 1000);
  for (let k = 0; k < 40; k++) off.defend(0, 2000 + k * 1000);
  assert.equal(off.connections(50_000).length, 1);
});

test('drop_entry keeps a template that controls entries or is assured; drops an unused unassured one with its entry', () => {
  let next = 0;
  const d = setUp({ dropEntry: 3 }, { maxConns: 64, random: () => next++, persistent: 300 });
  tcp(d, ...client(0), 'S', 1000); //                        half-open, its template not assured
  const [src, sport] = client(1);
  tcp(d, src, sport, 'S', 1001);
  tcp(d, RS1, 8080, 'SA', 1002, src, sport);
  tcp(d, src, sport, 'A', 1003); //                          established: its template assured
  assert.equal(d.connections(1003).length, 4);
  for (next = 0; next < 64; ) d.defend(PLENTY, 2000);
  const left = d.connections(2000).map((c) => `${c.cport}:${c.state}`);
  assert.deepEqual(left.sort(), ['0:ASSURED', `${sport}:ESTABLISHED`].sort(), 'the half-open entry and its template went; the established one and its assured template stay');
  assert.equal(count(d, 'defense_entry_dropped'), 2);
});

test('drop_packet: one of every `rate` connection-opening packets (ip_vs_todrop), none of a known connection', () => {
  const d = setUp({ dropPacket: 3, amDroprate: 4 });
  let t = 1000;
  const v = Array.from({ length: 100 }, (_, n) => tcp(d, ...client(n), 'S', (t += 1)));
  assert.equal(v.filter((x) => x === Verdict.Drop).length, 25);
  // mode 3 sets drop_rate, not drop_counter (0): the first packet is dropped, then every 4th
  assert.deepEqual(v.slice(0, 9), [Verdict.Drop, Verdict.Forward, Verdict.Forward, Verdict.Forward, Verdict.Drop, Verdict.Forward, Verdict.Forward, Verdict.Forward, Verdict.Drop]);
  assert.equal(count(d, 'drop_defense'), 25);
  // a known connection's packets are never dropped (the check is before scheduling only)
  for (let k = 0; k < 20; k++) assert.equal(tcp(d, ...client(1), 'A', (t += 1)), Verdict.Forward); // client 1's SYN went through
  // UDP flows too (udp_conn_schedule)
  const u = Array.from({ length: 8 }, (_, n) => udp(d, ...client(n), (t += 1)));
  assert.equal(u.filter((x) => x === Verdict.Drop).length, 2);
  // automatic: the rate follows memory (10 / (10 - 5) = 2), then stops
  const a = setUp({ dropPacket: 1 });
  a.defend(5, 1000);
  assert.equal(Array.from({ length: 10 }, (_, n) => tcp(a, ...client(n), 'S', 1001 + n)).filter((x) => x === Verdict.Drop).length, 5);
  a.defend(PLENTY, 2000);
  assert.equal(Array.from({ length: 10 }, (_, n) => tcp(a, ...client(100 + n), 'S', 2001 + n)).filter((x) => x === Verdict.Drop).length, 0);
  // control: mode 0 with no memory at all drops nothing
  const z = setUp({ dropPacket: 0 });
  z.defend(0, 1000);
  assert.ok(Array.from({ length: 20 }, (_, n) => tcp(z, ...client(n), 'S', 1001 + n)).every((x) => x === Verdict.Forward));
});

test('secure_tcp 1: the TCP table switches to tcp_states_dos while memory is low, and back', () => {
  const d = setUp({ secureTcp: 1 });
  const stateAfterSynAck = (n: number, now: number) => {
    const [src, sport] = client(n);
    tcp(d, src, sport, 'S', now);
    tcp(d, src, sport, 'A', now + 1); // a client ACK with no answer from the server seen
    return d.connections(now + 1).find((c) => c.cport === sport && (c.caddr >>> 0) === (ip(src) >>> 0))!.state;
  };
  assert.equal(stateAfterSynAck(0, 1000), 'ESTABLISHED', 'tcp_states: the client ACK establishes');
  d.defend(3, 2000);
  assert.equal(d.sysctl.secureTcp, 2);
  assert.equal(stateAfterSynAck(1, 3000), 'SYN_RECV', 'tcp_states_dos: it does not');
  d.defend(PLENTY, 4000);
  assert.equal(d.sysctl.secureTcp, 1);
  assert.equal(stateAfterSynAck(2, 5000), 'ESTABLISHED');
  // a written mode takes effect at the next update (the worker runs it at once on a write)
  d.sysctl.secureTcp = 3;
  d.defense.update();
  assert.equal(stateAfterSynAck(3, 6000), 'SYN_RECV');
  d.sysctl.secureTcp = 0;
  d.defense.update();
  assert.equal(stateAfterSynAck(4, 7000), 'ESTABLISHED');
});

test('mergeDefense: the highest mode and state over the engines, the least memory', () => {
  const a = setUp({ dropEntry: 1 });
  const b = setUp({ dropEntry: 1 });
  a.defend(PLENTY, 1000);
  b.defend(2, 1000);
  const m = mergeDefense([a.defense.status(), b.defense.status()])!;
  assert.deepEqual([m.mode.drop_entry, m.on.drop_entry, m.availPages, m.memLow], [2, 1, 2, 1]);
  assert.equal(mergeDefense([]), null);
});
