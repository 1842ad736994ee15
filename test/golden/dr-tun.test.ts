/**
 * Golden tables for direct routing and tunnelling in the engine: the packet leaves the engine
 * byte for byte as it came (the data path changes only the link layer and TTL for DR, or adds
 * the outer header for TUN), the connection sees only the client's direction and moves by IPVS's
 * input-only TCP table (ipvs-spec §3: SYN NO->SR, ACK SR->ES, client FIN ES->FW, last ACK stays
 * FW), a server's reply that reaches the director is not taken for the connection's, and NAT and
 * DR servers mix in one service.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../src/wire/build.js';
import { Fwd, TunType } from '../../src/core/service.js';
import { Stat } from '../../src/core/stats.js';
import { CLIENT, director, key, ip, RS1, RS2, TCP, UDP, VIP } from '../support/bed.js';
import { runGolden } from '../support/golden.js';

const cli = (flags: string, seq: number, ack: number, data = '') => ipv4({ src: CLIENT, dst: VIP, id: seq & 0xffff }).tcp({ sport: 40000, dport: 80, flags, seq, ack }).payload(data).build();
const fromRs = (flags: string, seq: number, ack: number) => ipv4({ src: VIP, dst: CLIENT, id: seq & 0xffff }).tcp({ sport: 80, dport: 40000, flags, seq, ack }).build();

for (const [name, fwd, extra] of [
  ['DR', Fwd.DROUTE, {}],
  ['TUN (ipip)', Fwd.TUNNEL, { tunType: TunType.IPIP }],
  ['TUN (gue)', Fwd.TUNNEL, { tunType: TunType.GUE, tunPort: 6080 }],
] as const) {
  test(`${name}: a whole TCP connection, input only; packets leave unchanged; replies are not the connection's`, () => {
    const d = director();
    const k = key(TCP, VIP, 80);
    d.addService({ ...k, scheduler: 'rr' });
    d.addDest(k, { addr: ip(RS1), port: 80, fwd, ...extra });
    runGolden(d, [
      { name: '1 client SYN', input: cli('S', 100, 0), output: cli('S', 100, 0), verdict: 'forward', outcome: 'forward_in', state: 'SYN_RECV' },
      { name: '2 client ACK', input: cli('A', 101, 501), output: cli('A', 101, 501), verdict: 'forward', outcome: 'forward_in', state: 'ESTABLISHED' },
      { name: '3 client data', input: cli('PA', 101, 501, 'GET /'), output: cli('PA', 101, 501, 'GET /'), verdict: 'forward', outcome: 'forward_in', state: 'ESTABLISHED' },
      // the real server answers the client directly; were its reply to pass the director, it is
      // not rewritten nor counted (ip_vs_out handles masquerading only)
      { name: '4 a reply seen by the director', input: fromRs('A', 501, 106), verdict: 'pass', outcome: 'pass_no_service' },
      { name: '5 client FIN', input: cli('FA', 106, 501), output: cli('FA', 106, 501), verdict: 'forward', outcome: 'forward_in', state: 'FIN_WAIT' },
      { name: '6 client last ACK', input: cli('A', 107, 502), output: cli('A', 107, 502), verdict: 'forward', outcome: 'forward_in', state: 'FIN_WAIT' },
    ]);
    const st = d.snapshot().services[0]!.dests[0]!;
    assert.equal(st.counters[Stat.INPKTS], 5);
    assert.equal(st.counters[Stat.OUTPKTS], 0, 'no reply counted');
    assert.deepEqual([st.activeConns, st.inactConns], [0, 1], 'FIN_WAIT is an inactive state (ipvs-spec §3.5)');
  });
}

test('a service with NAT and DR servers: each connection keeps the method of its server', () => {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080, fwd: Fwd.MASQ });
  d.addDest(k, { addr: ip(RS2), port: 80, fwd: Fwd.DROUTE });
  const dsts: string[] = [];
  for (let p = 0; p < 4; p++) {
    const b = ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 41000 + p, dport: 80, flags: 'S' }).build();
    d.process(b, 0, b.length, 0, 0);
    dsts.push(`${b.readUInt32BE(16) >>> 0}:${b.readUInt16BE(22)}`);
  }
  // rr, newest first: RS2 (DR: unchanged, VIP:80), RS1 (NAT: RS1:8080), ...
  assert.deepEqual(dsts, [`${ip(VIP)}:80`, `${ip(RS1)}:8080`, `${ip(VIP)}:80`, `${ip(RS1)}:8080`]);
  // changing a server's method later changes new connections only (ip_vs_bind_xmit)
  d.editDest(k, { addr: ip(RS1), port: 8080, fwd: Fwd.MASQ, weight: 1 });
  const again = ipv4({ src: CLIENT, dst: VIP }).tcp({ sport: 41001, dport: 80, flags: 'A' }).build();
  d.process(again, 0, again.length, 1, 0);
  assert.equal(again.readUInt32BE(16) >>> 0, ip(RS1), 'the NAT connection still rewrites');
});

test('UDP over DR: datagrams leave unchanged; no reply expected', () => {
  const d = director();
  const k = key(UDP, VIP, 53);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 53, fwd: Fwd.DROUTE });
  const q = ipv4({ src: CLIENT, dst: VIP }).udp({ sport: 5000, dport: 53 }).payload('query').build();
  runGolden(d, [{ name: 'query', input: q, output: q, verdict: 'forward', outcome: 'forward_in', state: 'UDP' }]);
});
