/** Golden ipvsadm listings from synthetic snapshots (ipvs-spec §6.7 samples, large counters). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatConnections, formatListing, formatTimeouts, largenum } from './listing.js';
import type { DirectorSnapshot } from '../core/director.js';
import { parseIPv4 as ip } from '../wire/addr.js';

const zero = { counters: [0, 0, 0, 0, 0], rates: [0, 0, 0, 0, 0] };
const dest = (a: string, port: number, o: Partial<DirectorSnapshot['services'][number]['dests'][number]> = {}) => ({ addr: ip(a), port, fwd: 0, tunType: 0, tunPort: 0, tunFlags: 0, weight: 1, uThreshold: 0, lThreshold: 0, activeConns: 0, inactConns: 0, persistConns: 0, unanswered: 0, ...zero, ...o });
const snap: DirectorSnapshot = {
  buckets: 4096,
  connections: 0,
  capacity: 0,
  totals: zero,
  services: [
    { proto: 17, addr: ip('10.0.0.1'), port: 53, scheduler: 'sh', flags: 0x4 | 0x8 | 0x10, timeout: 0, netmask: 0xffffffff, ...zero, dests: [dest('192.168.10.3', 53, { inactConns: 7 })] },
    {
      proto: 6,
      addr: ip('10.0.0.1'),
      port: 80,
      scheduler: 'wlc',
      flags: 0,
      timeout: 0,
      netmask: 0xffffffff,
      counters: [1290, 99465, 88304, 12415678, 124356789],
      rates: [3, 41, 36, 5220, 100000],
      dests: [
        dest('192.168.10.2', 8080, { weight: 2, inactConns: 1, uThreshold: 100, lThreshold: 50, counters: [56, 700, 650, 70000, 900000], rates: [0, 1, 1, 100, 2000] }),
        dest('192.168.10.1', 80, { activeConns: 3, inactConns: 12, counters: [1234, 98765, 87654, 12345678, 123456789], rates: [3, 40, 35, 5120, 98000] }),
      ],
    },
    { proto: 6, addr: ip('10.0.0.1'), port: 443, scheduler: 'rr', flags: 1, timeout: 360, netmask: 0xffffff00, ...zero, dests: [dest('192.168.10.1', 443, { activeConns: 1, persistConns: 2 })] },
  ],
};

test('default listing: sorted, flags, persistence and mask, trailing spaces', () => {
  assert.equal(
    formatListing(snap),
    [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  10.0.0.1:80 wlc',
      '  -> 192.168.10.1:80              Masq    1      3          12        ',
      '  -> 192.168.10.2:8080            Masq    2      0          1         ',
      'TCP  10.0.0.1:443 rr persistent 360 mask 255.255.255.0',
      '  -> 192.168.10.1:443             Masq    1      1          0         ',
      'UDP  10.0.0.1:53 sh (sh-fallback,sh-port) ops',
      '  -> 192.168.10.3:53              Masq    1      0          7         ',
      '',
    ].join('\n'),
  );
});

test('--stats with K/M abbreviations and --exact; --rate', () => {
  const s = formatListing({ ...snap, services: [snap.services[1]!] }, { format: 'stats' });
  assert.equal(
    s,
    [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes',
      '  -> RemoteAddress:Port',
      'TCP  10.0.0.1:80                      1290    99465    88304 12415678  124356K',
      '  -> 192.168.10.1:80                  1234    98765    87654 12345678  123456K',
      '  -> 192.168.10.2:8080                  56      700      650    70000   900000',
      '',
    ].join('\n'),
  );
  assert.match(formatListing({ ...snap, services: [snap.services[1]!] }, { format: 'stats', exact: true }), /12415678 124356789\n/);
  assert.equal(
    formatListing({ ...snap, services: [snap.services[1]!] }, { format: 'rate' }),
    [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS',
      '  -> RemoteAddress:Port',
      'TCP  10.0.0.1:80                         3       41       36     5220   100000',
      '  -> 192.168.10.1:80                     3       40       35     5120    98000',
      '  -> 192.168.10.2:8080                   0        1        1      100     2000',
      '',
    ].join('\n'),
  );
});

test('--thresholds and --persistent-conn layouts (title lines end with a space)', () => {
  const t = formatListing({ ...snap, services: [snap.services[1]!] }, { format: 'thresholds' }).split('\n');
  assert.equal(t[1], 'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn ');
  assert.equal(t[3], 'TCP  10.0.0.1:80 wlc');
  assert.equal(t[4], '  -> 192.168.10.1:80              0          0          3          12        ');
  assert.equal(t[5], '  -> 192.168.10.2:8080            100        50         0          1         ');
  const p = formatListing({ ...snap, services: [snap.services[2]!] }, { format: 'persistent-conn' }).split('\n');
  assert.equal(p[1], 'Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn ');
  assert.equal(p[3], 'TCP  10.0.0.1:443 rr persistent 360 mask 255.255.255.0');
  assert.equal(p[4], '  -> 192.168.10.1:443             1         2           1          0         ');
});

test('--tun-info layout', () => {
  const t = formatListing({ ...snap, services: [snap.services[1]!] }, { format: 'tun-info' }).split('\n');
  assert.equal(t[2], '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn');
  assert.equal(t[4], '  -> 192.168.10.1:80              Masq    n/a           1      3          12        ');
  const tun = formatListing(
    {
      ...snap,
      services: [
        {
          ...snap.services[1]!,
          dests: [
            dest('192.168.20.1', 80, { fwd: 2, weight: 3 }),
            dest('192.168.20.2', 80, { fwd: 2, tunType: 1, tunPort: 6080, tunFlags: 1 }),
            dest('192.168.20.3', 80, { fwd: 2, tunType: 2, tunFlags: 0 }),
            dest('192.168.20.4', 80, { fwd: 3 }),
          ],
        },
      ],
    },
    { format: 'tun-info' },
  ).split('\n');
  // ipvs-spec §6.7's sample, and gre and DR
  assert.deepEqual(tun.slice(4, 8), [
    '  -> 192.168.20.1:80              Tunnel  ipip          3      0          0         ',
    '  -> 192.168.20.2:80              Tunnel  gue:6080:+c   1      0          0         ',
    '  -> 192.168.20.3:80              Tunnel  gre:-c        1      0          0         ',
    '  -> 192.168.20.4:80              Route   n/a           1      0          0         ',
  ]);
});

test('largenum thresholds (K < 10^9, M < 10^11, G < 10^14, T) and exact widths', () => {
  assert.deepEqual([99999999, 100000000, 999999999, 1e9, 99999999999, 1e11, 99999999999999, 1e14].map((n) => largenum(n)), [
    ' 99999999',
    '  100000K',
    '  999999K',
    '     1000M',
    '    99999M',
    '      100G',
    '    99999G',
    '      100T',
  ].map((s) => s.slice(-9)));
  assert.equal(largenum(123456789, true), ' 123456789');
  assert.equal(largenum(12345678, true), ' 12345678');
});

test('single service without banner; connection listing; timeouts', () => {
  assert.ok(formatListing({ ...snap, services: [snap.services[0]!] }, { banner: false }).startsWith('Prot LocalAddress:Port Scheduler Flags\n'));
  assert.equal(
    formatConnections([
      { proto: 6, template: false, caddr: ip('203.0.113.7'), cport: 51234, vaddr: ip('10.0.0.1'), vport: 80, daddr: ip('192.168.10.1'), dport: 80, state: 'ESTABLISHED', expiresInMs: 893_400 },
      { proto: 17, template: false, caddr: ip('198.51.100.9'), cport: 40000, vaddr: ip('10.0.0.1'), vport: 53, daddr: ip('192.168.10.3'), dport: 53, state: 'UDP', expiresInMs: 287_999 },
    ]),
    [
      'IPVS connection entries',
      'pro expire state       source             virtual            destination',
      'TCP 14:53  ESTABLISHED 203.0.113.7:51234  10.0.0.1:80        192.168.10.1:80',
      'UDP 04:47  UDP         198.51.100.9:40000 10.0.0.1:53        192.168.10.3:53',
      '',
    ].join('\n'),
  );
  assert.equal(formatTimeouts({ tcp: 900, tcpfin: 120, udp: 300 }), 'Timeout (tcp tcpfin udp): 900 120 300\n');
});
