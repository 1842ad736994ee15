/**
 * The engine's side of the kernel fast path (offload.ts) against a recording port: what is
 * offered when, what is withdrawn before which state change, and how the kernel's counts and
 * last-packet times reach the IPVS counters and timers.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../wire/build.js';
import { CLIENT, director, ip, key, RS1, TCP, UDP, VIP } from '../../test/support/bed.js';
import type { Director } from './director.js';
import { OffloadReport, type OffloadPort } from './offload.js';
import { Fwd } from './service.js';
import { Stat } from './stats.js';
import { TcpState } from './tcp-states.js';

/** A port that records calls and reports what the test tells it the kernel forwarded. */
class RecordingPort implements OffloadPort {
  log: string[] = [];
  full = false;
  /** what the next withdraw reports */
  report = [0, 0, 0, 0, -1];
  offer(c: number): boolean {
    this.log.push(`offer ${c}`);
    return !this.full;
  }
  withdraw(c: number, out: OffloadReport): void {
    this.log.push(`withdraw ${c}`);
    [out.inPkts, out.inBytes, out.outPkts, out.outBytes, out.lastSeenMs] = this.report as [number, number, number, number, number];
  }
  route(c: number): void {
    this.log.push(`route ${c}`);
  }
  unroute(c: number): void {
    this.log.push(`unroute ${c}`);
  }
}

/** what the kernel forwarded, as the data path reports it */
function report(inPkts: number, inBytes: number, outPkts: number, outBytes: number, lastSeenMs: number): OffloadReport {
  return Object.assign(new OffloadReport(), { inPkts, inBytes, outPkts, outBytes, lastSeenMs });
}
const tcp = (src: string, sport: number, dst: string, dport: number, flags: string) => ipv4({ src, dst }).tcp({ sport, dport, flags }).build();
const send = (d: Director, pkt: Buffer, now: number) => d.process(Buffer.from(pkt), 0, pkt.length, now, 0);

function setup(after = 3): { d: Director; port: RecordingPort } {
  const port = new RecordingPort();
  const d = director({ offload: { port: () => port, after } });
  d.addService({ ...key(TCP, VIP, 80), scheduler: 'rr' });
  d.addDest(key(TCP, VIP, 80), { addr: ip(RS1), port: 8080 });
  d.addService({ ...key(UDP, VIP, 53), scheduler: 'rr' });
  d.addDest(key(UDP, VIP, 53), { addr: ip(RS1), port: 5353 });
  return { d, port };
}
const req = (flags: string) => tcp(CLIENT, 40000, VIP, 80, flags);
const rep = (flags: string) => tcp(RS1, 8080, CLIENT, 40000, flags);
/** handshake: SYN, SYN-ACK, ACK (ESTABLISHED after the client's ACK) */
function handshake(d: Director, now: number): number {
  send(d, req('S'), now);
  const c = d.lastConn;
  send(d, rep('SA'), now);
  send(d, req('A'), now);
  assert.equal(d.conns.state(c), TcpState.ESTABLISHED);
  return c;
}

test('a TCP connection is offered once, after `offloadAfter` packets in ESTABLISHED, never before', () => {
  const { d, port } = setup(3);
  const c = handshake(d, 1000); // the ACK is ESTABLISHED packet 1
  assert.deepEqual(port.log, []);
  send(d, req('PA'), 1001); // 2
  assert.deepEqual(port.log, []);
  send(d, rep('A'), 1002); // 3: offered
  assert.deepEqual(port.log, [`offer ${c}`]);
  send(d, rep('PA'), 1003); // a packet that still reached the engine (in flight): no second offer
  assert.deepEqual(port.log, [`offer ${c}`]);
  assert.equal(d.counters()['offloaded'], 1);
});

test('a FIN withdraws the connection before the state changes, and its kernel counts are added', () => {
  const { d, port } = setup(1);
  const c = handshake(d, 1000);
  assert.deepEqual(port.log, [`offer ${c}`]);
  const svc = d.getService(key(TCP, VIP, 80))!;
  const before = [...svc.stats.c];
  const destBefore = [...svc.dests[0]!.stats.c];
  port.report = [10, 15_000, 20, 900_000, 1500];
  const fin = req('FA');
  send(d, fin, 2000);
  assert.deepEqual(port.log, [`offer ${c}`, `withdraw ${c}`]);
  assert.equal(d.conns.state(c), TcpState.CLOSE_WAIT, 'IPVS: a client FIN on ESTABLISHED');
  assert.equal(svc.stats.c[Stat.INPKTS]! - before[Stat.INPKTS]!, 10 + 1, 'kernel packets + the FIN');
  assert.equal(svc.stats.c[Stat.OUTPKTS]! - before[Stat.OUTPKTS]!, 20);
  assert.equal(svc.stats.c[Stat.OUTBYTES]! - before[Stat.OUTBYTES]!, 900_000);
  assert.equal(svc.dests[0]!.stats.c[Stat.INBYTES]! - destBefore[Stat.INBYTES]!, 15_000 + fin.length, 'the real server counts them too');
  // the rest of the close stays in the engine: no new offer outside ESTABLISHED
  send(d, rep('A'), 2001);
  send(d, rep('FA'), 2002);
  send(d, req('A'), 2003);
  assert.deepEqual(port.log, [`offer ${c}`, `withdraw ${c}`]);
  assert.equal(d.counters()['offload_withdrawn'], 1);
});

test('kernel activity restarts the timer; without it an offloaded connection expires and is withdrawn', () => {
  const { d, port } = setup(1);
  d.setTimeouts({ tcp: 10 });
  const c = handshake(d, 1000);
  d.tick(1000);
  // 8 s later the kernel reports a packet at 8,000 ms: the connection lives until 18 s
  d.offloadActivity(c, report(5, 500, 5, 5000, 8000));
  d.tick(12_000);
  assert.ok(d.conns.flags(c) & 0x80, 'alive at 12 s thanks to the kernel activity');
  assert.deepEqual(port.log, [`offer ${c}`]);
  d.tick(18_500);
  assert.deepEqual(port.log, [`offer ${c}`, `withdraw ${c}`], 'expired: taken out of the kernel first');
  assert.equal(d.counters()['conns_expired'], 1);
});

test('a timer that runs out while the kernel still forwards the connection keeps it (taken back, restarted from the last packet)', () => {
  const { d, port } = setup(1);
  d.setTimeouts({ tcp: 10 });
  const c = handshake(d, 1000);
  d.tick(1000);
  // no report since: the timer says 11 s, but the kernel forwarded a packet at 10.5 s
  port.report = [3, 300, 0, 0, 10_500];
  d.tick(11_500);
  assert.ok(d.conns.flags(c) & 0x80, 'still alive');
  assert.equal(d.conns.flags(c) & 0x20, 0, 'back in the engine');
  assert.deepEqual(port.log, [`offer ${c}`, `withdraw ${c}`]);
  assert.equal(d.counters()['conns_expired'], 0);
  d.tick(20_000);
  assert.ok(d.conns.flags(c) & 0x80, 'until 10 s after that packet');
  d.tick(21_000);
  assert.equal(d.conns.flags(c) & 0x80, 0, 'then it expires');
  assert.equal(d.counters()['conns_expired'], 1);
});

test('a report for a connection that is no longer offloaded is ignored', () => {
  const { d } = setup(1);
  const c = handshake(d, 1000);
  send(d, req('R'), 1001); // RST: withdrawn, CLOSE
  const svc = d.getService(key(TCP, VIP, 80))!;
  const before = [...svc.stats.c];
  d.offloadActivity(c, report(100, 100_000, 0, 0, 1001));
  assert.deepEqual([...svc.stats.c], before);
});

test('UDP is offered after `offloadAfter` packets; one-packet services never', () => {
  const { d, port } = setup(2);
  const q = (n: number) => send(d, ipv4({ src: CLIENT, dst: VIP }).udp({ sport: 5000 + n, dport: 53 }).build(), 1000);
  q(0);
  const c = d.lastConn;
  assert.deepEqual(port.log, []);
  send(d, ipv4({ src: RS1, dst: CLIENT }).udp({ sport: 5353, dport: 5000 }).build(), 1001);
  assert.deepEqual(port.log, [`offer ${c}`]);
  d.editService({ ...key(UDP, VIP, 53), scheduler: 'rr', ops: true });
  d.withdrawAll();
  port.log = [];
  for (let i = 1; i < 5; i++) q(i);
  assert.deepEqual(port.log, [], 'one-packet connections are gone after one packet');
});

test('a full fast path refuses: counted, and the connection is offered again later', () => {
  const { d, port } = setup(2);
  port.full = true;
  const c = handshake(d, 1000);
  send(d, req('PA'), 1001); // refused
  assert.equal(d.counters()['offload_refused'], 1);
  assert.equal(d.conns.flags(c) & 0x20, 0);
  port.full = false;
  send(d, rep('A'), 1002); // 1 of 2 again
  assert.equal(d.counters()['offloaded'], 0);
  send(d, rep('A'), 1003);
  assert.equal(d.counters()['offloaded'], 1);
});

test('withdrawAll takes every offloaded connection back (before a configuration change)', () => {
  const { d, port } = setup(1);
  const c = handshake(d, 1000);
  send(d, tcp(CLIENT, 40001, VIP, 80, 'S'), 1000);
  const c2 = d.lastConn;
  send(d, tcp(RS1, 8080, CLIENT, 40001, 'SA'), 1000);
  send(d, tcp(CLIENT, 40001, VIP, 80, 'A'), 1000);
  assert.deepEqual(port.log.sort(), [`offer ${c}`, `offer ${c2}`].sort());
  assert.equal(d.withdrawAll(), 2);
  assert.equal(d.withdrawAll(), 0);
  assert.equal(d.counters()['offload_withdrawn'], 2);
});

test('without a port nothing changes (the flag and counters stay clear)', () => {
  const d = director();
  d.addService({ ...key(TCP, VIP, 80), scheduler: 'rr' });
  d.addDest(key(TCP, VIP, 80), { addr: ip(RS1), port: 8080 });
  const c = handshake(d, 1000);
  for (let i = 0; i < 20; i++) send(d, req('PA'), 1001);
  assert.equal(d.conns.flags(c) & 0x20, 0);
  assert.equal(d.counters()['offloaded'], 0);
});

test('direct routing: announced at creation, offered in ESTABLISHED (requests only), unrouted at expiry after its withdrawal; tunnelling alike, of every type', () => {
  const port = new RecordingPort();
  const d = director({ offload: { port: () => port, after: 2 } });
  d.addService({ ...key(TCP, VIP, 80), scheduler: 'rr' });
  d.addDest(key(TCP, VIP, 80), { addr: ip(RS1), port: 80, fwd: Fwd.DROUTE });
  d.setTimeouts({ tcp: 10 });
  const r = (flags: string) => tcp(CLIENT, 40001, VIP, 80, flags);
  send(d, r('S'), 1000);
  const c = d.lastConn;
  assert.deepEqual(port.log, [`route ${c}`], 'the data path learns the real server before the SYN is sent');
  send(d, r('A'), 1000);
  assert.equal(d.conns.state(c), TcpState.ESTABLISHED);
  send(d, r('A'), 1000);
  assert.deepEqual(port.log, [`route ${c}`, `offer ${c}`]);
  d.tick(1000);
  d.tick(12_000);
  assert.deepEqual(port.log, [`route ${c}`, `offer ${c}`, `withdraw ${c}`, `unroute ${c}`], 'expired: withdrawn, then unrouted');

  const tun = new RecordingPort();
  const t = director({ offload: { port: () => tun, after: 1 } });
  t.addService({ ...key(TCP, VIP, 80), scheduler: 'rr' });
  t.addDest(key(TCP, VIP, 80), { addr: ip(RS1), port: 80, fwd: Fwd.TUNNEL });
  t.setTimeouts({ tcp: 10 });
  send(t, r('S'), 1000);
  const tc = t.lastConn;
  assert.deepEqual(tun.log, [`route ${tc}`], 'an IPIP connection is routed at creation');
  for (const f of ['A', 'A']) send(t, r(f), 1000);
  assert.deepEqual(tun.log, [`route ${tc}`, `offer ${tc}`], 'and offered once established');
  t.tick(1000);
  t.tick(12_000);
  assert.deepEqual(tun.log, [`route ${tc}`, `offer ${tc}`, `withdraw ${tc}`, `unroute ${tc}`]);

  for (const [tunType, tunPort] of [[1, 6080], [2, 0]] as const) {
    const other = new RecordingPort();
    const g = director({ offload: { port: () => other, after: 1 } });
    g.addService({ ...key(TCP, VIP, 80), scheduler: 'rr' });
    g.addDest(key(TCP, VIP, 80), { addr: ip(RS1), port: 80, fwd: Fwd.TUNNEL, tunType, tunPort });
    for (const f of ['S', 'A', 'A']) send(g, r(f), 1000);
    const gc = g.lastConn;
    assert.deepEqual(other.log, [`route ${gc}`, `offer ${gc}`], `a tun-type ${tunType} connection is routed and offered as IPIP is (the port reads the type)`);
  }
});

test('a one-packet DR connection is routed, then unrouted after its packet (the port defers the deletion)', () => {
  const port = new RecordingPort();
  const d = director({ offload: { port: () => port, after: 2 } });
  d.addService({ ...key(UDP, VIP, 53), scheduler: 'rr', ops: true });
  d.addDest(key(UDP, VIP, 53), { addr: ip(RS1), port: 53, fwd: Fwd.DROUTE });
  send(d, ipv4({ src: CLIENT, dst: VIP }).udp({ sport: 5000, dport: 53 }).build(), 1000);
  const c = d.lastConn;
  assert.deepEqual(port.log, [`route ${c}`, `unroute ${c}`]);
});
