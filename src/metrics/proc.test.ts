/** The /proc texts against the reference samples (ecosystem.md §2.2-2.4), character by character. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { procIpVs, procIpVsConn, procIpVsStats } from './proc.js';
import type { DirectorSnapshot } from '../core/director.js';
import { parseIPv4 as ip } from '../wire/addr.js';

const zero = { counters: [0, 0, 0, 0, 0], rates: [0, 0, 0, 0, 0] };
const dest = (a: string, port: number, weight: number, active: number, inactive: number) => ({ addr: ip(a), port, fwd: 0, tunType: 0, tunPort: 0, tunFlags: 0, weight, uThreshold: 0, lThreshold: 0, activeConns: active, inactConns: inactive, persistConns: 0, unanswered: 0, ...zero });

test('/proc/net/ip_vs: the reference sample (IPv4 part), trailing spaces included', () => {
  const snap: DirectorSnapshot = {
    buckets: 4096,
    connections: 0,
    capacity: 0,
    totals: zero,
    services: [
      { proto: 6, addr: ip('10.0.0.10'), port: 80, scheduler: 'wlc', flags: 1, timeout: 300, netmask: 0xffffffff, ...zero, dests: [dest('192.168.10.11', 8080, 3, 12, 40), dest('192.168.10.12', 8080, 0, 2, 7)] },
      { proto: 17, addr: ip('10.0.0.10'), port: 53, scheduler: 'rr', flags: 4, timeout: 0, netmask: 0xffffffff, ...zero, dests: [dest('192.168.10.21', 53, 1, 0, 18)] },
    ],
  };
  assert.equal(
    procIpVs(snap),
    'IP Virtual Server version 1.2.1 (size=4096)\n' +
      'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n' +
      'TCP  0A00000A:0050 wlc  persistent 300 FFFFFFFF\n' +
      '  -> C0A80A0B:1F90      Masq    3      12         40        \n' +
      '  -> C0A80A0C:1F90      Masq    0      2          7         \n' +
      'UDP  0A00000A:0035 rr ops  \n' +
      '  -> C0A80A15:0035      Masq    1      0          18        \n',
  );
});

test('/proc/net/ip_vs_stats: the reference sample', () => {
  assert.equal(
    procIpVsStats({ counters: [1234, 98765, 87654, 12345678, 98765432], rates: [3, 42, 38, 8000, 45000] }),
    '   Total Incoming Outgoing         Incoming         Outgoing\n' +
      '   Conns  Packets  Packets            Bytes            Bytes\n' +
      '     4D2    181CD    15666           BC614E          5E30A78\n' +
      '\n' +
      ' Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n' +
      '       3       2A       26             1F40             AFC8\n',
  );
});

test('/proc/net/ip_vs_conn: the reference sample', () => {
  assert.equal(
    procIpVsConn([
      { proto: 6, template: false, caddr: ip('203.0.113.10'), cport: 0xc822, vaddr: ip('10.0.0.10'), vport: 80, daddr: ip('192.168.10.11'), dport: 8080, state: 'ESTABLISHED', expiresInMs: 897_400 },
      { proto: 17, template: false, caddr: ip('203.0.113.11'), cport: 0x9c41, vaddr: ip('10.0.0.10'), vport: 53, daddr: ip('192.168.10.21'), dport: 53, state: 'UDP', expiresInMs: 287_000 },
    ]),
    'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData\n' +
      'TCP CB00710A C822 0A00000A 0050 C0A80A0B 1F90 ESTABLISHED     897\n' +
      'UDP CB00710B 9C41 0A00000A 0035 C0A80A15 0035 UDP             287\n',
  );
});
