import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dashboardStatus } from './status.js';
import { director, ip, key, RS1, RS2, RS3, TCP, VIP } from '../../test/support/bed.js';
import { ipv4 } from '../wire/build.js';

const k = key(TCP, VIP, 80);
function forwarded() {
  const d = director();
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080, weight: 3 });
  d.process(ipv4({ src: '198.51.100.2', dst: VIP }).tcp({ sport: 1, dport: 80, flags: 'S' }).build(), 0, 40, 0, 0);
  return d;
}

test('status: services and real servers with weight, connections and counters from the engine snapshot', () => {
  const s = dashboardStatus({ at: 1234, workers: 2, snapshot: forwarded().snapshot() });
  assert.equal(s.v, 1);
  assert.equal(s.at, 1234);
  assert.equal(s.workers, 2);
  assert.equal(s.connections, 1);
  assert.equal(s.services.length, 1);
  const v = s.services[0]!;
  assert.deepEqual([v.id, v.proto, v.scheduler, v.persistent, v.quorum, v.sorryServer], [`TCP ${VIP}:80`, 'TCP', 'rr', 0, null, null]);
  assert.deepEqual([v.conns, v.inpkts, v.inbytes], [1, 1, 40]);
  assert.equal(v.servers.length, 1);
  const r = v.servers[0]!;
  assert.deepEqual([r.id, r.forward, r.weight, r.up, r.inRules, r.sorry, r.conns], [`${RS1}:8080`, 'Masq', 3, null, true, false, 1]);
  const dest = forwarded().snapshot().services[0]!.dests[0]!;
  assert.deepEqual([r.active, r.inactive, r.persist], [dest.activeConns, dest.inactConns, dest.persistConns]);
  assert.equal(r.active + r.inactive, 1);
  assert.equal(s.totals.conns, 1);
  assert.equal(s.vrrp, null);
  assert.equal(s.defense, null);
  assert.equal('events' in s, false, 'no events unless given');
});

test('status: health, a server health checking removed (listed down), quorum and the sorry server; VRRP; defences; events', () => {
  const d = forwarded();
  d.addDest(k, { addr: ip(RS3), port: 0, weight: 1 }); // the sorry server (port 0: the service's)
  const s = dashboardStatus({
    at: 0,
    workers: 1,
    snapshot: d.snapshot(),
    health: [
      { proto: TCP, vaddr: ip(VIP), vport: 80, raddr: ip(RS1), rport: 8080, up: true },
      { proto: TCP, vaddr: ip(VIP), vport: 80, raddr: ip(RS2), rport: 8080, up: false },
      { proto: TCP, vaddr: ip(VIP), vport: 81, raddr: ip(RS2), rport: 8080, up: false }, // another service
    ],
    quorum: [{ proto: TCP, vaddr: ip(VIP), vport: 80, up: false, sorry: { addr: ip(RS3), port: 0 } }],
    vrrp: { instances: [{ name: 'VI_1', state: 'MASTER' }], groups: [{ name: 'G', state: null }], syncDaemon: { role: 'master' } },
    defense: { mode: { drop_entry: 1, drop_packet: 0, secure_tcp: 3 }, on: { drop_entry: 1, drop_packet: 0, secure_tcp: 1 }, dropRate: 0, availPages: 0, memPages: 0, tablePages: 0, memLow: 0 } as never,
    events: [{ at: 5, level: 'info', kind: 'health', msg: 'x' }],
  });
  const v = s.services[0]!;
  assert.equal(v.quorum, false);
  assert.equal(v.sorryServer, `${RS3}:80`);
  assert.deepEqual(v.servers.map((r) => [r.id, r.up, r.inRules, r.sorry]), [
    [`${RS3}:0`, null, true, false],
    [`${RS1}:8080`, true, true, false],
    [`${RS2}:8080`, false, false, false],
  ]);
  assert.deepEqual(s.vrrp, { instances: [{ name: 'VI_1', state: 'MASTER' }], groups: [{ name: 'G', state: null }], syncRole: 'master' });
  assert.deepEqual(s.defense!.on, ['drop_entry', 'secure_tcp']);
  assert.deepEqual(s.events, [{ at: 5, level: 'info', kind: 'health', msg: 'x' }]);
});

test('status: the sorry server is marked when the engine has it at its configured port', () => {
  const d = forwarded();
  d.addDest(k, { addr: ip(RS3), port: 8080, weight: 1 });
  const s = dashboardStatus({ at: 0, workers: 1, snapshot: d.snapshot(), quorum: [{ proto: TCP, vaddr: ip(VIP), vport: 80, up: false, sorry: { addr: ip(RS3), port: 8080 } }] });
  assert.deepEqual(s.services[0]!.servers.map((r) => [r.id, r.sorry]), [[`${RS3}:8080`, true], [`${RS1}:8080`, false]]);
});
