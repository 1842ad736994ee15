/**
 * The master: which packets make a connection announced (ip_vs_sync_conn_needed under each
 * sysctl setting), how records are batched into datagrams and when a datagram is handed over.
 * Each expectation is the kernel rule's result counted by hand (comments give the packet numbers).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../wire/build.js';
import { CLIENT, director, ip, key, RS1, TCP, UDP, VIP } from '../../../test/support/bed.js';
import { capture, dstOf, records, send, tcp, udp } from '../../../test/support/sync-bed.js';
import type { Director } from '../director.js';
import type { Sysctls } from '../sysctl.js';
import { OffloadReport } from '../offload.js';
import { Fwd } from '../service.js';

const k80 = key(TCP, VIP, 80);

function master(sysctl: Partial<Sysctls> = {}, persistent = 0, maxlen = 1472) {
  const d = director({ sysctl });
  d.addService({ ...k80, scheduler: 'rr', ...(persistent ? { persistent, netmask: 0xffffff00 } : {}) });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  d.addService({ ...key(UDP, VIP, 53), scheduler: 'rr', ops: true });
  d.addDest(key(UDP, VIP, 53), { addr: ip(RS1), port: 53 });
  const cap = capture();
  d.sync.startMaster({ syncid: 1, maxlen }, cap.sink);
  return { d, cap };
}

/** SYN, SYN-ACK, ACK: ESTABLISHED after 2 inbound packets. */
function handshake(d: Director, client: string, cport: number, now: number): string {
  const syn = send(d, tcp(client, cport, 'S'), now);
  const rs = dstOf(syn.out);
  const [addr, port] = rs.split(':');
  send(d, ipv4({ src: addr!, dst: client }).tcp({ sport: Number(port), dport: cport, flags: 'SA' }).build(), now);
  send(d, tcp(client, cport, 'A'), now);
  return rs;
}

/** n more inbound data packets. */
function data(d: Director, client: string, cport: number, n: number, now: number): void {
  for (let i = 0; i < n; i++) send(d, tcp(client, cport, 'PA'), now);
}

test('default "3 50": announced at inbound packets 3, 53, 103; a change to CLOSE_WAIT at once', () => {
  const { d, cap } = master();
  handshake(d, CLIENT, 40000, 1000); // inbound 1 (SYN_RECV), 2 (ESTABLISHED)
  data(d, CLIENT, 40000, 101, 1000); // inbound 3 .. 103
  send(d, tcp(CLIENT, 40000, 'FA'), 1000); // inbound 104: ESTABLISHED -> CLOSE_WAIT (input FIN)
  d.sync.flush();
  const rs = records(cap.datagrams);
  assert.deepEqual(rs.map((r) => r.state), [1, 1, 1, 7]);
  assert.equal(rs[0]!.timeout, 900, 'the state timeout in seconds');
  assert.equal(rs[3]!.flags & 0x100, 0x100, 'CLOSE_WAIT is inactive');
  assert.deepEqual({ client: rs[0]!.client, vip: rs[0]!.vip, rs: rs[0]!.rs }, { client: `${CLIENT}:40000`, vip: `${VIP}:80`, rs: `${RS1}:8080` });
});

test('"3 0" without refresh: once at packet 3, then state changes only', () => {
  const { d, cap } = master({ syncPeriod: 0 });
  handshake(d, CLIENT, 40000, 1000);
  data(d, CLIENT, 40000, 200, 1000);
  send(d, tcp(CLIENT, 40000, 'FA'), 1000);
  d.sync.flush();
  assert.deepEqual(records(cap.datagrams).map((r) => r.state), [1, 7]);
});

test('"3 0" with sync_refresh_period 10 s: time-driven, again once the expiry moved 10 s', () => {
  const { d, cap } = master({ syncPeriod: 0, syncRefreshPeriod: 10 });
  handshake(d, CLIENT, 40000, 1000); // packet 2 (ESTABLISHED) is announced: no packet rule with P = 0, R > 0
  data(d, CLIENT, 40000, 20, 2000); // 1 s later: the expiry moved 1 s < 10 s
  data(d, CLIENT, 40000, 1, 10_999); // 9.999 s after: still < 10 s
  data(d, CLIENT, 40000, 1, 11_000); // 10 s: announced
  data(d, CLIENT, 40000, 5, 12_000);
  d.sync.flush();
  assert.equal(records(cap.datagrams).length, 2);
});

test('sync_retries 2: two more announcements, each R/8 after the previous one, while the expiry does not move R', () => {
  const { d } = master({ syncPeriod: 0, syncRefreshPeriod: 16, syncRetries: 2 });
  const announced = () => (d.sync.flush(), d.sync.counters()['sync_tx_Records']);
  handshake(d, CLIENT, 40000, 0);
  assert.equal(announced(), 1, 'ESTABLISHED at t=0');
  data(d, CLIENT, 40000, 1, 1000);
  assert.equal(announced(), 1, '1 s < R/8 = 2 s');
  data(d, CLIENT, 40000, 1, 2000);
  assert.equal(announced(), 2, 'retry 1 at R/8');
  data(d, CLIENT, 40000, 1, 3000);
  assert.equal(announced(), 2, '1 s after retry 1');
  data(d, CLIENT, 40000, 1, 4000);
  assert.equal(announced(), 3, 'retry 2');
  data(d, CLIENT, 40000, 1, 9000);
  assert.equal(announced(), 3, 'retries used up');
  data(d, CLIENT, 40000, 1, 20_000);
  assert.equal(announced(), 4, 'the expiry moved 16 s since the last announcement: a new one, retries start again');
});

test('persistent service: the template is announced with every packet (templates are exempt from the period rule); sync_persist_mode hides the connection', () => {
  for (const persistMode of [false, true]) {
    const { d, cap } = master({ syncPersistMode: persistMode }, 300);
    handshake(d, CLIENT, 40000, 1000);
    data(d, CLIENT, 40000, 3, 1000); // inbound 3..5
    d.sync.flush();
    const rs = records(cap.datagrams);
    const tpl = rs.filter((r) => r.flags & 0x1000);
    assert.equal(tpl.length, 5, 'one template record per inbound packet');
    assert.deepEqual({ client: tpl[0]!.client, rs: tpl[0]!.rs, timeout: tpl[0]!.timeout, flags: tpl[0]!.flags }, { client: '198.51.100.0:0', rs: `${RS1}:8080`, timeout: 300, flags: 0x1100 });
    assert.deepEqual(tpl.map((r) => r.state), [0, 1, 1, 1, 1], 'ASSURED once the connection is established');
    assert.equal(rs.length - tpl.length, persistMode ? 0 : 1, 'the connection itself at packet 3 unless persist mode');
  }
});

test('one-packet UDP connections are never announced', () => {
  const { d, cap } = master();
  for (let i = 0; i < 10; i++) send(d, udp(CLIENT, 5000 + i), 1000);
  d.sync.flush();
  assert.equal(cap.datagrams.length, 0);
});

test('batching: 40 records per 1472-byte datagram; the rest handed over once 2 s old; a full queue counts a drop', () => {
  const { d, cap } = master();
  for (let i = 0; i < 100; i++) {
    handshake(d, CLIENT, 10000 + i, 1000);
    data(d, CLIENT, 10000 + i, 1, 1000);
  }
  assert.deepEqual(cap.datagrams.map((g) => g.length), [8 + 40 * 36, 8 + 40 * 36]);
  d.tick(2999);
  assert.equal(cap.datagrams.length, 2, 'not yet 2 s old');
  d.tick(3000);
  assert.deepEqual(cap.datagrams.map((g) => g.length), [1448, 1448, 8 + 20 * 36]);
  assert.equal(records(cap.datagrams).length, 100);
  const c = d.sync.counters();
  assert.equal(c['sync_tx_Datagrams'], 3);
  assert.equal(c['sync_tx_Records'], 100);
  d.sync.stopMaster();
  const full = capture(false);
  d.sync.startMaster({ syncid: 1, maxlen: 1472 }, full.sink);
  handshake(d, CLIENT, 30000, 4000);
  data(d, CLIENT, 30000, 1, 4000);
  d.sync.flush();
  assert.equal(d.sync.counters()['sync_tx_DatagramsDropped'], 1);
});

test('sync_version 0: v0 datagrams (24-byte records), read back by the decoder', () => {
  const { d, cap } = master({ syncVersion: 0 });
  handshake(d, CLIENT, 40000, 1000);
  data(d, CLIENT, 40000, 1, 1000);
  d.sync.flush();
  assert.equal(cap.datagrams[0]!.length, 4 + 24);
  assert.deepEqual(records(cap.datagrams).map((r) => [r.version, r.state, r.timeout]), [[0, 1, 0]]);
});

test('start/stop: EEXIST, ESRCH; a stopped master announces nothing and drops its partial datagram', () => {
  const { d, cap } = master();
  assert.throws(() => d.sync.startMaster({ syncid: 1, maxlen: 1472 }, cap.sink), /already running/);
  handshake(d, CLIENT, 40000, 1000);
  data(d, CLIENT, 40000, 1, 1000);
  assert.equal(d.sync.pending, 1);
  d.sync.stopMaster();
  assert.throws(() => d.sync.stopMaster(), /not running/);
  data(d, CLIENT, 40000, 50, 1000);
  d.tick(10_000);
  assert.equal(cap.datagrams.length, 0);
  assert.throws(() => d.sync.startMaster({ syncid: 256, maxlen: 1472 }, cap.sink), /syncid/);
});

test('the kernel fast path\'s packets count: a harvest that crosses packet 53 announces the connection', () => {
  let c = -1;
  const d = director({ offload: { port: () => ({ offer: (i: number) => ((c = i), true), withdraw: () => {}, route: () => {}, unroute: () => {} }), after: 1 } });
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  const cap = capture();
  d.sync.startMaster({ syncid: 1, maxlen: 1472 }, cap.sink);
  handshake(d, CLIENT, 40000, 1000);
  data(d, CLIENT, 40000, 1, 1000); // packet 3: announced; offloaded from here (after: 1)
  assert.ok(c >= 0);
  const r = new OffloadReport();
  r.inPkts = 40; // 4..43
  r.lastSeenMs = 1500;
  d.offloadActivity(c, r);
  r.inPkts = 20; // 44..63: 53 inside
  d.offloadActivity(c, r);
  d.sync.flush();
  assert.equal(records(cap.datagrams).length, 2);
});

test('flags as a kernel sends them: a DR template carries its server\'s method, INACTIVE and NOOUTPUT; a DR connection NOOUTPUT', () => {
  const d = director();
  const k81 = key(TCP, VIP, 81);
  d.addService({ ...k81, scheduler: 'rr', persistent: 60 });
  d.addDest(k81, { addr: ip(RS1), port: 81, fwd: Fwd.DROUTE });
  const cap = capture();
  d.sync.startMaster({ syncid: 1, maxlen: 1472 }, cap.sink);
  send(d, tcp(CLIENT, 40000, 'S', VIP, 81), 1000);
  send(d, tcp(CLIENT, 40000, 'A', VIP, 81), 1000);
  send(d, tcp(CLIENT, 40000, 'PA', VIP, 81), 1000);
  d.sync.flush();
  const rs = records(cap.datagrams);
  assert.deepEqual([...new Set(rs.filter((r) => r.flags & 0x1000).map((r) => r.flags))], [0x1183], 'TEMPLATE | INACTIVE | NOOUTPUT | DROUTE');
  assert.deepEqual(rs.filter((r) => !(r.flags & 0x1000)).map((r) => [r.flags, r.state, r.rs]), [[0x0083, 1, `${RS1}:81`]], 'NOOUTPUT | DROUTE, ESTABLISHED');
});
