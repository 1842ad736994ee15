/**
 * The steering program (bpf/steer.bpf.c) run by the kernel (BPF_PROG_TEST_RUN on the socket
 * filter) over the map contents SteeringMap writes for a rule set: both directions of a
 * connection and ICMP errors about it get one hash (so one queue), persistent services key on
 * the client network, and a rule change moves no other service. The packets are IP packets as
 * the TUN hands them over; test runs need an Ethernet header in front, which the kernel pulls.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testRun } from '../../src/datapath/tun/bpf.js';
import { queueOf, SteeringMap, steeringSpec, type SteeringSpec } from '../../src/datapath/tun/steering.js';
import { needsRoot } from '../support/root.js';
import { api, dest, dests, dns, hash, icmpError, ip, seg, services, shop, svc, TCP, UDP, VIP, web } from '../support/steering-fixtures.js';

describe('steering program (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  const m = new SteeringMap();
  const eth = Buffer.from('0200000000010200000000020800', 'hex'); // IPv4 EtherType
  /** the hash the kernel computes for `pkt` with the map holding `spec` */
  const steer = (spec: SteeringSpec) => {
    const plan = m.prepare(spec);
    if (plan) m.apply(plan);
    return (pkt: Buffer) => testRun(m.progFd, Buffer.concat([eth, pkt])).retval >>> 0;
  };
  before(() => steer({ vips: [], inbound: [], outbound: [] }));
  after(() => m.close());

  test('both directions of a connection and ICMP errors about it meet in one queue', () => {
    const run = steer(steeringSpec(services, dests));
    const cases: [string, { proto: number; port: number }, string, number][] = [
      ['web', web, '192.0.2.11', 8080],
      ['shop', shop, '192.0.2.12', 8443],
      ['api', api, '192.0.2.13', 9000],
      ['dns', dns, '192.0.2.11', 5353],
    ];
    for (const [name, s, rip, rport] of cases)
      for (const [client, cport] of [
        ['198.51.100.2', 40000],
        ['198.51.100.77', 51234],
        ['192.0.2.200', 1025],
      ] as const) {
        const request = seg(s.proto, client, cport, VIP, s.port);
        const reply = seg(s.proto, rip, rport, client, cport);
        const forwarded = seg(s.proto, client, cport, rip, rport); // what the real server received
        const q = run(request);
        assert.equal(run(reply), q, `${name} ${client}:${cport}: reply`);
        assert.equal(run(icmpError(rip, client, forwarded)), q, `${name}: ICMP error from the real server`);
        assert.equal(run(icmpError('192.0.2.1', client, forwarded)), q, `${name}: ICMP error from this host`);
        assert.equal(run(icmpError('198.51.100.1', VIP, seg(s.proto, VIP, s.port, client, cport))), q, `${name}: ICMP error from the client side`);
      }
  });

  test("queueOf (placing handed-over connections) picks the queue the kernel's program picks, for 1..5 queues", () => {
    const spec = steeringSpec(services, dests);
    const run = steer(spec);
    let n = 0;
    for (const s of [web, shop, api, dns])
      for (let k = 0; k < 50; k++) {
        const client = `198.51.${100 + (k % 3)}.${(k * 37) % 250}`;
        const cport = 1024 + k * 1237;
        const h = run(seg(s.proto, client, cport, VIP, s.port));
        for (let q = 1; q <= 5; q++) assert.equal(queueOf(spec, q, s.proto, ip(client), cport, ip(VIP), s.port), h % q, `${client}:${cport} -> ${s.port}, ${q} queues`);
        n++;
      }
    assert.equal(n, 200);
  });

  test('flow key for services without persistence, client network for persistent ones', () => {
    const run = steer(steeringSpec(services, dests));
    const c = '198.51.100.77';
    for (const p of [40000, 40001, 61000]) {
      assert.equal(run(seg(TCP, c, p, VIP, 80)), hash((ip(c) ^ p) | 0), 'web: address ^ port');
      assert.equal(run(seg(TCP, c, p, VIP, 443)), hash(ip(c) & 0xffffff00), 'shop: client /24');
      assert.equal(run(seg(TCP, c, p, VIP, 8443)), hash(ip(c) & 0xffffff00), 'api: grouped with shop');
      assert.equal(run(seg(TCP, '198.51.100.9', p, VIP, 443)), hash(ip(c) & 0xffffff00), 'shop: one queue for the whole /24');
    }
    const queues = new Set([1, 2, 3, 4, 5, 6, 7, 8].map((i) => run(seg(TCP, c, 1024 + i * 7919, VIP, 80)) % 2));
    assert.equal(queues.size, 2, "one client's web connections reach both of two queues");
    // port-0 (all ports) persistent service: every port of that VIP keys on the client network
    const all = { proto: TCP, addr: ip('203.0.113.20'), port: 0, persistent: 60, netmask: ip('255.255.255.255') };
    const p0 = steer(steeringSpec([all], [{ service: all, dest: { addr: ip('192.0.2.14'), port: 0 } }]));
    for (const port of [22, 80, 8080]) {
      assert.equal(p0(seg(TCP, c, 40000 + port, '203.0.113.20', port)), hash(ip(c)));
      assert.equal(p0(seg(TCP, '192.0.2.14', port, c, 40000 + port)), hash(ip(c)));
    }
    assert.equal(p0(seg(UDP, c, 40000, '203.0.113.20', 53)), hash((ip(c) ^ 40000) | 0), 'another protocol is not that service');
  });

  test('an exact port wins over a port-0 entry of the same address (IPVS lookup order)', () => {
    const all = { proto: TCP, addr: ip(VIP), port: 0, persistent: 60, netmask: ip('255.255.0.0') };
    const run = steer(steeringSpec([all, shop], [dest(all, '192.0.2.14', 0), dest(shop, '192.0.2.12', 8443)]));
    const c = '198.51.100.77';
    assert.equal(run(seg(TCP, c, 40000, VIP, 443)), hash(ip(c) & 0xffffff00), 'shop: its own /24');
    assert.equal(run(seg(TCP, c, 40000, VIP, 444)), hash(ip(c) & 0xffff0000), 'any other port: the port-0 service');
  });

  test('adding a persistent service leaves the keys of the others unchanged (the map is updated, not the program)', () => {
    const packets: Buffer[] = [];
    for (let i = 0; i < 50; i++) {
      const c = `198.51.100.${i + 2}`;
      const p = 30000 + i * 611;
      packets.push(seg(TCP, c, p, VIP, 80), seg(TCP, '192.0.2.11', 8080, c, p), seg(UDP, c, p, VIP, 53), seg(UDP, '192.0.2.11', 5353, c, p));
    }
    const beforeRun = steer(steeringSpec([web, dns], dests.filter((d) => d.service === web || d.service === dns)));
    const progFd = m.progFd;
    const want = packets.map(beforeRun);
    const afterRun = steer(steeringSpec(services, dests));
    assert.equal(m.progFd, progFd);
    assert.deepEqual(packets.map(afterRun), want);
  });

  test('empty and many endpoints; short packets go to hash 0', () => {
    const many = Array.from({ length: 1000 }, (_, i) => svc(TCP, 1000 + i, i % 2 ? 60 : 0, '255.255.255.0'));
    for (const spec of [{ vips: [], inbound: [], outbound: [] }, steeringSpec([web], dests.slice(0, 2)), steeringSpec(many, many.map((s, i) => dest(s, '192.0.2.20', 2000 + i)))]) {
      const run = steer(spec);
      // (the kernel's test run itself refuses an IPv4 packet shorter than its header)
      assert.equal(run(icmpError('192.0.2.1', '198.51.100.5', seg(TCP, '198.51.100.5', 1500, '192.0.2.11', 80)).subarray(0, 38)), 0, 'quoted header cut');
      assert.equal(run(seg(TCP, '198.51.100.5', 1500, VIP, 80).subarray(0, 22)), 0, 'no room for the ports');
    }
    const run = steer(steeringSpec(many, many.map((s, i) => dest(s, '192.0.2.20', 2000 + i))));
    assert.equal(run(seg(TCP, '198.51.100.5', 1500, VIP, 1999)), hash(ip('198.51.100.5') & 0xffffff00), 'the last of 1000 services');
    assert.equal(run(seg(TCP, '192.0.2.20', 2999, '198.51.100.5', 1500)), hash(ip('198.51.100.5') & 0xffffff00), 'its reply');
  });
});
