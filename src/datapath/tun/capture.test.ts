import { test } from 'node:test';
import assert from 'node:assert/strict';
import { captureFilters, filterSetKey } from './capture.js';
import { parseIPv4 as ip } from '../../wire/addr.js';

test('tc capture: one u32 filter per service, per real server endpoint and ICMP; IPv4 without options only; no duplicates; a local VIP gets no pass, pings to a VIP pass', () => {
  const vip = ip('203.0.113.10');
  const rs = ip('192.0.2.11');
  const f = captureFilters(
    {
    services: [
      { proto: 6, addr: vip, port: 80 },
      { proto: 17, addr: vip, port: 53 },
      { proto: 6, addr: ip('203.0.113.20'), port: 0 }, // all ports (persistent port-0 service)
    ],
    servers: [
      { proto: 6, addr: rs, port: 8080 },
      { proto: 6, addr: rs, port: 8080 },
      { proto: 17, addr: rs, port: 5353 },
    ],
    },
    [ip('192.0.2.1'), ip('198.51.100.1'), ip('192.0.2.1'), vip],
  );
  const m = f.map((x) => `${x.action} ${x.match.join(' ').replace('match u8 0x45 0xff at 0 ', '')}`);
  assert.deepEqual(m, [
    'pass match ip dst 192.0.2.1/32',
    'pass match ip dst 198.51.100.1/32',
    'redirect match ip dst 203.0.113.10/32 match ip protocol 6 0xff match ip dport 80 0xffff',
    'redirect match ip dst 203.0.113.10/32 match ip protocol 17 0xff match ip dport 53 0xffff',
    'redirect match ip dst 203.0.113.20/32 match ip protocol 6 0xff',
    'pass match ip dst 203.0.113.10/32 match ip protocol 1 0xff match u8 8 0xff at 20',
    'pass match ip dst 203.0.113.20/32 match ip protocol 1 0xff match u8 8 0xff at 20',
    'redirect match ip dst 203.0.113.10/32 match ip protocol 1 0xff',
    'redirect match ip dst 203.0.113.20/32 match ip protocol 1 0xff',
    'redirect match ip src 192.0.2.11/32 match ip protocol 6 0xff match ip sport 8080 0xffff',
    'redirect match ip src 192.0.2.11/32 match ip protocol 17 0xff match ip sport 5353 0xffff',
    'redirect match ip src 192.0.2.11/32 match ip protocol 1 0xff',
  ]);
  for (const x of captureFilters({ services: [{ proto: 6, addr: vip, port: 80 }], servers: [] })) assert.deepEqual(x.match.slice(0, 6), ['match', 'u8', '0x45', '0xff', 'at', '0']);
});

test('filterSetKey: equal for the same filters on the same devices (updateCapture spawns no tc then), different when a filter, its action, its order or a device differs', () => {
  const plan = (port: number) => ({ services: [{ proto: 6, addr: ip('203.0.113.10'), port }], servers: [{ proto: 6, addr: ip('192.0.2.11'), port: 9000 }] });
  const locals = [ip('192.0.2.1')];
  const a = filterSetKey(['br0', 'pubbr'], captureFilters(plan(80), locals));
  assert.equal(filterSetKey(['br0', 'pubbr'], captureFilters(plan(80), locals)), a, 'a weight or scheduler change leaves the plan, so the key, as it is');
  assert.notEqual(filterSetKey(['br0', 'pubbr'], captureFilters(plan(81), locals)), a, 'another service port');
  assert.notEqual(filterSetKey(['br0', 'pubbr'], captureFilters(plan(80), [...locals, ip('198.51.100.1')])), a, 'a new local address (a pass filter)');
  assert.notEqual(filterSetKey(['br0'], captureFilters(plan(80), locals)), a, 'an interface fewer');
  assert.notEqual(filterSetKey(['pubbr', 'br0'], captureFilters(plan(80), locals)), a, 'the same interfaces in another order: installed anew (cheap to be safe)');
  const f = captureFilters(plan(80), locals);
  assert.notEqual(filterSetKey(['br0', 'pubbr'], f.map((x) => ({ ...x, action: x.action === 'pass' ? 'redirect' : 'pass' }) as typeof x)), a, 'an action');
});
