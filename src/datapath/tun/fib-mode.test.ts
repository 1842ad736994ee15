import { test } from 'node:test';
import assert from 'node:assert/strict';
import { directBlockers, localAddrs, FIB_LOCAL4_MAX, type IpRule } from './fib-mode.js';
import { parseIPv4 } from '../../wire/addr.js';

const KERNEL: IpRule[] = [
  { priority: 0, src: 'all', table: 'local' },
  { priority: 32766, src: 'all', table: 'main' },
  { priority: 32767, src: 'all', table: 'default' },
];
const V = parseIPv4('203.0.113.10');
const R = parseIPv4('192.0.2.11');
const plan = { pref: 1000, services: [{ addr: V }], servers: [{ addr: R }] };
// what `ip -j rule show` prints for routing.ts's rules (iproute2 6.1)
const OWN: IpRule[] = [
  { priority: 1000, src: 'all', iif: 'ulvs0', table: 'main' },
  { priority: 1000, src: 'all', iif: 'ulvs0', action: 'unreachable' },
  { priority: 1001, src: 'all', dst: '203.0.113.10', ipproto: 'tcp', dport: 80, table: '4200' },
  { priority: 1001, src: '192.0.2.11', ipproto: 'tcp', sport: 8080, table: '4200' },
];

test("the kernel's three rules and ulvsd's own block nothing", () => {
  assert.deepEqual(directBlockers([...KERNEL, ...OWN], plan, 3), []);
  assert.deepEqual(directBlockers([], plan, 0), []);
});

test("any other rule blocks, also one at a kernel rule's preference with a selector or another table", () => {
  const cases: IpRule[] = [
    { priority: 100, src: 'all', dst: '192.0.2.11', action: 'prohibit' },
    { priority: 1000 - 1, src: 'all', table: 'main' },
    { priority: 32766, src: 'all', fwmark: '0x1', table: 'main' },
    { priority: 32766, src: '198.51.100.0', srclen: 24, table: 'main' },
    { priority: 0, src: 'all', table: 'main' },
    { priority: 1000, src: 'all', l3mdev: null, table: '' },
  ];
  for (const r of cases) {
    const b = directBlockers([...KERNEL, ...OWN, r], plan, 3);
    // the last case sits at ulvsd's own preference: taken as its own (routing.ts owns those)
    if (r.priority === 1000) assert.deepEqual(b, []);
    else assert.equal(b.length, 1, JSON.stringify(r));
  }
});

test('a VIP that is also a real server blocks (its rules would match rewritten packets)', () => {
  const b = directBlockers(KERNEL, { pref: 1000, services: [{ addr: V }], servers: [{ addr: V }, { addr: R }] }, 1);
  assert.equal(b.length, 1);
  assert.match(b[0]!, /203\.0\.113\.10/);
});

test("more local addresses than the program's set blocks", () => {
  assert.deepEqual(directBlockers(KERNEL, plan, FIB_LOCAL4_MAX), []);
  assert.equal(directBlockers(KERNEL, plan, FIB_LOCAL4_MAX + 1).length, 1);
});

test('local addresses from `ip -j -4 addr show`: IPv4 only, each once, host order', () => {
  const links = [
    { ifname: 'lo', addr_info: [{ family: 'inet', local: '127.0.0.1' }] },
    { ifname: 'eth0', addr_info: [{ family: 'inet', local: '192.0.2.1' }, { family: 'inet6', local: '2001:db8::1' }, { family: 'inet', local: '192.0.2.1' }] },
    { ifname: 'eth1' },
    { ifname: 'eth2', addr_info: [{ family: 'inet', local: 'not an address' }, { local: '203.0.113.10' }] },
  ];
  assert.deepEqual(localAddrs(links).sort(), [parseIPv4('127.0.0.1') >>> 0, parseIPv4('192.0.2.1') >>> 0, parseIPv4('203.0.113.10') >>> 0].sort());
});
