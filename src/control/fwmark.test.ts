/**
 * Firewall-mark services in the administrative languages: keepalived.conf (`virtual_server
 * fwmark N`, fwmark members of a virtual_server_group) through to the desired rules, the
 * `ipvsadm -S` rules format, and ipvsadm's listing (`FWM  1 wlc`), with ipvsadm's and
 * keepalived's refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKeepalived } from './keepalived/config.js';
import { desiredRules } from './keepalived/desired.js';
import { formatRules, parseRules } from './rules.js';
import { formatConnections, formatListing } from './listing.js';
import { director, ip, RS1, RS2 } from '../../test/support/bed.js';
import { FixedMark } from '../core/mark-source.js';
import { fwmarkKey } from '../core/service.js';
import { ipv4 } from '../wire/build.js';

function load(text: string) {
  const dir = mkdtempSync(join(tmpdir(), 'hm-kconf-'));
  try {
    writeFileSync(join(dir, 'keepalived.conf'), text);
    return loadKeepalived(join(dir, 'keepalived.conf'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const CONF = `
virtual_server fwmark 1 {
    lb_algo wlc
    lb_kind NAT
    persistence_timeout 300
    real_server 192.0.2.11 80 { TCP_CHECK { connect_timeout 3 } }
    real_server 192.0.2.12 80 { weight 2 }
}
virtual_server_group WEB {
    203.0.113.20 80
    fwmark 5
}
virtual_server group WEB {
    lb_algo rr
    lb_kind DR
    real_server 192.0.2.13 80 { }
}
`;

test('keepalived: virtual_server fwmark N and fwmark group members become fwmark services', () => {
  const cfg = load(CONF);
  assert.deepEqual(
    cfg.services.map((s) => [s.proto, s.addr >>> 0, s.port, s.scheduler, s.persistent]),
    [
      [0, 1, 0, 'wlc', 300],
      [6, ip('203.0.113.20') >>> 0, 80, 'rr', 0],
      [0, 5, 0, 'rr', 0],
    ],
  );
  const alive = { alive: true, reason: 'test' };
  const { rules } = desiredRules(cfg, () => alive, new Map());
  assert.equal(
    formatRules(rules),
    [
      '-A -t 203.0.113.20:80 -s rr',
      '-a -t 203.0.113.20:80 -r 192.0.2.13:80 -g -w 1',
      '-A -f 1 -s wlc -p 300',
      '-a -f 1 -r 192.0.2.11:80 -m -w 1',
      '-a -f 1 -r 192.0.2.12:80 -m -w 2',
      '-A -f 5 -s rr',
      '-a -f 5 -r 192.0.2.13:80 -g -w 1', // DR server of a fwmark service: its own port, as keepalived gives it
      '',
    ].join('\n'),
  );
});

test('keepalived: a mark of 0, out of range or missing is refused with its place', () => {
  for (const bad of ['0', '4294967296', 'x', '']) {
    assert.throws(() => load(`virtual_server fwmark ${bad} {\n  real_server 192.0.2.11 80 { }\n}\n`), /keepalived\.conf:1:\d+: fwmark: .* is not a mark in 1\.\.4294967295/, bad);
    assert.throws(() => load(`virtual_server_group G {\n  fwmark ${bad}\n}\nvirtual_server group G {\n  real_server 192.0.2.11 80 { }\n}\n`), /keepalived\.conf:2:\d+: fwmark: /, bad);
  }
  assert.throws(() => load(`virtual_server fwmark 3 { }\nvirtual_server fwmark 3 { }\n`), /defined twice/);
});

test('rules: -f MARK round-trips through ipvsadm -S text; bad marks refused as ipvsadm', () => {
  const text = '-A -t 203.0.113.10:80 -s rr\n-A -f 1 -s wlc -p 300\n-a -f 1 -r 192.0.2.11:0 -m -w 1\n-a -f 1 -r 192.0.2.12:0 -g -w 1\n';
  const r = parseRules(text);
  assert.deepEqual(r.services[1], { ...fwmarkKey(1), scheduler: 'wlc', persistent: 300, schedFlags: 0, ops: false });
  assert.equal(formatRules(r), text);
  assert.throws(() => parseRules('-A -f 0 -s wlc\n'), /invalid fwmark value `0' specified/);
  assert.throws(() => parseRules('-A -f 4294967296\n'), /invalid fwmark value/);
  assert.throws(() => parseRules('-A -f 1:80\n'), /invalid fwmark value `1:80' specified/);
});

test('listing: FWM  <mark> after the address services; -L -c shows a fwmark template as IP with the mark as address', () => {
  const d = director();
  const marks = new FixedMark();
  marks.mark = 1;
  d.marks = marks;
  d.addService({ proto: 6, addr: ip('203.0.113.10'), port: 80, scheduler: 'rr' });
  d.addService({ ...fwmarkKey(1), scheduler: 'wlc', persistent: 300 });
  d.addDest(fwmarkKey(1), { addr: ip(RS1), port: 0 });
  d.addDest(fwmarkKey(1), { addr: ip(RS2), port: 0, weight: 0 });
  const b = ipv4({ src: '198.51.100.2', dst: '203.0.113.10' }).tcp({ sport: 40000, dport: 443, flags: 'S' }).build();
  d.process(b, 0, b.length, 1000, 0);
  const l = formatListing(d.snapshot(), { banner: false });
  assert.equal(
    l,
    [
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  203.0.113.10:80 rr',
      'FWM  1 wlc persistent 300',
      '  -> 192.0.2.11:0                 Masq    1      1          0         ', // SYN_RECV counts as active
      '  -> 192.0.2.12:0                 Masq    0      0          0         ',
      '',
    ].join('\n'),
  );
  const c = formatConnections(d.connections(1000));
  assert.deepEqual(c.split('\n').slice(2), [
    'IP  05:00  NONE        198.51.100.2:0     0.0.0.1:0          192.0.2.11:0', // the template: protocol IP, the mark as address
    'TCP 01:00  SYN_RECV    198.51.100.2:40000 203.0.113.10:443   192.0.2.11:443', // the packet's own port (persistent fwmark)
    '',
  ]);
});
