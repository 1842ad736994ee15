import { test } from 'node:test';
import assert from 'node:assert/strict';
import { steeringEntries, steeringSpec, SteeringMap, STEER_MAX_ENTRIES } from './steering.js';
import { STEER_KEY, STEER_SIDE } from './layouts.gen.js';
import { api, dest, dests, dns, ip, services, shop, svc, TCP, VIP, web } from '../../../test/support/steering-fixtures.js';

test('steeringSpec: persistent services and the services sharing their real-server endpoints key on the client network', () => {
  const spec = steeringSpec(services, dests);
  assert.deepEqual(spec.vips, [ip(VIP) >>> 0]);
  assert.deepEqual(
    spec.inbound.map((e) => [e.port, e.mask >>> 0]),
    [
      [443, 0xffffff00],
      [8443, 0xffffff00],
    ],
  );
  assert.deepEqual(
    spec.outbound.map((e) => [e.addr >>> 0, e.port]),
    [
      [ip('192.0.2.12') >>> 0, 8443],
      [ip('192.0.2.13') >>> 0, 9000],
    ],
  );
  assert.deepEqual(steeringSpec([web, dns], dests), { vips: [ip(VIP) >>> 0], inbound: [], outbound: [] }, 'no persistence: nothing masked');
  // the coarsest netmask of a group wins
  const shop16 = svc(TCP, 444, 60, '255.255.0.0');
  const g = steeringSpec([shop, shop16], [dest(shop, '192.0.2.12', 8443), dest(shop16, '192.0.2.12', 8443)]);
  assert.deepEqual(g.inbound.map((e) => e.mask >>> 0), [0xffff0000, 0xffff0000]);
});


test('steering map contents: the VIPs, then every masked service and real-server endpoint with its mask', () => {
  const e = steeringEntries(steeringSpec(services, dests));
  const rows = [...e.values()].map(([k, v]) => [k[STEER_KEY.off.side], k[STEER_KEY.off.proto], k.readUInt32BE(STEER_KEY.off.addr), k.readUInt16BE(STEER_KEY.off.port), v.readUInt32LE(0)]);
  const { STEER_VIP, STEER_SERVICE, STEER_REAL } = STEER_SIDE;
  assert.deepEqual(rows, [
    [STEER_VIP, 0, ip(VIP) >>> 0, 0, 0],
    [STEER_SERVICE, TCP, ip(VIP) >>> 0, 443, 0xffffff00],
    [STEER_SERVICE, TCP, ip(VIP) >>> 0, 8443, 0xffffff00],
    [STEER_REAL, TCP, ip('192.0.2.12') >>> 0, 8443, 0xffffff00],
    [STEER_REAL, TCP, ip('192.0.2.13') >>> 0, 9000, 0xffffff00],
  ]);
  for (const [h, [k]] of e) assert.equal(h, k.toString('hex'));
  assert.equal(steeringEntries({ vips: [], inbound: [], outbound: [] }).size, 0);
});

test('steering map: a rule change is the difference of the entries; an unchanged spec is no change; too many entries throw before anything changes', { skip: process.getuid?.() === 0 ? false : 'needs root (bpf)' }, () => {
  const m = new SteeringMap();
  try {
    const first = m.prepare(steeringSpec([web, dns], dests.filter((d) => d.service === web || d.service === dns)))!;
    assert.deepEqual([first.updates, first.deletes], [1, 0], 'the VIP only');
    m.apply(first);
    assert.ok(m.instructions > 0 && m.instructions < 200, `one fixed program: ${m.instructions} instructions`);
    const progFd = m.progFd;
    const add = m.prepare(steeringSpec(services, dests))!;
    assert.deepEqual([add.updates, add.deletes], [4, 0], 'shop and api, in both directions');
    m.apply(add);
    assert.equal(m.size, 5);
    assert.equal(m.prepare(steeringSpec(services, dests)), null);
    const coarser = steeringSpec([{ ...shop, netmask: ip('255.255.0.0') }, api, web, dns], dests);
    const back = m.prepare(coarser)!;
    assert.deepEqual([back.updates, back.deletes], [4, 0], 'new masks are rewritten in place');
    m.apply(back);
    const gone = m.prepare(steeringSpec([web], dests.slice(0, 2)))!;
    assert.deepEqual([gone.updates, gone.deletes], [0, 4]);
    m.apply(gone);
    assert.equal(m.size, 1);
    assert.equal(m.progFd, progFd, 'never reloaded');
    const many = Array.from({ length: STEER_MAX_ENTRIES }, (_, i) => svc(TCP, 1 + (i % 65535), 60, '255.255.255.0'));
    const big = { vips: [1, 2], inbound: many.map((s, i) => ({ proto: s.proto, addr: i, port: s.port, mask: 0 })), outbound: [] };
    assert.throws(() => m.prepare(big), /exceed the map/);
    assert.equal(m.size, 1);
  } finally {
    m.close();
  }
});
