import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../wire/build.js';
import { CLIENT, CLIENT2, director, ip, key, RS1, RS2, TCP, UDP, VIP } from '../../test/support/bed.js';
import { IpvsError } from './errors.js';
import { Fwd } from './service.js';
import { Verdict } from './verdict.js';
import type { Director } from './director.js';

const k80 = key(TCP, VIP, 80);
const snapshot = (d: Director) =>
  JSON.stringify(d.services.map((s) => ({ p: s.proto, a: s.addr, port: s.port, sch: s.schedName, f: s.flags, t: s.timeout, m: s.netmask, d: s.dests.map((x) => [x.addr, x.port, x.weight, x.uThreshold, x.lThreshold]) })));

function send(d: Director, pkt: Buffer, now: number): { v: number; out: Buffer } {
  const b = Buffer.from(pkt);
  const v = d.process(b, 0, b.length, now, 0);
  return { v, out: b };
}
const tcp = (src: string, sport: number, flags: string, dst = VIP, dport = 80) => ipv4({ src, dst }).tcp({ sport, dport, flags }).build();
const dstOf = (b: Buffer) => b.readUInt32BE(16);

test('control: every invalid request throws IpvsError with a stable code and changes nothing', () => {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  const before = snapshot(d);
  const bad: [() => unknown, string, RegExp?][] = [
    [() => d.addService({ ...k80 }), 'EEXIST', /Service already exists/],
    [() => d.addService({ ...key(TCP, VIP, 81), scheduler: 'nosuch' }), 'ENOENT', /Scheduler or persistence engine not found/],
    [() => d.addService({ ...key(TCP, VIP, 0) }), 'EINVAL', /Zero port specified for non-persistent service/],
    [() => d.addService({ ...key(132, VIP, 80) }), 'EOPNOTSUPP', /SCTP/],
    [() => d.addService({ ...key(TCP, VIP, 82), ops: true }), 'EINVAL', /One-Packet Scheduling is only for UDP/],
    [() => d.addService({ ...key(TCP, VIP, 83), persistent: 2678401 }), 'EINVAL'],
    [() => d.addService({ ...key(TCP, VIP, 70000) }), 'EINVAL'],
    [() => d.addService({ ...key(TCP, VIP, 84), schedFlags: 0x40 }), 'EINVAL'],
    [() => d.editService({ ...key(TCP, VIP, 99) }), 'ESRCH', /No such service/],
    [() => d.editService({ ...k80, scheduler: 'nosuch' }), 'ENOENT'],
    [() => d.deleteService(key(TCP, VIP, 99)), 'ESRCH', /No such service/],
    [() => d.addDest(key(TCP, VIP, 99), { addr: ip(RS1), port: 1 }), 'ESRCH', /Service not defined/],
    [() => d.addDest(k80, { addr: ip(RS1), port: 8080 }), 'EEXIST', /Destination already exists/],
    [() => d.addDest(k80, { addr: ip(RS2), port: 8080, weight: 65536 }), 'ERANGE'],
    [() => d.addDest(k80, { addr: ip(RS2), port: 8080, weight: -1 }), 'ERANGE'],
    [() => d.addDest(k80, { addr: ip(RS2), port: 8080, lThreshold: 5 }), 'ERANGE'],
    [() => d.addDest(k80, { addr: ip(RS2), port: 8080, uThreshold: 3, lThreshold: 5 }), 'ERANGE'],
    [() => d.addDest(k80, { addr: ip(RS2), port: 8080, fwd: Fwd.DROUTE }), 'EINVAL', /Route server keeps the service port: 8080 is not 80/],
    [() => d.addDest(k80, { addr: ip(RS2), port: 8080, fwd: Fwd.TUNNEL }), 'EINVAL', /Tunnel server keeps the service port/],
    [() => d.addDest(k80, { addr: ip(RS2), port: 80, fwd: Fwd.DROUTE, tunType: 1, tunPort: 6080 }), 'EINVAL', /Tunnel options conflict with forward method/],
    [() => d.addDest(k80, { addr: ip(RS2), port: 80, fwd: Fwd.TUNNEL, tunType: 1 }), 'EINVAL', /gue tunnel needs its port/],
    [() => d.addDest(k80, { addr: ip(RS2), port: 80, fwd: Fwd.TUNNEL, tunType: 0, tunPort: 6080 }), 'EINVAL', /ipip tunnel has no port/],
    [() => d.addDest(k80, { addr: ip(RS2), port: 80, fwd: Fwd.TUNNEL, tunType: 2, tunFlags: 2 }), 'EINVAL', /checksum option for a gre tunnel/],
    [() => d.addDest(k80, { addr: ip(RS2), port: 80, fwd: Fwd.TUNNEL, tunType: 3 }), 'EINVAL', /tunnel type/],
    [() => d.addDest(k80, { addr: ip(RS2), port: 80, fwd: Fwd.LOCALNODE }), 'EOPNOTSUPP', /Local node/],
    [() => d.addDest(k80, { addr: ip('224.0.0.1'), port: 8080 }), 'EINVAL'],
    [() => d.addDest(k80, { addr: 0, port: 8080 }), 'EINVAL'],
    [() => d.addDest(k80, { addr: ip(RS2), port: 1.5 }), 'EINVAL'],
    [() => d.editDest(k80, { addr: ip(RS2), port: 8080 }), 'ENOENT', /No such destination/],
    [() => d.deleteDest(k80, ip(RS2), 8080), 'ENOENT'],
    [() => d.setTimeouts({ tcp: -1 }), 'EINVAL'],
    [() => d.setTimeouts({ tcp: 5, udp: 1e9 }), 'EINVAL'],
    [() => d.zero(key(TCP, VIP, 99)), 'ESRCH'],
  ];
  for (const [fn, code, msg] of bad) {
    assert.throws(fn, (e: unknown) => e instanceof IpvsError && e.code === code && (!msg || msg.test(e.message)), `${fn.toString()} -> ${code}`);
    assert.equal(snapshot(d), before, `${fn.toString()} changed state`);
  }
  assert.deepEqual(d.timeouts, { tcp: 900, tcpfin: 120, udp: 300 }, 'a rejected --set changes no timeout');
});

test('control: edits replace settings; -E without -s resets to wlc and clears persistence', () => {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr', persistent: 300, netmask: ip('255.255.255.0') });
  assert.equal(d.services[0]!.persistent, true);
  d.editService({ ...k80 });
  const s = d.services[0]!;
  assert.equal(s.schedName, 'wlc');
  assert.equal(s.persistent, false);
  assert.equal(s.netmask, 0xffffffff);
  d.addDest(k80, { addr: ip(RS1), port: 8080, weight: 3, uThreshold: 10, lThreshold: 5 });
  d.editDest(k80, { addr: ip(RS1), port: 8080 });
  assert.deepEqual([s.dests[0]!.weight, s.dests[0]!.uThreshold, s.dests[0]!.lThreshold, s.dests[0]!.lastWeight], [1, 0, 0, 1]);
  d.editDest(k80, { addr: ip(RS1), port: 8080, weight: 0 });
  assert.deepEqual([s.dests[0]!.weight, s.dests[0]!.lastWeight], [0, 1], 'last_weight keeps the last non-zero weight');
});

test('connection counting: new conns inactive, SYN makes them active, close makes them inactive; UDP never active', () => {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  const rs = d.addDest(k80, { addr: ip(RS1), port: 8080 });
  send(d, tcp(CLIENT, 1, 'S'), 1000);
  assert.deepEqual([rs.activeConns, rs.inactConns], [1, 0]);
  send(d, tcp(CLIENT, 1, 'A'), 1001);
  send(d, tcp(CLIENT, 1, 'FA'), 1002); // ES -> CLOSE_WAIT: inactive
  assert.deepEqual([rs.activeConns, rs.inactConns], [0, 1]);
  const ku = key(UDP, VIP, 53);
  d.addService({ ...ku, scheduler: 'rr' });
  const u = d.addDest(ku, { addr: ip(RS1), port: 5353 });
  send(d, ipv4({ src: CLIENT, dst: VIP }).udp({ sport: 9, dport: 53 }).build(), 1003);
  send(d, ipv4({ src: RS1, dst: CLIENT }).udp({ sport: 5353, dport: 9 }).build(), 1004);
  assert.deepEqual([u.activeConns, u.inactConns], [0, 1]);
  assert.equal(rs.stats.c[0], 1);
  assert.equal(d.stats.c[0], 2);
  assert.deepEqual([u.stats.c[1], u.stats.c[2]], [1, 1]);
  assert.equal(u.stats.c[3], 28);
});

test('timeouts: --set tcp/tcpfin/udp applies to existing connections at their next packet', () => {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  send(d, tcp(CLIENT, 1, 'S'), 0);
  send(d, tcp(CLIENT, 1, 'A'), 0);
  assert.equal(d.connections(0)[0]!.expiresInMs, 900_000);
  d.setTimeouts({ tcp: 100, tcpfin: 0, udp: 0 });
  assert.deepEqual(d.timeouts, { tcp: 100, tcpfin: 120, udp: 300 });
  assert.equal(d.connections(0)[0]!.expiresInMs, 900_000, 'not before its next packet');
  send(d, tcp(CLIENT, 1, 'A'), 1000);
  assert.equal(d.connections(1000)[0]!.expiresInMs, 100_000);
  d.tick(100_999);
  assert.equal(d.conns.count, 1);
  d.tick(101_000);
  assert.equal(d.conns.count, 0);
  assert.equal(d.counters()['conns_expired'], 1);
});

test('a deleted server: its connections drop by default; re-adding it revives its counters', () => {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  const rs = d.addDest(k80, { addr: ip(RS1), port: 8080 });
  send(d, tcp(CLIENT, 1, 'S'), 0);
  d.deleteDest(k80, ip(RS1), 8080);
  assert.equal(d.trash.length, 1);
  assert.equal(send(d, tcp(CLIENT, 1, 'A'), 1).v, Verdict.Drop);
  assert.equal(d.counters()['drop_dest_unavailable'], 1);
  const again = d.addDest(k80, { addr: ip(RS1), port: 8080 });
  assert.equal(again, rs);
  assert.equal(again.stats.c[0], 1, 'counters kept');
  assert.equal(d.trash.length, 0);
  assert.equal(send(d, tcp(CLIENT, 1, 'A'), 2).v, Verdict.Forward);
  // once unreferenced, a deleted server is freed and its id reused
  d.deleteDest(k80, ip(RS1), 8080);
  assert.equal(d.trash.length, 1);
  d.tick(800_000);
  assert.equal(d.trash.length, 1, 'still referenced by the ESTABLISHED connection (900 s)');
  d.tick(903_000);
  assert.equal(d.trash.length, 0);
  assert.equal(d.conns.count, 0);
});

test('expire_nodest_conn: a deleted server\'s connection is expired and a SYN rescheduled', () => {
  const d = director({ sysctl: { expireNodestConn: true } });
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  d.addDest(k80, { addr: ip(RS2), port: 8080 });
  const first = send(d, tcp(CLIENT, 1, 'S'), 0);
  const victim = dstOf(first.out);
  d.deleteDest(k80, victim, 8080);
  const again = send(d, tcp(CLIENT, 1, 'S'), 1);
  assert.equal(again.v, Verdict.Forward);
  assert.notEqual(dstOf(again.out), victim);
  assert.equal(d.counters()['expired_nodest'], 1);
  // non-SYN on a dead server's connection: expired, then not schedulable -> host
  const d2 = director({ sysctl: { expireNodestConn: true } });
  d2.addService({ ...k80, scheduler: 'rr' });
  d2.addDest(k80, { addr: ip(RS1), port: 8080 });
  send(d2, tcp(CLIENT, 1, 'S'), 0);
  d2.deleteDest(k80, ip(RS1), 8080);
  assert.equal(send(d2, tcp(CLIENT, 1, 'A'), 1).v, Verdict.Pass);
  assert.equal(d2.conns.count, 0);
});

test('conn_reuse_mode: a SYN reusing a TIME_WAIT connection\'s ports is scheduled afresh', () => {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  d.addDest(k80, { addr: ip(RS2), port: 8080 });
  const a = dstOf(send(d, tcp(CLIENT, 7, 'S'), 0).out);
  send(d, tcp(CLIENT, 7, 'A'), 1);
  send(d, tcp(CLIENT, 7, 'FA'), 2); // CW
  send(d, tcp(a === ip(RS1) ? RS1 : RS2, 8080, 'FA', CLIENT, 7), 3); // TW
  const b = dstOf(send(d, tcp(CLIENT, 7, 'S'), 4).out);
  assert.notEqual(a, b, 'rr moved on: the SYN made a new connection');
  assert.equal(d.counters()['rescheduled'], 1);
  assert.equal(d.conns.count, 1);
  // with conn_reuse_mode 0 the old connection is reused
  const d0 = director({ sysctl: { connReuseMode: 0 } });
  d0.addService({ ...k80, scheduler: 'rr' });
  d0.addDest(k80, { addr: ip(RS1), port: 8080 });
  d0.addDest(k80, { addr: ip(RS2), port: 8080 });
  const x = dstOf(send(d0, tcp(CLIENT, 7, 'S'), 0).out);
  send(d0, tcp(CLIENT, 7, 'R'), 1);
  assert.equal(dstOf(send(d0, tcp(CLIENT, 7, 'S'), 2).out), x);
});

test('conn_reuse_mode: a SYN+RST on a closed connection\'s tuple cannot open one, so it does not end it (IPVS does)', () => {
  // a spoofed RST moves the connection to CLOSE; IPVS then expires it for a SYN+RST and
  // schedules nothing, so the connection's next packets find none. Here it stays.
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  send(d, tcp(CLIENT, 9, 'S'), 0);
  send(d, tcp(RS1, 8080, 'SA', CLIENT, 9), 1);
  send(d, tcp(CLIENT, 9, 'A'), 2);
  send(d, tcp(CLIENT, 9, 'R'), 3); // CLOSE
  assert.equal(d.connections(3)[0]!.state, 'CLOSE');
  send(d, tcp(CLIENT, 9, 'SR'), 4);
  assert.equal(d.conns.count, 1, 'the connection is still there');
  assert.equal(d.counters()['rescheduled'], 0);
  assert.equal(send(d, tcp(CLIENT, 9, 'PA'), 5).v, Verdict.Forward, 'its next packet is forwarded');
  assert.equal(send(d, tcp(RS1, 8080, 'A', CLIENT, 9), 6).v, Verdict.Forward, 'and so is the reply');
  // a plain SYN still reuses the tuple (conn_reuse_mode), as in IPVS
  send(d, tcp(CLIENT, 9, 'S'), 7);
  assert.equal(d.counters()['rescheduled'], 1);
});

test('secure_tcp table: in NAT only the server\'s ACK after SYN-ACK establishes', () => {
  const d = director({ sysctl: { secureTcp: 3 } });
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  const st = () => d.connections(0)[0]!.state;
  send(d, tcp(CLIENT, 1, 'S'), 0);
  assert.equal(st(), 'SYN_RECV');
  send(d, tcp(RS1, 8080, 'SA', CLIENT, 1), 0);
  assert.equal(st(), 'SYNACK');
  send(d, tcp(CLIENT, 1, 'A'), 0);
  assert.equal(st(), 'SYNACK');
  send(d, tcp(RS1, 8080, 'A', CLIENT, 1), 0);
  assert.equal(st(), 'ESTABLISHED');
});

test('sloppy_tcp: a mid-stream segment opens a connection', () => {
  const d = director({ sysctl: { sloppyTcp: true } });
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  assert.equal(send(d, tcp(CLIENT, 1, 'A'), 0).v, Verdict.Forward);
  assert.equal(send(d, tcp(CLIENT, 2, 'R'), 0).v, Verdict.Pass, 'but never an RST');
});

test('the connection table limit is a counted drop', () => {
  const d = director({ maxConns: 3 });
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  // established entries (half-open ones would be evicted for the new SYN: conn/evict.test.ts)
  for (let p = 1; p <= 3; p++) assert.equal(send(d, tcp(CLIENT, p, 'S'), 0).v, Verdict.Forward);
  for (let p = 1; p <= 3; p++) assert.equal(send(d, tcp(CLIENT, p, 'A'), 0).v, Verdict.Forward);
  assert.equal(send(d, tcp(CLIENT, 4, 'S'), 0).v, Verdict.Drop);
  assert.equal(d.counters()['drop_conn_table_full'], 1);
  assert.equal(send(d, tcp(CLIENT, 1, 'PA'), 0).v, Verdict.Forward, 'existing flows are unaffected');
  // persistence needs two entries (template + conn): a full table refuses both cleanly
  const p = director({ maxConns: 1 });
  p.addService({ ...k80, scheduler: 'rr', persistent: 60 });
  const rs = p.addDest(k80, { addr: ip(RS1), port: 8080 });
  assert.equal(send(p, tcp(CLIENT, 1, 'S'), 0).v, Verdict.Drop);
  assert.deepEqual([rs.activeConns, rs.inactConns, rs.persistConns, p.conns.count], [0, 0, 1, 1]);
});

test('one-packet scheduling (UDP): every datagram is scheduled on its own and leaves no entry', () => {
  const d = director();
  const ku = key(UDP, VIP, 53);
  d.addService({ ...ku, scheduler: 'rr', ops: true });
  d.addDest(ku, { addr: ip(RS1), port: 53 });
  d.addDest(ku, { addr: ip(RS2), port: 53 });
  const q = ipv4({ src: CLIENT, dst: VIP }).udp({ sport: 9, dport: 53 }).build();
  const a = dstOf(send(d, q, 0).out);
  const b = dstOf(send(d, q, 1).out);
  assert.notEqual(a, b);
  assert.equal(d.conns.count, 0);
  assert.equal(d.stats.c[0], 2);
});

test('rate estimator: a steady 100 conn/s and 1000 pkt/s converge to the IPVS figures', () => {
  const d = director({ maxConns: 1 << 14 });
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  let port = 1;
  for (let ms = 0; ms <= 30_000; ms += 10) {
    send(d, tcp(CLIENT, port, 'S'), ms);
    for (let k = 0; k < 9; k++) send(d, tcp(CLIENT, port, 'A'), ms);
    port++;
    if (ms % 100 === 0) d.tick(ms);
  }
  const s = d.services[0]!.stats;
  assert.ok(Math.abs(s.rate(0) - 100) <= 2, `cps ${s.rate(0)}`);
  assert.ok(Math.abs(s.rate(1) - 1000) <= 20, `inpps ${s.rate(1)}`);
  assert.ok(Math.abs(s.rate(3) - 40_000) <= 800, `inbps ${s.rate(3)}`);
  assert.equal(s.rate(2), 0);
  d.zero();
  assert.deepEqual([s.c[0], s.rate(0), d.stats.c[1]], [0, 0, 0]);
});

test('explain: says which server a flow would get and why, and commits nothing', () => {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  d.addDest(k80, { addr: ip(RS2), port: 8080 });
  const q = { proto: TCP, caddr: ip(CLIENT), cport: 5, vaddr: ip(VIP), vport: 80 };
  const e1 = d.explain(q, 0);
  assert.equal(e1.path, 'scheduler');
  assert.equal(e1.dest, `${RS2}:8080`);
  assert.equal(d.explain(q, 0).dest, `${RS2}:8080`, 'the rr cursor did not move');
  assert.equal(dstOf(send(d, tcp(CLIENT, 5, 'S'), 0).out), ip(RS2), 'explain predicted the real pick');
  assert.equal(d.explain(q, 0).path, 'connection');
  assert.equal(d.explain({ ...q, cport: 6, syn: false }, 0).path, 'not-syn');
  assert.equal(d.explain({ ...q, vport: 81 }, 0).path, 'no-service');
  d.editDest(k80, { addr: ip(RS1), port: 8080, weight: 0 });
  d.editDest(k80, { addr: ip(RS2), port: 8080, weight: 0 });
  assert.equal(d.explain({ ...q, cport: 6 }, 0).verdict, 'icmp');
  const kp = key(TCP, VIP, 443);
  d.addService({ ...kp, scheduler: 'wlc', persistent: 60 });
  d.addDest(kp, { addr: ip(RS1), port: 443 });
  send(d, tcp(CLIENT2, 9, 'S', VIP, 443), 0);
  assert.equal(d.explain({ ...q, caddr: ip(CLIENT2), cport: 10, vport: 443 }, 0).path, 'template');
});

test('strayTcp: a TCP segment without a connection passes by default, and is a counted drop with strayTcp drop', () => {
  for (const [stray, verdict, outcome] of [
    ['pass', Verdict.Pass, 'pass_no_conn'],
    ['drop', Verdict.Drop, 'drop_no_conn'],
  ] as const) {
    const d = director({ strayTcp: stray });
    d.addService({ ...k80, scheduler: 'rr' });
    d.addDest(k80, { addr: ip(RS1), port: 8080 });
    assert.equal(send(d, tcp(CLIENT, 9, 'A'), 0).v, verdict, stray);
    assert.equal(d.counters()[outcome], 1, stray);
    assert.equal(d.explain({ proto: TCP, caddr: ip(CLIENT), cport: 9, vaddr: ip(VIP), vport: 80, syn: false }, 0).verdict, stray);
  }
});

test("strayTcp 'local': a stray segment passes only to an address set by setLocalAddresses, and explain agrees", () => {
  const d = director({ strayTcp: 'local' });
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  const q = { proto: TCP, caddr: ip(CLIENT), cport: 9, vaddr: ip(VIP), vport: 80, syn: false };
  assert.equal(send(d, tcp(CLIENT, 9, 'A'), 0).v, Verdict.Drop, 'not local: dropped');
  assert.equal(d.explain(q, 0).verdict, 'drop');
  d.setLocalAddresses([ip(VIP)]);
  assert.equal(send(d, tcp(CLIENT, 9, 'A'), 0).v, Verdict.Pass, 'local: the host stack gets it');
  assert.equal(d.explain(q, 0).verdict, 'pass');
  d.setLocalAddresses([]);
  assert.equal(send(d, tcp(CLIENT, 9, 'A'), 0).v, Verdict.Drop, 'no longer local');
  assert.deepEqual([d.counters()['pass_no_conn'], d.counters()['drop_no_conn']], [1, 2]);
});
