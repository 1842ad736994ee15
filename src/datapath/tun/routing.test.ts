import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ruleArgs } from './routing.js';
import { parseIPv4 as ip } from '../../wire/addr.js';

test('policy rules: one per service, per real server endpoint and ICMP, no duplicates; what ulvs wrote back is routed by main or not at all', () => {
  const vip = ip('203.0.113.10');
  const rs = ip('192.0.2.11');
  const rules = ruleArgs({
    dev: 'ulvs0',
    table: 4200,
    pref: 4200,
    services: [
      { proto: 6, addr: vip, port: 80 },
      { proto: 6, addr: vip, port: 81 },
      { proto: 17, addr: vip, port: 53 },
    ],
    servers: [
      { proto: 6, addr: rs, port: 8080 },
      { proto: 6, addr: rs, port: 8080 }, // same server in two services
      { proto: 17, addr: rs, port: 5353 },
    ],
  }).map((r) => r.join(' '));
  assert.deepEqual(rules, [
    'pref 4200 iif ulvs0 lookup main',
    'pref 4200 iif ulvs0 unreachable',
    'pref 4201 to 203.0.113.10/32 ipproto tcp dport 80 lookup 4200',
    'pref 4201 to 203.0.113.10/32 ipproto tcp dport 81 lookup 4200',
    'pref 4201 to 203.0.113.10/32 ipproto udp dport 53 lookup 4200',
    'pref 4201 to 203.0.113.10/32 ipproto icmp lookup 4200',
    'pref 4201 from 192.0.2.11/32 ipproto tcp sport 8080 lookup 4200',
    'pref 4201 from 192.0.2.11/32 ipproto udp sport 5353 lookup 4200',
    'pref 4201 from 192.0.2.11/32 ipproto icmp lookup 4200',
    'pref 4201 iif lo ipproto icmp lookup 4200',
  ]);
});
