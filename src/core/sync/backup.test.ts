/**
 * End to end with two engines and no sockets: connections made on a master Director are
 * announced, the datagrams are applied on a backup Director, and the backup then forwards those
 * flows' packets to the same real servers, in the same states (ip_vs_proc_conn's rules).
 * Control: a backup that did not receive the datagrams does not forward the same packets, and a
 * new client of the persistent service goes elsewhere there.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../wire/build.js';
import { CLIENT, CLIENT2, director, ip, key, RS1, RS2, RS3, TCP, VIP } from '../../../test/support/bed.js';
import { capture, dstOf, records, send, srcOf, tcp } from '../../../test/support/sync-bed.js';
import { recordOf } from '../../../test/support/sync-vectors.js';
import { Append, SyncMessageWriter } from '../../wire/ipvs-sync/message-writer.js';
import { SyncReason } from '../../wire/ipvs-sync/reasons.js';
import type { Director } from '../director.js';
import { Fwd } from '../service.js';
import { Verdict } from '../verdict.js';

const k80 = key(TCP, VIP, 80);
const k443 = key(TCP, VIP, 443);
const k81 = key(TCP, VIP, 81);
const k8000 = key(TCP, VIP, 8000);
const T0 = 10_000;

/** The configuration both directors share; the master also has VIP:8000, the backup not. */
function configure(d: Director, isMaster: boolean): Director {
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  d.addDest(k80, { addr: ip(RS2), port: 8080 });
  d.addService({ ...k443, scheduler: 'rr', persistent: 300, netmask: 0xffffff00 });
  d.addDest(k443, { addr: ip(RS1), port: 443 });
  d.addDest(k443, { addr: ip(RS2), port: 443 });
  d.addService({ ...k81, scheduler: 'rr' });
  d.addDest(k81, { addr: ip(RS3), port: 81, fwd: Fwd.DROUTE });
  if (isMaster) {
    d.addService({ ...k8000, scheduler: 'rr' });
    d.addDest(k8000, { addr: ip(RS3), port: 8000 });
  }
  return d;
}

/** SYN, SYN-ACK (NAT only), ACK, one data packet: ESTABLISHED, announced at inbound packet 3. */
function open(d: Director, client: string, cport: number, vport: number, now: number): string {
  const syn = send(d, tcp(client, cport, 'S', VIP, vport), now);
  assert.equal(syn.v, Verdict.Forward);
  const rs = d.conns.daddr(d.lastConn) >>> 0;
  const rsPort = d.conns.dport(d.lastConn);
  if ((d.conns.flags(d.lastConn) & 0x600) === 0) send(d, ipv4({ src: rs, dst: client }).tcp({ sport: rsPort, dport: cport, flags: 'SA' }).build(), now);
  send(d, tcp(client, cport, 'A', VIP, vport), now);
  send(d, tcp(client, cport, 'PA', VIP, vport), now);
  return `${ip4(rs)}:${rsPort}`;
}
const ip4 = (n: number) => [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');

const FLOWS = [
  { client: CLIENT, cport: 40001, vport: 80 },
  { client: CLIENT, cport: 40002, vport: 80 },
  { client: CLIENT2, cport: 40003, vport: 80 },
  { client: CLIENT2, cport: 40004, vport: 80 },
  { client: CLIENT, cport: 40005, vport: 443 },
  { client: CLIENT2, cport: 40006, vport: 443 },
  { client: CLIENT, cport: 40007, vport: 81 },
  { client: CLIENT, cport: 40008, vport: 8000 },
];

function table(d: Director) {
  return d
    .connections(T0)
    .map((c) => `${c.template ? 'T' : 'C'} ${c.proto} ${ip4(c.caddr)}:${c.cport} ${ip4(c.vaddr)}:${c.vport} -> ${ip4(c.daddr)}:${c.dport} ${c.state}`)
    .sort();
}

function setUp() {
  const m = configure(director({ seed: 1 }), true);
  const b = configure(director({ seed: 2 }), false);
  const cap = capture();
  m.sync.startMaster({ syncid: 9, maxlen: 1472 }, cap.sink);
  // the persistent service's first pick goes to another client network, so 198.51.100.0/24 gets
  // the server a fresh backup would NOT pick first
  open(m, '192.0.2.100', 1, 443, T0);
  const rs = new Map<number, string>();
  for (const f of FLOWS) rs.set(f.cport, open(m, f.client, f.cport, f.vport, T0));
  m.sync.flush();
  return { m, b, cap, rs };
}

function applyAll(b: Director, datagrams: Buffer[], now: number, syncid = 9): void {
  for (const g of datagrams) assert.equal(b.sync.receive(g, 0, g.length, syncid, now), SyncReason.Ok);
}

test('backup: the applied table equals the master\'s, packets of those flows go to the same servers', () => {
  const { m, b, cap, rs } = setUp();
  const fresh = configure(director({ seed: 2 }), false);
  applyAll(b, cap.datagrams, T0);
  assert.deepEqual(table(b), table(m));
  assert.ok(b.connections(T0).every((c) => c.synced === true) && m.connections(T0).every((c) => c.synced === undefined), 'Origin: SYNC on the backup, LOCAL on the master');
  for (const f of FLOWS) {
    const pkt = tcp(f.client, f.cport, 'PA', VIP, f.vport);
    const r = send(b, pkt, T0 + 1000);
    assert.equal(r.v, Verdict.Forward, `flow ${f.cport} forwarded`);
    const conn = b.lastConn;
    assert.equal(`${ip4(b.conns.daddr(conn) >>> 0)}:${b.conns.dport(conn)}`, rs.get(f.cport), `flow ${f.cport}: same server`);
    if (f.vport !== 81) assert.equal(dstOf(r.out), rs.get(f.cport), 'NAT rewrite to that server');
    else assert.equal(dstOf(r.out), `${VIP}:81`, 'DR leaves the packet as it is');
    assert.notEqual(send(fresh, pkt, T0 + 1000).v, Verdict.Forward, `control: a backup without the records does not forward flow ${f.cport}`);
  }
  // a reply from the real server is rewritten back to the VIP
  const [addr, port] = rs.get(40001)!.split(':');
  const reply = send(b, ipv4({ src: addr!, dst: CLIENT }).tcp({ sport: Number(port), dport: 40001, flags: 'A' }).build(), T0 + 1000);
  assert.equal(reply.v, Verdict.Forward);
  assert.equal(srcOf(reply.out), `${VIP}:80`);
  assert.deepEqual(table(b), table(m), 'the packets left every state as it was');
  // the servers' counters agree (the unbound VIP:8000 entry is on the backup's stand-in)
  const counts = (d: Director) => d.snapshot().services.filter((s) => s.port !== 8000).flatMap((s) => s.dests.map((x) => `${s.port} ${ip4(x.addr)} a${x.activeConns} i${x.inactConns} p${x.persistConns}`));
  assert.deepEqual(counts(b), counts(m));
  assert.equal(b.sync.counters()['sync_apply_CreatedUnbound'], 1);
});

test('backup: the persistence template binds a new client of that network to the master\'s server', () => {
  const { b, cap, rs } = setUp();
  const fresh = configure(director({ seed: 2 }), false);
  applyAll(b, cap.datagrams, T0);
  const tplServer = rs.get(40005)!;
  assert.equal(rs.get(40006), tplServer, 'both clients of 198.51.100.0/24 share the template on the master');
  const synNew = tcp('198.51.100.77', 50000, 'S', VIP, 443);
  assert.equal(dstOf(send(b, synNew, T0 + 1000).out), tplServer);
  assert.notEqual(dstOf(send(fresh, synNew, T0 + 1000).out), tplServer, 'control: without the template the backup picks the other server');
});

test('backup: state changes and timeouts follow the master; an expired entry leaves; syncid filter', () => {
  const { m, b, cap } = setUp();
  const other = configure(director({ seed: 2 }), false);
  applyAll(b, cap.datagrams, T0);
  for (const g of cap.datagrams) assert.equal(other.sync.receive(g, 0, g.length, 8, T0), SyncReason.DropSyncId);
  assert.equal(other.conns.count, 0, 'another syncid: nothing applied');
  cap.datagrams.length = 0;
  send(m, tcp(CLIENT, 40001, 'FA'), T0 + 5000); // ESTABLISHED -> CLOSE_WAIT: announced at once, inactive
  m.sync.flush();
  assert.deepEqual(records(cap.datagrams).map((r) => [r.state, r.flags & 0x100]), [[7, 0x100]]);
  applyAll(b, cap.datagrams, T0 + 5000);
  assert.deepEqual(table(b), table(m));
  const rs80 = (d: Director) => d.snapshot().services.find((s) => s.port === 80)!.dests.map((x) => [x.activeConns, x.inactConns]);
  assert.deepEqual(rs80(b), rs80(m), 'one count moved from active to inactive on both');
  // ESTABLISHED entries live 900 s from the record on the backup; CLOSE_WAIT 60 s
  const live = () => b.connections(0).filter((c) => !c.template).length;
  const n = FLOWS.length + 1; // and the setUp's first client
  b.tick(T0 + 5000 + 59_000);
  assert.equal(live(), n);
  b.tick(T0 + 5000 + 61_000);
  assert.equal(live(), n - 1, 'CLOSE_WAIT expired after 60 s');
  b.tick(T0 + 899_000);
  assert.equal(live(), n - 1);
  b.tick(T0 + 901_000);
  assert.equal(live(), 0, 'ESTABLISHED after 900 s');
});

test('backup: an unbound entry binds once its server is configured; a backup turned master announces with SYNC', () => {
  const { m, b, cap } = setUp();
  applyAll(b, cap.datagrams, T0);
  b.addService({ ...k8000, scheduler: 'rr' });
  b.addDest(k8000, { addr: ip(RS3), port: 8000 });
  cap.datagrams.length = 0;
  send(m, tcp(CLIENT, 40008, 'FA', VIP, 8000), T0 + 1000); // forced: CLOSE_WAIT
  m.sync.flush();
  applyAll(b, cap.datagrams, T0 + 1000);
  assert.equal(b.sync.counters()['sync_apply_Bound'], 1);
  const d8000 = b.snapshot().services.find((s) => s.port === 8000)!.dests[0]!;
  assert.deepEqual([d8000.activeConns, d8000.inactConns], [0, 1]);
  const out = capture();
  b.sync.startMaster({ syncid: 9, maxlen: 1472 }, out.sink);
  for (let i = 0; i < 50; i++) send(b, tcp(CLIENT, 40001, 'PA'), T0 + 2000); // in_pkts was set to 3: packet 53 is announced
  b.sync.flush();
  const rec = records(out.datagrams).filter((r) => r.client === `${CLIENT}:40001`);
  assert.equal(rec.length, 1);
  assert.equal(rec[0]!.flags & 0x20, 0x20, 'IP_VS_CONN_F_SYNC: the entry came from a sync message');
});

test('backup: replaced and late records, records ulvs cannot carry', () => {
  const b = configure(director({ seed: 2 }), false);
  const w = new SyncMessageWriter(1472);
  const base = { af: 4 as const, protocol: 6, flags: 0, state: 1, cport: 40001, vport: 80, dport: 8080, fwmark: 0, timeout: 900, caddr: CLIENT, vaddr: VIP, daddr: RS1 };
  const msg = (recs: (typeof base | { af: 6 } & Omit<typeof base, 'af'>)[]) => {
    w.reset(1, 9);
    for (const f of recs) assert.equal(w.append(recordOf(f)), Append.Ok);
    return Buffer.from(w.bytes.subarray(0, w.length));
  };
  const one = (recs: Parameters<typeof msg>[0]) => {
    const g = msg(recs);
    return b.sync.receive(g, 0, g.length, 0, T0);
  };
  assert.equal(one([base]), SyncReason.Ok);
  assert.equal(one([{ ...base, daddr: RS2, flags: 0x100 }]), SyncReason.Ok);
  assert.deepEqual(table(b), [`C 6 ${CLIENT}:40001 ${VIP}:80 -> ${RS1}:8080 ESTABLISHED`], 'a late INACTIVE record for a replaced entry is ignored');
  assert.equal(one([{ ...base, daddr: RS2, state: 3 }]), SyncReason.Ok);
  assert.deepEqual(table(b), [`C 6 ${CLIENT}:40001 ${VIP}:80 -> ${RS2}:8080 SYN_RECV`], 'an active record with another server replaces it');
  const c = () => b.sync.counters();
  const before = b.conns.count;
  one([
    { ...base, af: 6, caddr: '2001:db8::2', vaddr: '2001:db8::10', daddr: '2001:db8::11' },
    { ...base, protocol: 132, state: 8 },
    { ...base, fwmark: 7, cport: 1 },
    { ...base, daddr: '0.0.0.0', cport: 2 },
    { ...base, vport: 9999, flags: 0x1, cport: 3 }, // unbound LOCALNODE
    { ...base, flags: 0x1000, cport: 4, state: 0 }, // template with a client port
    { ...base, flags: 0x800, cport: 0 }, // NO_CPORT (FTP data)
  ]);
  assert.equal(b.conns.count, before, 'none of them entered the table');
  assert.deepEqual(['SkipIpv6', 'SkipProtocol', 'SkipFwmark', 'SkipZeroAddress', 'SkipMethod', 'SkipTemplateCport', 'SkipNoCport'].map((k) => c()[`sync_apply_${k}`]), [1, 1, 1, 1, 1, 1, 1]);
  assert.equal(b.sync.lastSkipped, 7);
  assert.equal(c()['sync_rx_SkipByVisitor'], 7);
  one([{ ...base, cport: 5, timeout: 0xffffffff }]);
  assert.equal(c()['sync_apply_TimeoutCapped'], 1, 'a 136-year timeout is capped at 31 days');
});

test('backup: a bound entry takes the backup\'s own forwarding method for that server (ip_vs_bind_dest), an unbound one the master\'s', () => {
  const { cap } = setUp();
  const b = director({ seed: 3 });
  b.addService({ ...k81, scheduler: 'rr' });
  b.addDest(k81, { addr: ip(RS3), port: 81, fwd: Fwd.TUNNEL });
  applyAll(b, cap.datagrams, T0);
  const method = (cport: number) => {
    let m = -1;
    b.conns.forEach((i) => {
      if (b.conns.cport(i) === cport) m = (b.conns.flags(i) & 0x600) >>> 9;
    });
    return m;
  };
  assert.equal(method(40007), Fwd.TUNNEL, 'DR on the master, tunnelling here');
  assert.equal(method(40001), Fwd.MASQ, 'no VIP:80 here: unbound, NAT as on the master');
  assert.equal(b.sync.counters()['sync_apply_CreatedUnbound'], FLOWS.length + 1 - 1 + 2, 'all but the VIP:81 flow, plus the two templates');
});
