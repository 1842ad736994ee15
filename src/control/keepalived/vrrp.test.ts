/**
 * The VRRP part of keepalived.conf: the pair's golden config (src/lab/pair-config.ts, the file
 * the README shows) read for both config ids, lvs_sync_daemon's forms and ranges as keepalived's
 * lvs_syncd_handler, and malformed inputs refused with file:line:col. Where keepalived is
 * installed, the golden config also passes `keepalived -t` (the file is meant for both programs).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadKeepalived } from './config.js';
import { pairKeepalivedConf, type PairConfigOptions } from '../../lab/pair-config.js';
import { Fwd, TunType } from '../../core/service.js';

const GOLDEN_OPTIONS: PairConfigOptions = {
  priority: 150,
  vip: '203.0.113.10',
  dip: '192.0.2.1',
  dipPrefix: 24,
  outside: 'o0',
  inside: 'i0',
  fifo: '/run/ulvs/vrrp.fifo',
  aliveCheck: ['/usr/bin/env', 'ULVS_SOCKET=/run/ulvs/ulvs.sock', '/usr/local/bin/ulvsadm', '-L', '--timeout'],
  track: 'script',
  realServers: ['192.0.2.11', '192.0.2.12'],
  vport: 80,
  rport: 8080,
  vrids: [51, 52],
};
const GOLDEN = pairKeepalivedConf(GOLDEN_OPTIONS);
const load = (text: string, id?: string) => loadKeepalived('/k.conf', () => text, id);
const GLOBAL = (line: string) => `global_defs {\n  notify_fifo /run/f\n  ${line}\n}\nvrrp_instance VI_INT {\n  interface i0\n  virtual_router_id 52\n}\n`;

test('the golden pair config: instances, sync group, lvs_sync_daemon for config id ulvs, not for another', () => {
  const c = load(GOLDEN);
  assert.deepEqual(
    c.vrrp.instances.map((v) => [v.name, v.interface, v.state, v.vrid, v.priority, v.advertInt, v.vips, v.trackScripts]),
    [
      ['VI_EXT', 'o0', 'BACKUP', 51, 150, 1, [{ addr: '203.0.113.10/32', dev: 'o0' }], ['ULVSD_ALIVE']],
      ['VI_INT', 'i0', 'BACKUP', 52, 150, 1, [{ addr: '192.0.2.1/24', dev: 'i0' }], ['ULVSD_ALIVE']],
    ],
  );
  assert.deepEqual(c.vrrp.groups.map((g) => [g.name, g.members]), [['G_NAT', ['VI_EXT', 'VI_INT']]]);
  const { pos, ...d } = c.vrrp.syncDaemon!;
  assert.deepEqual(d, { interface: 'i0', instance: 'VI_INT', syncId: 52, port: 8848, ttl: 1, group: '224.0.0.81', conditional: true });
  assert.equal(pos.line, 7);
  assert.equal(c.vrrp.notifyFifo, '/run/ulvs/vrrp.fifo');
  assert.equal(c.services.length, 1);
  assert.deepEqual(c.warnings, ['/k.conf:2:1: global_defs: left to keepalived: router_id, script_user']);
  // keepalived's view (any other config id): no lvs_sync_daemon
  assert.equal(load(GOLDEN, 'd1').vrrp.syncDaemon, null);
});

test('the pair config\'s method: lb_kind NAT by default, DR and TUN (IP-in-IP) when asked, servers on the given port', () => {
  const method = (m?: 'nat' | 'dr' | 'tun', rport = 8080) => {
    const c = load(pairKeepalivedConf({ ...GOLDEN_OPTIONS, ...(m ? { method: m } : {}), rport }));
    return [c.services[0]!.method.fwd, c.services[0]!.method.tunType, c.services[0]!.realServers.map((r) => r.port)];
  };
  assert.deepEqual(method(), [Fwd.MASQ, TunType.IPIP, [8080, 8080]]);
  assert.deepEqual(method('nat'), [Fwd.MASQ, TunType.IPIP, [8080, 8080]]);
  assert.deepEqual(method('dr', 80), [Fwd.DROUTE, TunType.IPIP, [80, 80]]);
  assert.deepEqual(method('tun', 80), [Fwd.TUNNEL, TunType.IPIP, [80, 80]]);
  assert.match(pairKeepalivedConf({ ...GOLDEN_OPTIONS, method: 'dr' }), /\n {2}lb_kind DR\n/);
});

test('lvs_sync_daemon: keepalived\'s forms, defaults and ranges', () => {
  const sd = (line: string) => {
    const { pos: _, ...d } = load(GLOBAL(line)).vrrp.syncDaemon!;
    return d;
  };
  assert.deepEqual(sd('@ulvs lvs_sync_daemon i0 VI_INT'), { interface: 'i0', instance: 'VI_INT', syncId: 52, port: 8848, ttl: 1, group: '224.0.0.81', conditional: true }, 'sync id = the instance\'s VRID');
  assert.deepEqual(sd('@ulvs lvs_sync_daemon i0 inst VI_INT id 0 maxlen 1472 port 8849 ttl 255 group 239.1.2.3'), { interface: 'i0', instance: 'VI_INT', syncId: 0, maxlen: 1472, port: 8849, ttl: 255, group: '239.1.2.3', conditional: true });
  assert.deepEqual(sd('@ulvs lvs_sync_daemon i0 VI_INT 7'), { interface: 'i0', instance: 'VI_INT', syncId: 7, port: 8848, ttl: 1, group: '224.0.0.81', conditional: true }, 'the deprecated bare sync id');
  assert.deepEqual(sd('@ulvs lvs_sync_daemon i0'), { interface: 'i0', syncId: 0, port: 8848, ttl: 1, group: '224.0.0.81', conditional: true }, 'no instance: sync id 0, both roles');
  const c = load(GLOBAL('lvs_sync_daemon i0 VI_INT'));
  assert.equal(c.vrrp.syncDaemon!.conditional, false);
  assert.ok(c.warnings.some((w) => /k\.conf:3:3: lvs_sync_daemon without @ulvs is read by keepalived too/.test(w)), c.warnings.join('\n'));
});

test('malformed VRRP configuration: a clear error with file:line:col, nothing loaded', () => {
  const cases: [string, RegExp][] = [
    [GLOBAL('@ulvs lvs_sync_daemon'), /k\.conf:3:9: lvs_sync_daemon: needs an interface/],
    [GLOBAL('@ulvs lvs_sync_daemon averyveryverylongif VI_INT'), /k\.conf:3:9: lvs_sync_daemon: interface name "averyveryverylongif" is longer than 15 characters/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_NONE'), /k\.conf:3:9: lvs_sync_daemon: no vrrp_instance VI_NONE/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_INT id 256'), /k\.conf:3:9: lvs_sync_daemon: id "256" is not an integer in 0\.\.255/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_INT id'), /lvs_sync_daemon: id needs a value/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_INT maxlen 0'), /maxlen "0" is not an integer in 1\.\.65507/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_INT maxlen 65508'), /maxlen "65508" is not an integer in 1\.\.65507/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_INT port 0'), /port "0" is not an integer in 1\.\.65535/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_INT ttl 0'), /ttl "0" is not an integer in 1\.\.255/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_INT ttl 256'), /ttl "256" is not an integer in 1\.\.255/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_INT group 192.0.2.1'), /group 192\.0\.2\.1 is not a multicast address/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_INT group ff02::1'), /group "ff02::1" is not an IPv4 address/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_INT bogus 1'), /lvs_sync_daemon: unknown option "bogus"/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 inst VI_INT inst VI_INT'), /the instance is given twice/],
    [GLOBAL('@ulvs lvs_sync_daemon i0 VI_INT\n  @ulvs lvs_sync_daemon i0 VI_INT'), /k\.conf:4:9: lvs_sync_daemon is given twice \(first at line 3\)/],
    ['global_defs {\n  @ulvs lvs_sync_daemon i0 VI_INT\n}\nvrrp_instance VI_INT {\n  interface i0\n  virtual_router_id 52\n}\n', /k\.conf:2:9: lvs_sync_daemon follows a VRRP instance, but .* add `notify_fifo PATH`/],
    ['global_defs {\n  notify_fifo run/f\n}\n', /k\.conf:2:3: notify_fifo: "run\/f" is not an absolute path/],
    ['vrrp_instance VI_1 {\n  virtual_router_id 1\n}\n', /k\.conf:1:1: vrrp_instance VI_1: interface is missing/],
    ['vrrp_instance VI_1 {\n  interface o0\n}\n', /k\.conf:1:1: vrrp_instance VI_1: virtual_router_id is missing/],
    ['vrrp_instance VI_1 {\n  interface o0\n  virtual_router_id 0\n}\n', /k\.conf:3:3: virtual_router_id: "0" is not an integer in 1\.\.255/],
    ['vrrp_instance VI_1 {\n  interface o0\n  virtual_router_id 1\n  priority 256\n}\n', /k\.conf:4:3: priority: "256" is not an integer in 1\.\.255/],
    ['vrrp_instance VI_1 {\n  interface o0\n  virtual_router_id 1\n  state PRIMARY\n}\n', /k\.conf:4:3: state: "PRIMARY" is MASTER or BACKUP/],
    ['vrrp_instance VI_1 {\n  interface o0\n  virtual_router_id 1\n  virtual_ipaddress {\n    203.0.113.300/32\n  }\n}\n', /k\.conf:5:5: virtual_ipaddress: "203\.0\.113\.300\/32" is not ADDR or ADDR\/PREFIX/],
    ['vrrp_instance VI_1 {\n  interface o0\n  virtual_router_id 1\n  lvs_sync_daemon_interface i0\n}\n', /k\.conf:4:3: lvs_sync_daemon_interface is the deprecated form/],
    ['vrrp_instance VI_1 {\n  interface o0\n  virtual_router_id 1\n}\nvrrp_instance VI_1 {\n  interface o0\n  virtual_router_id 2\n}\n', /k\.conf:5:1: vrrp_instance VI_1 is defined twice/],
    ['vrrp_sync_group G {\n  group {\n    VI_X\n  }\n}\n', /k\.conf:1:1: vrrp_sync_group G: no vrrp_instance VI_X/],
    ['vrrp_sync_group G {\n}\n', /k\.conf:1:1: vrrp_sync_group G: group \{ INSTANCE \.\.\. \} is missing/],
    ['vrrp_instance A {\n interface o0\n virtual_router_id 1\n}\nvrrp_sync_group G {\n group { A }\n}\nvrrp_sync_group H {\n group { A }\n}\n', /vrrp_instance A is in two sync groups \(G, H\)/],
  ];
  for (const [text, err] of cases) assert.throws(() => load(text), err, text);
});

test('a tracked script or process that is not defined: a warning (keepalived ignores the line)', () => {
  const c = load('vrrp_instance VI_1 {\n  interface o0\n  virtual_router_id 1\n  nopreempt\n  garp_master_delay 1\n  track_script {\n    NOPE\n  }\n  track_process {\n    NOPE2\n  }\n}\n');
  assert.deepEqual(c.warnings, [
    '/k.conf:1:1: vrrp_instance VI_1: left to keepalived: garp_master_delay',
    '/k.conf:1:1: vrrp_instance VI_1: track_script NOPE: no vrrp_script of that name (keepalived ignores it)',
    '/k.conf:1:1: vrrp_instance VI_1: track_process NOPE2: no vrrp_track_process of that name (keepalived ignores it)',
    '/k.conf: vrrp instances without notify_fifo in global_defs: ulvsd does not follow their states',
  ]);
  assert.equal(c.vrrp.instances[0]!.nopreempt, true);
});

const keepalived = spawnSync('keepalived', ['--version']).status === 0;

test('the golden config passes keepalived -t (keepalived 2.2.7 reads the same file)', { skip: keepalived ? false : 'keepalived is not installed' }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'h6-vrrp-'));
  try {
    const file = join(dir, 'keepalived.conf');
    const report = (text: string) => {
      writeFileSync(file, text);
      const r = spawnSync('keepalived', ['-t', '-l', '-n', '-i', 'd1', '-f', file, '-p', join(dir, 'p'), '-r', join(dir, 'r')], { encoding: 'utf8', timeout: 20_000 });
      assert.ok(r.status === 0 || r.status === 5, `exit status ${r.status}`);
      // outside the directors' namespaces o0 and i0 do not exist: those warnings (exit status 5) are expected
      return `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.trim() !== '' && !/WARNING - interface (o0|i0) for .* doesn't exist|^Non-existent interface specified in configuration$/.test(l));
    };
    assert.deepEqual(report(GOLDEN), [], 'keepalived skips the @ulvs line and knows every keyword');
    // control: the same check sees a keyword keepalived does not know
    assert.equal(report(`${GOLDEN}bogus_keyword_h6\n`).filter((l) => /Unknown keyword 'bogus_keyword_h6'/.test(l)).length > 0, true);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
