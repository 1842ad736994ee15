/**
 * Golden tables for persistence, quiesced servers (weight 0), connection thresholds, ICMP
 * errors in both directions and the "no usable server" ICMP reply.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../src/wire/build.js';
import { CLIENT, CLIENT2, director, ip, key, RS1, RS2, TCP, UDP, VIP } from '../support/bed.js';
import { runGolden } from '../support/golden.js';

const syn = (src: string, sport: number, dport = 443) => ipv4({ src, dst: VIP, id: sport }).tcp({ sport, dport, flags: 'S', seq: 1 }).build();
const synTo = (src: string, sport: number, rs: string, rport = 443) => ipv4({ src, dst: rs, id: sport }).tcp({ sport, dport: rport, flags: 'S', seq: 1 }).build();

test('persistence: a client sticks to one server for the timeout, then is scheduled afresh', () => {
  const d = director();
  const k = key(TCP, VIP, 443);
  d.addService({ ...k, scheduler: 'rr', persistent: 360 });
  d.addDest(k, { addr: ip(RS1), port: 443 });
  d.addDest(k, { addr: ip(RS2), port: 443 }); // list order: RS2, RS1 -> rr starts with RS2
  runGolden(d, [
    { name: 'client 1, conn 1 -> RS2 (rr)', input: syn(CLIENT, 1001), output: synTo(CLIENT, 1001, RS2), verdict: 'forward', outcome: 'forward_in' },
    { name: 'client 1, conn 2 -> RS2 (template)', input: syn(CLIENT, 1002), output: synTo(CLIENT, 1002, RS2), verdict: 'forward', outcome: 'forward_in' },
    { name: 'client 2 -> RS1 (rr moves on)', input: syn(CLIENT2, 2001), output: synTo(CLIENT2, 2001, RS1), verdict: 'forward', outcome: 'forward_in' },
    { name: 'client 1, conn 3 -> RS2 (template)', input: syn(CLIENT, 1003), output: synTo(CLIENT, 1003, RS2), verdict: 'forward', outcome: 'forward_in' },
  ]);
  assert.equal(d.services[0]!.dests.find((x) => x.addr === ip(RS2))!.persistConns, 1);
  const templates = d.connections(1_000_010).filter((c) => c.template);
  assert.equal(templates.length, 2);
  assert.ok(templates.every((t) => t.state === 'NONE' && t.cport === 0 && t.vport === 443));
  // SYN_RECV times out after 60 s, then the template still lives until 360 s after its last use.
  d.tick(1_000_000 + 200_000);
  assert.equal(d.connections(1_200_000).filter((c) => !c.template).length, 0);
  assert.equal(d.connections(1_200_000).filter((c) => c.template).length, 2);
  runGolden(d, [{ name: 'client 1 at 200 s -> RS2 (template alive)', at: 200_000, input: syn(CLIENT, 1004), output: synTo(CLIENT, 1004, RS2), verdict: 'forward', outcome: 'forward_in' }]);
  // 360 s after the last use plus the 60 s life of that last connection, everything is gone.
  d.tick(1_000_000 + 200_000 + 60_000 + 361_000);
  assert.equal(d.conns.count, 0);
  // rr's cursor sits on RS1 (client 2), so the next new client goes to RS2, and the one after to RS1.
  runGolden(d, [
    { name: 'client 1 after expiry -> RS2 (rr)', at: 700_000, input: syn(CLIENT, 1005), output: synTo(CLIENT, 1005, RS2), verdict: 'forward', outcome: 'forward_in' },
    { name: 'client 2 after expiry -> RS1 (rr)', input: syn(CLIENT2, 2002), output: synTo(CLIENT2, 2002, RS1), verdict: 'forward', outcome: 'forward_in' },
  ]);
});

test('persistence granularity: a /24 netmask makes a whole client network stick together', () => {
  const d = director();
  const k = key(TCP, VIP, 443);
  d.addService({ ...k, scheduler: 'rr', persistent: 60, netmask: ip('255.255.255.0') });
  d.addDest(k, { addr: ip(RS1), port: 443 });
  d.addDest(k, { addr: ip(RS2), port: 443 });
  runGolden(d, [
    { name: '198.51.100.2 -> RS2', input: syn(CLIENT, 1), output: synTo(CLIENT, 1, RS2), verdict: 'forward', outcome: 'forward_in' },
    { name: '198.51.100.3 -> RS2 (same /24)', input: syn(CLIENT2, 2), output: synTo(CLIENT2, 2, RS2), verdict: 'forward', outcome: 'forward_in' },
  ]);
  const t = d.connections(1_000_003).filter((c) => c.template);
  assert.equal(t.length, 1);
  assert.equal(t[0]!.caddr, ip('198.51.100.0'));
});

test('weight 0 (quiesced): the open connection keeps flowing, new ones go elsewhere', () => {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'wlc' });
  d.addDest(k, { addr: ip(RS1), port: 8080 });
  runGolden(d, [
    { name: 'SYN -> RS1', input: syn(CLIENT, 1, 80), output: synTo(CLIENT, 1, RS1, 8080), verdict: 'forward', outcome: 'forward_in' },
    { name: 'add RS2, quiesce RS1; data of the open conn still -> RS1', before: (x) => {
        x.addDest(k, { addr: ip(RS2), port: 8080 });
        x.editDest(k, { addr: ip(RS1), port: 8080, weight: 0 });
      }, input: ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 1, dport: 80, flags: 'A', seq: 2 }).payload('data').build(), output: ipv4({ src: CLIENT, dst: RS1 }).tcp({ sport: 1, dport: 8080, flags: 'A', seq: 2 }).payload('data').build(), verdict: 'forward', outcome: 'forward_in' },
    { name: 'new SYN -> RS2', input: syn(CLIENT2, 2, 80), output: synTo(CLIENT2, 2, RS2, 8080), verdict: 'forward', outcome: 'forward_in' },
    { name: 'another new SYN -> RS2', input: syn(CLIENT2, 3, 80), output: synTo(CLIENT2, 3, RS2, 8080), verdict: 'forward', outcome: 'forward_in' },
  ]);
});

test('thresholds: a server at its upper threshold is skipped until below the lower one', () => {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080, uThreshold: 2, lThreshold: 1 });
  d.addDest(k, { addr: ip(RS2), port: 8080, weight: 0 });
  const rs1 = d.services[0]!.dests.find((x) => x.addr === ip(RS1))!;
  runGolden(d, [
    { name: 'conn 1 -> RS1', input: syn(CLIENT, 1, 80), output: synTo(CLIENT, 1, RS1, 8080), verdict: 'forward', outcome: 'forward_in' },
    { name: 'conn 2 -> RS1 (reaches u=2: overloaded)', input: syn(CLIENT, 2, 80), output: synTo(CLIENT, 2, RS1, 8080), verdict: 'forward', outcome: 'forward_in' },
  ]);
  assert.equal(rs1.overloaded, true);
  runGolden(d, [{ name: 'conn 3: RS1 overloaded, RS2 quiesced -> ICMP unreachable', input: syn(CLIENT, 3, 80), verdict: 'icmp', outcome: 'icmp_unreach_sent' }], 1_000_010);
  // conn 1 is established, then reset: CLOSE lives 10 s; after it, total 1 is not < l=1.
  runGolden(d, [
    { name: 'ACK conn 1', input: ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 1, dport: 80, flags: 'A' }).build(), verdict: 'forward', outcome: 'forward_in', state: 'ESTABLISHED' },
    { name: 'RST conn 1', input: ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 1, dport: 80, flags: 'R' }).build(), verdict: 'forward', outcome: 'forward_in', state: 'CLOSE' },
    { name: 'RST on SYN_RECV conn 2 keeps SYN_RECV (kernel table)', input: ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 2, dport: 80, flags: 'R' }).build(), verdict: 'forward', outcome: 'forward_in', state: 'SYN_RECV' },
  ], 1_000_020);
  d.tick(1_000_000 + 15_000);
  assert.equal(rs1.activeConns + rs1.inactConns, 1);
  assert.equal(rs1.overloaded, true);
  d.tick(1_000_000 + 70_000); // conn 2's SYN_RECV (60 s) expires: 0 < 1 -> cleared
  assert.equal(rs1.overloaded, false);
  runGolden(d, [{ name: 'conn 4 -> RS1 again', at: 70_001, input: syn(CLIENT, 4, 80), output: synTo(CLIENT, 4, RS1, 8080), verdict: 'forward', outcome: 'forward_in' }]);
});

test('no usable server: ICMP port unreachable from the VIP to the client (TCP and UDP), rate limited', () => {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'wlc' });
  d.addDest(k, { addr: ip(RS1), port: 8080, weight: 0 });
  const s = syn(CLIENT, 1, 80);
  const icmp = ipv4({ src: VIP, dst: CLIENT, tos: 0xc0, id: 0, flagsFrag: 0, ttl: 64 }).icmp({ type: 3, code: 3, body: s }).build();
  runGolden(d, [{ name: 'SYN, no server', input: s, output: icmp, verdict: 'icmp', outcome: 'icmp_unreach_sent' }]);
  const ku = key(UDP, VIP, 53);
  d.addService({ ...ku, scheduler: 'rr' }); // no servers at all
  const q = ipv4({ src: CLIENT, dst: VIP }).udp({ sport: 5000, dport: 53 }).payload('q').build();
  const icmp2 = ipv4({ src: VIP, dst: CLIENT, tos: 0xc0, id: 1, flagsFrag: 0, ttl: 64 }).icmp({ type: 3, code: 3, body: q }).build();
  runGolden(d, [{ name: 'UDP, empty service', input: q, output: icmp2, verdict: 'icmp', outcome: 'icmp_unreach_sent' }], 1_000_100);
  // A burst of 100 at the same instant: the 50-token bucket empties, the rest are dropped and counted.
  let sent = 0;
  for (let i = 0; i < 100; i++) if (d.process(Buffer.from(q), 0, q.length, 2_000_000, 0) === 3) sent++;
  assert.ok(sent >= 49 && sent <= 50, `sent ${sent}`);
  assert.equal(d.counters()['drop_icmp_rate_limited'], 100 - sent);
  assert.equal(d.counters()['no_dest'], 102);
});

test('ICMP errors about a connection are translated both ways (quoted header included)', () => {
  const d = director();
  const ku = key(UDP, VIP, 53);
  d.addService({ ...ku, scheduler: 'rr' });
  d.addDest(ku, { addr: ip(RS1), port: 5353 });
  const kt = key(TCP, VIP, 80);
  d.addService({ ...kt, scheduler: 'rr' });
  d.addDest(kt, { addr: ip(RS1), port: 8080 });
  const q = ipv4({ src: CLIENT, dst: VIP, id: 1 }).udp({ sport: 5000, dport: 53 }).payload('query').build();
  const qAtRs = ipv4({ src: CLIENT, dst: RS1, id: 1 }).udp({ sport: 5000, dport: 5353 }).payload('query').build();
  const qAsClientSent = ipv4({ src: CLIENT, dst: VIP, id: 1 }).udp({ sport: 5000, dport: 53 }).payload('query').build({ l4Checksum: qAtRs.readUInt16BE(26) });
  // The real server answers "port unreachable", quoting what it received (client -> RIP:5353).
  const unreachFromRs = ipv4({ src: RS1, dst: CLIENT, id: 9 }).icmp({ type: 3, code: 3, body: qAtRs }).build();
  // The client must see it from the VIP, quoting what it sent (client -> VIP:53); the quoted UDP
  // checksum is left as the real server saw it (IPVS does not touch it).
  const unreachAtClient = ipv4({ src: VIP, dst: CLIENT, id: 9 }).icmp({ type: 3, code: 3, body: qAsClientSent }).build();
  // A TCP reply VIP:80 -> client is answered by a router on the client side with "frag needed".
  const s = ipv4({ src: CLIENT, dst: VIP, id: 2 }).tcp({ sport: 6000, dport: 80, flags: 'S' }).build();
  const replyFromVip = ipv4({ src: VIP, dst: CLIENT, id: 3 }).tcp({ sport: 80, dport: 6000, flags: 'SA' }).payload('z'.repeat(40)).build();
  const replyAsRsSent = ipv4({ src: RS1, dst: CLIENT, id: 3 }).tcp({ sport: 8080, dport: 6000, flags: 'SA' }).payload('z'.repeat(40)).build({ l4Checksum: replyFromVip.readUInt16BE(36) });
  const fragNeeded = ipv4({ src: '198.51.100.1', dst: VIP, id: 4 }).icmp({ type: 3, code: 4, rest: 1400, body: replyFromVip.subarray(0, 28) }).build();
  const fragNeededToRs = ipv4({ src: '198.51.100.1', dst: RS1, id: 4 }).icmp({ type: 3, code: 4, rest: 1400, body: replyAsRsSent.subarray(0, 28) }).build();
  const ttlExceeded = ipv4({ src: '192.0.2.254', dst: CLIENT, id: 5 }).icmp({ type: 11, code: 0, body: qAtRs.subarray(0, 28) }).build();
  const ttlExceededOut = ipv4({ src: VIP, dst: CLIENT, id: 5 }).icmp({ type: 11, code: 0, body: qAsClientSent.subarray(0, 28) }).build();
  runGolden(d, [
    { name: 'UDP query', input: q, output: qAtRs, verdict: 'forward', outcome: 'forward_in' },
    { name: 'port unreachable from RS -> client', input: unreachFromRs, output: unreachAtClient, verdict: 'forward', outcome: 'forward_icmp_out' },
    { name: 'time exceeded from a router on the RS side', input: ttlExceeded, output: ttlExceededOut, verdict: 'forward', outcome: 'forward_icmp_out' },
    { name: 'TCP SYN', input: s, verdict: 'forward', outcome: 'forward_in' },
    { name: 'frag needed from the client side -> RS', input: fragNeeded, output: fragNeededToRs, verdict: 'forward', outcome: 'forward_icmp_in' },
    { name: 'echo request passes', input: ipv4({ src: CLIENT, dst: VIP }).icmp({ type: 8, code: 0, body: Buffer.from('ping') }).build(), verdict: 'pass', outcome: 'pass_icmp' },
    { name: 'error about an unknown flow passes', input: ipv4({ src: RS2, dst: CLIENT }).icmp({ type: 3, code: 3, body: ipv4({ src: CLIENT, dst: RS2 }).udp({ sport: 1, dport: 2 }).build() }).build(), verdict: 'pass', outcome: 'pass_icmp' },
  ]);
});
