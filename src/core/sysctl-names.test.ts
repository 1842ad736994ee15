/** The IPVS names of the engine's sysctls: every name's accepted and refused values (the
 *  kernel's checks, ip_vs_ctl.c), all or nothing, the GET form read back by PUT. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpvsError } from './errors.js';
import { defaultSysctls } from './sysctl.js';
import { applySysctls, ipvsSysctls, IPVS_SYSCTL_NAMES, parseSysctlAssignment, parseSysctls, parseSysctlValue } from './sysctl-names.js';

const refused = (name: string, v: unknown, msg: RegExp) =>
  assert.throws(() => parseSysctlValue(name, v), (e: unknown) => e instanceof IpvsError && e.code === 'EINVAL' && msg.test(e.message), `${name}=${JSON.stringify(v)}`);

test('the defaults under IPVS names (ipvs-sysctl.rst)', () => {
  assert.deepEqual(ipvsSysctls(defaultSysctls()), {
    amemthresh: 1024,
    am_droprate: 10,
    drop_entry: 0,
    drop_packet: 0,
    conn_reuse_mode: 1,
    expire_nodest_conn: 0,
    sloppy_tcp: 0,
    expire_quiescent_template: 0,
    sync_threshold: '3 50',
    sync_refresh_period: 0,
    sync_retries: 0,
    sync_version: 1,
    sync_persist_mode: 0,
    sync_ports: 1,
    sync_qlen_max: 4096,
    sync_sock_size: 0,
    secure_tcp: 0,
    lblc_expiration: 86400,
    lblcr_expiration: 86400,
    backup_only: 0,
    evict_embryonic: 1,
    syn_cookies: 0,
    kernel_setup: 0,
  });
});

test('booleans: 0 or 1, as a number or its text', () => {
  const keys = { expire_nodest_conn: 'expireNodestConn', sloppy_tcp: 'sloppyTcp', expire_quiescent_template: 'expireQuiescentTemplate', sync_persist_mode: 'syncPersistMode', backup_only: 'backupOnly', evict_embryonic: 'evictEmbryonic' };
  for (const [name, key] of Object.entries(keys)) {
    assert.deepEqual(parseSysctlValue(name, 1), { [key]: true });
    assert.deepEqual(parseSysctlValue(name, '0'), { [key]: false });
    refused(name, 2, new RegExp(`^sysctl ${name}: is 0 or 1, not 2$`));
    refused(name, -1, /is 0 or 1/);
    refused(name, true, /wants an integer, not true/);
    refused(name, '1.5', /wants an integer/);
  }
});

test('sync_threshold "T P": T, P >= 0, T < P unless P is 0 (proc_do_sync_threshold)', () => {
  assert.deepEqual(parseSysctlValue('sync_threshold', '3 50'), { syncThreshold: 3, syncPeriod: 50 });
  assert.deepEqual(parseSysctlValue('sync_threshold', '3\t0'), { syncThreshold: 3, syncPeriod: 0 });
  assert.deepEqual(parseSysctlValue('sync_threshold', '0,1'), { syncThreshold: 0, syncPeriod: 1 });
  assert.deepEqual(parseSysctlValue('sync_threshold', [7, 0]), { syncThreshold: 7, syncPeriod: 0 });
  assert.deepEqual(parseSysctlValue('sync_threshold', '0 0'), { syncThreshold: 0, syncPeriod: 0 });
  refused('sync_threshold', '50 50', /threshold is below the period/);
  refused('sync_threshold', '51 50', /threshold is below the period/);
  refused('sync_threshold', '-1 50', />= 0/);
  refused('sync_threshold', '3 -1', />= 0/);
  refused('sync_threshold', '3', /two integers/);
  refused('sync_threshold', '3 50 7', /two integers/);
  refused('sync_threshold', 3, /wants "T P"/);
  refused('sync_threshold', 'a b', /wants an integer/);
});

test('sync_version 0|1, sync_retries 0..3, seconds 0..2147483, defence modes 0..3, conn_reuse_mode any int', () => {
  assert.deepEqual(parseSysctlValue('sync_version', 0), { syncVersion: 0 });
  refused('sync_version', 2, /^sysctl sync_version: is 0\.\.1, not 2$/);
  for (let r = 0; r <= 3; r++) assert.deepEqual(parseSysctlValue('sync_retries', r), { syncRetries: r });
  refused('sync_retries', 4, /is 0\.\.3, not 4/);
  refused('sync_retries', -1, /is 0\.\.3/);
  for (const [name, key] of Object.entries({ sync_refresh_period: 'syncRefreshPeriod', lblc_expiration: 'lblcExpiration', lblcr_expiration: 'lblcrExpiration' })) {
    assert.deepEqual(parseSysctlValue(name, 10), { [key]: 10 });
    assert.deepEqual(parseSysctlValue(name, '2147483'), { [key]: 2147483 });
    refused(name, 2147484, /0\.\.2147483 seconds/);
    refused(name, -5, /0\.\.2147483 seconds/);
  }
  for (const [name, key] of Object.entries({ secure_tcp: 'secureTcp', drop_entry: 'dropEntry', drop_packet: 'dropPacket' })) {
    for (let m = 0; m <= 3; m++) assert.deepEqual(parseSysctlValue(name, m), { [key]: m });
    refused(name, 4, /is 0\.\.3, not 4/);
    refused(name, -1, /is 0\.\.3/);
  }
  assert.deepEqual(parseSysctlValue('amemthresh', '0'), { amemthresh: 0 });
  assert.deepEqual(parseSysctlValue('am_droprate', 2147483647), { amDroprate: 2147483647 });
  refused('amemthresh', -1, /is 0\.\.2147483647 pages, not -1/);
  refused('am_droprate', -3, /is 0\.\.2147483647/);
  assert.deepEqual(parseSysctlValue('conn_reuse_mode', 2), { connReuseMode: 2 });
  assert.deepEqual(parseSysctlValue('conn_reuse_mode', 0), { connReuseMode: 0 });
  refused('conn_reuse_mode', 2 ** 31, /wants an integer/);
});

test('the sync daemon\'s: sync_ports a power of 2 (proc_do_sync_ports), sync_qlen_max an unsigned long (proc_doulongvec_minmax), sync_sock_size any int (proc_dointvec)', () => {
  for (const p of [1, 2, 4, 64, 1024, 2 ** 30]) assert.deepEqual(parseSysctlValue('sync_ports', p), { syncPorts: p });
  assert.deepEqual(parseSysctlValue('sync_ports', ' 8 '), { syncPorts: 8 });
  for (const p of [0, -1, 3, 6, 100, 2 ** 31 - 1]) refused('sync_ports', p, new RegExp(`^sysctl sync_ports: is a power of 2 \\(1, 2, 4, \\.\\.\\.\\), not ${p}$`));
  refused('sync_ports', 2 ** 31, /wants an integer/);
  for (const q of [0, 1, 4096, 2 ** 40]) assert.deepEqual(parseSysctlValue('sync_qlen_max', q), { syncQlenMax: q });
  assert.deepEqual(parseSysctlValue('sync_qlen_max', '123456789012'), { syncQlenMax: 123456789012 });
  refused('sync_qlen_max', -1, /^sysctl sync_qlen_max: is 0\.\.9007199254740991, not -1$/);
  refused('sync_qlen_max', 2 ** 53, /is 0\.\.9007199254740991/);
  refused('sync_qlen_max', '1e3', /wants an integer/);
  refused('sync_qlen_max', 1.5, /wants an integer/);
  for (const z of [0, -5, 65536, 2 ** 31 - 1]) assert.deepEqual(parseSysctlValue('sync_sock_size', z), { syncSockSize: z });
  refused('sync_sock_size', 2 ** 31, /wants an integer/);
  refused('sync_sock_size', 'big', /wants an integer/);
});

test('unknown names, the kernel\'s ones ulvs does not carry included, are refused naming them', () => {
  for (const n of ['cache_bypass', 'nat_icmp_send', 'sync_period', 'nonsense', '__proto__', 'constructor']) refused(n, 1, new RegExp(`^unknown sysctl "${n}" \\(ulvs has: amemthresh, am_droprate, drop_entry, drop_packet, conn_reuse_mode, `));
});

test('all or nothing: one bad value refuses the whole set; the GET form is accepted back', () => {
  assert.throws(() => parseSysctls({ sync_refresh_period: 10, sync_retries: 9 }), /sync_retries/);
  assert.throws(() => parseSysctls({ sync_refresh_period: 10, nope: 1 }), /unknown sysctl "nope"/);
  const s = defaultSysctls();
  const changed = parseSysctls({ sync_refresh_period: 10, sync_threshold: '3 0', secure_tcp: 3, drop_entry: 2, amemthresh: 64 });
  applySysctls(s, changed);
  assert.deepEqual(parseSysctls(ipvsSysctls(s)), { ...s });
  assert.equal(IPVS_SYSCTL_NAMES.length, Object.keys(ipvsSysctls(s)).length);
});

test('applySysctls checks the whole result and changes nothing if refused; in place otherwise', () => {
  const s = defaultSysctls();
  const same = s;
  assert.throws(() => applySysctls(s, { syncRefreshPeriod: 10, syncThreshold: 60 }), /sync_threshold: the threshold is below the period/);
  assert.deepEqual(s, defaultSysctls());
  applySysctls(s, { syncRefreshPeriod: 10, syncPeriod: 0 });
  assert.equal(same.syncRefreshPeriod, 10);
  assert.equal(same.syncPeriod, 0);
});

test('name=value assignments', () => {
  assert.deepEqual(parseSysctlAssignment('sync_threshold=3 0'), ['sync_threshold', '3 0']);
  assert.deepEqual(parseSysctlAssignment('net.ipv4.vs.sync_retries = 2'), ['sync_retries', '2']);
  assert.throws(() => parseSysctlAssignment('sync_retries'), /wants name=value/);
  assert.throws(() => parseSysctlAssignment('sync_retries=x'), /sync_retries: wants an integer/);
});

test("kernel_setup (ulvs's own): 0 or 1, default 0 (opt-in)", () => {
  assert.deepEqual(parseSysctlValue('kernel_setup', 0), { kernelSetup: 0 });
  assert.deepEqual(parseSysctlValue('kernel_setup', '1'), { kernelSetup: 1 });
  assert.deepEqual(parseSysctlAssignment('net.ipv4.vs.kernel_setup=0'), ['kernel_setup', '0']);
  refused('kernel_setup', 2, /^sysctl kernel_setup: is 0\.\.1, not 2$/);
  refused('kernel_setup', 'off', /wants an integer/);
});

test('syn_cookies (ulvs\'s own): 0, 1 or 2 (automatic)', () => {
  assert.deepEqual(parseSysctlValue('syn_cookies', 1), { synCookies: 1 });
  assert.deepEqual(parseSysctlValue('syn_cookies', '0'), { synCookies: 0 });
  assert.deepEqual(parseSysctlValue('syn_cookies', 2), { synCookies: 2 });
  refused('syn_cookies', 3, /^sysctl syn_cookies: is 0\.\.2, not 3$/);
  refused('syn_cookies', 'on', /wants an integer/);
});
