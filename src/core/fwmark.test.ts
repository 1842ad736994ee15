/**
 * Firewall-mark services in the engine (ip_vs_service_find with a mark, ip_vs_sched_persist's
 * fwmark template): the mark chooses the service of a new connection before the address lookup,
 * a persistent fwmark service binds a client's connections to every port the mark takes to one
 * server, and the requests that change them are refused as IPVS/ipvsadm refuse them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../wire/build.js';
import { CLIENT, director, ip, key, RS1, RS2, TCP, UDP, VIP } from '../../test/support/bed.js';
import { FixedMark } from './mark-source.js';
import { ServiceIndex } from './service-index.js';
import { fwmarkKey, FWMARK_PROTO, VirtualService } from './service.js';
import { Verdict } from './verdict.js';
import { HANDOVER_RECORD_SIZE, REC } from './conn/handover.js';
import type { Director } from './director.js';

const tcp = (sport: number, dport: number, flags = 'S', src = CLIENT) => ipv4({ src, dst: VIP }).tcp({ sport, dport, flags }).build();
const udp = (sport: number, dport: number) => ipv4({ src: CLIENT, dst: VIP }).udp({ sport, dport }).build();
function send(d: Director, pkt: Buffer, now = 1000): { v: number; dst: string; dport: number } {
  const b = Buffer.from(pkt);
  const v = d.process(b, 0, b.length, now, 0);
  return { v, dst: [12, 13, 14, 15].map((i) => b[i + 4]).join('.'), dport: b.readUInt16BE(22) };
}

test('ServiceIndex: byMark finds a fwmark service by its mark only, and address lookups never see it', () => {
  const fwm = new VirtualService(FWMARK_PROTO, 1, 0, 'rr');
  const big = new VirtualService(FWMARK_PROTO, 0xffffffff, 0, 'rr');
  const tcp80 = new VirtualService(TCP, ip(VIP), 80, 'rr');
  const idx = new ServiceIndex([tcp80, fwm, big]);
  assert.equal(idx.hasFwmark, true);
  assert.equal(idx.byMark(1), fwm);
  assert.equal(idx.byMark(0xffffffff), big);
  assert.equal(idx.byMark(2), null);
  assert.equal(idx.byMark(0), null, 'mark 0 is no mark');
  assert.equal(idx.find(TCP, ip(VIP), 80), tcp80);
  assert.equal(idx.find(TCP, 1, 0), null, 'the key <0, 1, 0> is not an address service of 0.0.0.1');
  assert.equal(new ServiceIndex([tcp80]).hasFwmark, false);
});

test('a marked SYN is scheduled by the fwmark service before the address lookup; an unmarked one is not', () => {
  const d = director();
  const marks = new FixedMark();
  d.marks = marks;
  d.addService({ ...fwmarkKey(1), scheduler: 'rr' });
  d.addDest(fwmarkKey(1), { addr: ip(RS1), port: 0 });
  d.addService({ ...key(TCP, VIP, 80), scheduler: 'rr' });
  d.addDest(key(TCP, VIP, 80), { addr: ip(RS2), port: 8080 });
  marks.mark = 0;
  let r = send(d, tcp(40000, 80));
  assert.deepEqual([r.v, r.dst, r.dport], [Verdict.Forward, RS2, 8080], 'unmarked: the address service');
  r = send(d, tcp(40001, 443));
  assert.equal(r.v, Verdict.Pass, 'control: unmarked packet to a port no address service has is not ours');
  marks.mark = 1;
  r = send(d, tcp(40002, 80));
  assert.deepEqual([r.v, r.dst, r.dport], [Verdict.Forward, RS1, 80], 'marked: the fwmark service first (IPVS order), server port 0 keeps the packet port');
  r = send(d, tcp(40003, 443));
  assert.deepEqual([r.v, r.dst, r.dport], [Verdict.Forward, RS1, 443]);
  marks.mark = 2;
  r = send(d, tcp(40004, 443));
  assert.equal(r.v, Verdict.Pass, 'another mark: no service');
  // packets of an existing connection are found by tuple, mark or not
  marks.mark = 0;
  r = send(d, tcp(40003, 443, 'A'));
  assert.deepEqual([r.v, r.dst], [Verdict.Forward, RS1]);
  // deleting the service stops balancing
  marks.mark = 1;
  d.deleteService(fwmarkKey(1));
  assert.equal(send(d, tcp(40005, 443)).v, Verdict.Pass);
});

test('persistent fwmark service: one template <IP, client net, 0, mark, 0> binds http, https and UDP to one server', () => {
  const d = director();
  const marks = new FixedMark();
  d.marks = marks;
  marks.mark = 7;
  d.addService({ ...fwmarkKey(7), scheduler: 'rr', persistent: 300 });
  d.addDest(fwmarkKey(7), { addr: ip(RS1), port: 0 });
  d.addDest(fwmarkKey(7), { addr: ip(RS2), port: 0 });
  const first = send(d, tcp(41000, 80));
  assert.equal(first.v, Verdict.Forward);
  for (const [p, port] of [[41001, 443], [41002, 80], [41003, 8443]] as const) {
    const r = send(d, tcp(p, port));
    assert.deepEqual([r.v, r.dst, r.dport], [Verdict.Forward, first.dst, port], `port ${port} goes where the first went, its own port kept`);
  }
  const u = Buffer.from(udp(5000, 53));
  assert.equal(d.process(u, 0, u.length, 1000, 0), Verdict.Forward);
  assert.equal([16, 17, 18, 19].map((i) => u[i]).join('.'), first.dst, 'UDP shares the template (protocol IP)');
  const conns = d.connections(1000);
  const templates = conns.filter((c) => c.template);
  assert.equal(templates.length, 1);
  assert.deepEqual([templates[0]!.proto, templates[0]!.vaddr >>> 0, templates[0]!.vport, templates[0]!.cport, templates[0]!.dport], [0, 7, 0, 0, 0]);
  // control: without persistence rr alternates, so the check above can fail
  const d2 = director();
  d2.marks = marks;
  d2.addService({ ...fwmarkKey(7), scheduler: 'rr' });
  d2.addDest(fwmarkKey(7), { addr: ip(RS1), port: 0 });
  d2.addDest(fwmarkKey(7), { addr: ip(RS2), port: 0 });
  assert.notEqual(send(d2, tcp(42000, 80)).dst, send(d2, tcp(42001, 443)).dst);
});

test('fwmark requests refused as ipvsadm and IPVS refuse them, changing nothing', () => {
  const d = director();
  assert.throws(() => d.addService({ proto: FWMARK_PROTO, addr: 0, port: 0 }), /invalid fwmark value `0' specified/);
  assert.throws(() => d.addService({ proto: FWMARK_PROTO, addr: 2 ** 32, port: 0 }), /invalid fwmark value/);
  assert.throws(() => d.addService({ proto: FWMARK_PROTO, addr: 1, port: 80 }), /a firewall-mark service has no port/);
  assert.equal(d.services.length, 0);
  d.addService({ ...fwmarkKey(1) }); // no persistence needed for port 0 (unlike an address service)
  assert.throws(() => d.addService({ ...fwmarkKey(1) }), /Service already exists/);
  d.addService({ ...fwmarkKey(2), ops: true }); // one-packet scheduling: UDP or fwmark services
  assert.throws(() => d.addService({ ...key(TCP, VIP, 0) }), /Zero port specified for non-persistent service/, 'control: an address service still needs it');
  assert.equal(d.services.length, 2);
  assert.equal(d.services[0]!.fwmark, 1);
  void UDP;
});

test('restart records carry the mark: a new process binds the fwmark connections and template to the same servers', () => {
  const marks = new FixedMark();
  marks.mark = 1;
  const make = () => {
    const d = director();
    d.marks = marks;
    d.addService({ ...fwmarkKey(1), scheduler: 'rr', persistent: 300 });
    for (const rs of [RS1, RS2]) d.addDest(fwmarkKey(1), { addr: ip(rs), port: 0 });
    return d;
  };
  const a = make();
  send(a, tcp(40000, 80, 'S', '192.0.2.100')); // the first pick goes to another client
  const first = send(a, tcp(40001, 80));
  const x = a.exportConns(1000);
  const b = make();
  const r = b.importConns(x.buf, x.count, 1000);
  assert.deepEqual([r.imported, r.noDest], [4, 0], JSON.stringify(r));
  marks.mark = 0; // the connection is found by its tuple, without the mark
  assert.deepEqual([send(b, tcp(40001, 80, 'A')).v, send(b, tcp(40001, 80, 'A')).dst], [Verdict.Forward, first.dst]);
  marks.mark = 1;
  assert.equal(send(b, tcp(40002, 443)).dst, first.dst, "the template: the client's https goes to its http server");
  const c = make();
  assert.notEqual(send(c, tcp(40002, 443)).dst, first.dst, 'control: a process without the records picks the other server');
  // control: without their mark the two connections find no service (the templates still do:
  // their key <IP, net, mark, 0> names it)
  for (let i = 0; i < x.count; i++) x.buf.writeUInt32LE(0, i * HANDOVER_RECORD_SIZE + REC.fwmark);
  assert.equal(make().importConns(x.buf, x.count, 1000).noDest, 2);
});
