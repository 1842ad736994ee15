/** keepalived.conf: a table of configs with the expected model, warnings or error (file:line:col). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadKeepalived } from './config.js';
import { parseIPv4 as ip } from '../../wire/addr.js';

/** Write the files into a fresh directory and load its keepalived.conf. */
function load(files: Record<string, string>) {
  const dir = mkdtempSync(join(tmpdir(), 'ulvs-kconf-'));
  try {
    for (const [name, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      writeFileSync(join(dir, name), text);
    }
    return loadKeepalived(join(dir, 'keepalived.conf'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const FULL = `
! Configuration File for keepalived
global_defs {
   router_id LVS_1
}
vrrp_instance VI_1 {  # read by vrrp.ts; without notify_fifo, a warning
    state MASTER
    interface eth0
    virtual_router_id 51
    virtual_ipaddress { 203.0.113.10/24 }
}
virtual_server 203.0.113.10 80 {
    delay_loop 5
    lb_algo wrr                   # legacy alias
    lb_kind NAT
    protocol TCP
    persistence_timeout
    persistence_granularity 255.255.255.0
    quorum 3
    hysteresis 1
    quorum_up "/usr/bin/logger 'quorum up'"
    sorry_server 192.0.2.250 8080
    inhibit_on_failure
    connect_timeout 3
    retry 2
    ha_suspend
    real_server 192.0.2.11 8080 {
        weight 3
        uthreshold 100
        lthreshold 50
        notify_down "/bin/echo down"
        HTTP_GET {
            url {
              path /healthz
              status_code 200 300-399
            }
            url {
              path /build
              digest 4E5F1C0A9D3B2E7F6A8C1B0D2E3F4A5B
            }
            virtualhost www.example.com
        }
        TCP_CHECK {
            connect_port 9100
            connect_timeout 2
        }
    }
    real_server 192.0.2.12 8080 {
        MISC_CHECK {
            misc_path "/usr/local/bin/check 192.0.2.12 8080"
            misc_dynamic
        }
    }
}
`;

test('a full configuration: aliases, defaults, inheritance, checkers, skipped sections', () => {
  const c = load({ 'keepalived.conf': FULL });
  assert.equal(c.services.length, 1);
  const v = c.services[0]!;
  assert.deepEqual([v.proto, v.addr, v.port, v.scheduler, v.persistent, v.netmask, v.quorum, v.hysteresis, v.delayLoop], [6, ip('203.0.113.10'), 80, 'wrr', 360, ip('255.255.255.0'), 3, 1, 5]);
  assert.equal(v.quorumUp, "/usr/bin/logger 'quorum up'", 'outer quotes stripped, the inner ones are for the shell');
  assert.deepEqual(v.sorryServer, { addr: ip('192.0.2.250'), port: 8080 });
  const [a, b] = v.realServers;
  assert.deepEqual([a!.weight, a!.uThreshold, a!.lThreshold, a!.inhibitOnFailure, a!.notifyDown], [3, 100, 50, true, '/bin/echo down']);
  const [http, tcp] = a!.checkers;
  assert.deepEqual(http!.urls, [
    { path: '/healthz', statusCodes: [[200, 200], [300, 399]] },
    { path: '/build', digest: '4e5f1c0a9d3b2e7f6a8c1b0d2e3f4a5b', statusCodes: [[200, 299]] },
  ]);
  assert.deepEqual([http!.connectTimeout, http!.retry, http!.delayBeforeRetry, http!.delayLoop, http!.virtualhost], [3, 2, 3, 5, 'www.example.com'], 'inherited from virtual_server, HTTP default delay_before_retry 3');
  assert.deepEqual([tcp!.connectPort, tcp!.connectTimeout, tcp!.connectIp], [9100, 2, ip('192.0.2.11')]);
  const misc = b!.checkers[0]!;
  assert.deepEqual([b!.weight, misc.type, misc.miscPath, misc.miscDynamic, misc.retry, misc.miscTimeout], [1, 'MISC_CHECK', '/usr/local/bin/check 192.0.2.12 8080', true, 2, 5]);
  assert.equal(c.warnings.filter((w) => /global_defs: left to keepalived: router_id$/.test(w)).length, 1);
  assert.equal(c.warnings.filter((w) => /vrrp instances without notify_fifo in global_defs: ulvsd does not follow their states/.test(w)).length, 1);
  assert.deepEqual(c.vrrp.instances.map((v) => [v.name, v.interface, v.vrid, v.state, v.vips]), [['VI_1', 'eth0', 51, 'MASTER', [{ addr: '203.0.113.10/24' }]]]);
  assert.ok(c.warnings.some((w) => /keepalived\.conf:26:5: ha_suspend accepted and ignored/.test(w)), c.warnings.join('\n'));
});

test('includes (relative, glob, braces), groups, UDP, flags', () => {
  const c = load({
    'keepalived.conf': 'include conf.d/*.conf\ninclude extra/{a,b}.conf\n',
    'conf.d/10-web.conf': 'virtual_server_group WEB {\n  203.0.113.10 80\n  203.0.113.20-21 80\n}\nvirtual_server group WEB {\n lvs_sched sh\n sh-port\n real_server 192.0.2.11 8080 { weight 2 }\n}\n',
    'conf.d/20-dns.conf': "virtual_server 203.0.113.10 53 {\n protocol UDP\n ops\n lvs_sched rr\n real_server 192.0.2.21 5353 { DNS_CHECK { type A\n name 'health.example.' } }\n}\n",
    'extra/a.conf': '# empty\n',
    'extra/b.conf': 'global_defs { }\n',
  });
  assert.deepEqual(c.services.map((s) => `${s.proto}/${s.addr >>> 0}/${s.port}/${s.scheduler}/${s.schedFlags}`), [
    `6/${ip('203.0.113.10')}/80/sh/16`,
    `6/${ip('203.0.113.20')}/80/sh/16`,
    `6/${ip('203.0.113.21')}/80/sh/16`,
    `17/${ip('203.0.113.10')}/53/rr/0`,
  ]);
  assert.equal(c.services[3]!.ops, true);
  const dns = c.services[3]!.realServers[0]!.checkers[0]!;
  assert.deepEqual([dns.type, dns.dnsType, dns.dnsName, dns.retry, dns.delayBeforeRetry], ['DNS_CHECK', 'A', 'health.example.', 3, 60]);
  assert.equal(c.files.length, 5);
});

test('errors name the file, line and column; nothing is half-loaded', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n  lb_algo nosuch\n}\n' }, /keepalived\.conf:2:3: lb_algo: unknown scheduler "nosuch"/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n  lb_kind FOO\n}\n' }, /keepalived\.conf:2:3: lb_kind FOO: the method is NAT, DR or TUN/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n  lvs_method TUN type vxlan\n}\n' }, /keepalived\.conf:2:3: lvs_method TUN type vxlan: type is ipip, gue or gre/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n  lvs_method DR csum\n}\n' }, /keepalived\.conf:2:3: lvs_method DR csum: DR takes no options/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n  real_server 192.0.2.11 8080 {\n' }, /keepalived\.conf:2:31: block opened here is not closed/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n}\n}\n' }, /keepalived\.conf:3:1: unexpected '}'/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.300 80 {\n}\n' }, /keepalived\.conf:1:1: virtual_server: "203\.0\.113\.300" is not an IPv4 address/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n  quorum_up "unterminated\n}\n' }, /keepalived\.conf:2:13: unterminated double-quoted string/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n real_server 192.0.2.11 80 {\n  BFD_CHECK { }\n }\n}\n' }, /keepalived\.conf:3:3: BFD_CHECK is not supported by ulvs/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n sh-port\n lvs_sched sh\n}\n' }, /keepalived\.conf:2:2: sh-port needs lvs_sched sh on an earlier line/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 {\n lvs_sched rr\n}\n' }, /keepalived\.conf:1:1: the port may only be omitted for a persistent service/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n}\nvirtual_server 203.0.113.10 80 {\n}\n' }, /keepalived\.conf:3:1: this virtual server is defined twice/],
    [{ 'keepalived.conf': '@lb1 virtual_server 203.0.113.10 80 {\n}\n' }, /keepalived\.conf:2:1: unexpected '}'/], // the conditional drops the line, not the block
    [{ 'keepalived.conf': 'virtual_server $VIP 80 {\n}\n' }, /keepalived\.conf:1:1: virtual_server: "\$VIP" is not an IPv4 address/], // undefined: left as written, as keepalived does
    [{ 'keepalived.conf': '$VIP=203.0.113.300\nvirtual_server ${VIP} 80 {\n}\n' }, /keepalived\.conf:2:1: virtual_server: "203\.0\.113\.300" is not an IPv4 address/],
    [{ 'keepalived.conf': 'includer missing/*.conf\n' }, /keepalived\.conf:1:10: includer: nothing matches missing\/\*\.conf/],
    [{ 'keepalived.conf': 'include self.conf\n', 'self.conf': 'include keepalived.conf\n' }, /include loop/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n real_server 192.0.2.11 80 {\n  HTTP_GET { }\n }\n}\n' }, /keepalived\.conf:3:3: HTTP_GET needs at least one url/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n real_server 192.0.2.11 80 {\n  weight 70000\n }\n}\n' }, /keepalived\.conf:3:3: weight: "70000" is not an integer in 0\.\.65535/],
    [{ 'keepalived.conf': 'virtual_server group NOPE {\n}\n' }, /keepalived\.conf:1:1: virtual_server group NOPE: no virtual_server_group of that name/],
    [{ 'keepalived.conf': 'virtual_server 203.0.113.10 80 {\n protocol SCTP\n}\n' }, /protocol SCTP is not supported by ulvs/],
  ];
  for (const [files, err] of cases) assert.throws(() => load(files), err, `${JSON.stringify(files)}`);
});

test('a keyword named like an Object.prototype member is an unknown keyword, not a scheduler flag', () => {
  const cfg = loadKeepalived('/k.conf', () => 'virtual_server 203.0.113.10 80 {\n  toString\n  constructor\n}\n');
  assert.equal(cfg.services[0]!.schedFlags, 0);
  assert.deepEqual(cfg.warnings, ['/k.conf:2:3: unknown keyword toString in virtual_server, ignored', '/k.conf:3:3: unknown keyword constructor in virtual_server, ignored']);
});

test('lvs_method / lb_kind: NAT, DR, TUN with its tunnel options; a real server may override its virtual server', () => {
  const c = loadKeepalived('/k.conf', (p) =>
    p === '/k.conf'
      ? 'virtual_server 203.0.113.10 80 {\n lvs_method DR\n real_server 192.0.2.11 80 {\n }\n real_server 192.0.2.12 80 {\n  lvs_method TUN type gue port 6080 csum\n }\n real_server 192.0.2.13 80 {\n  lb_kind NAT\n }\n}\n'
      : '',
  );
  const v = c.services[0]!;
  assert.deepEqual(v.method, { fwd: 3, tunType: 0, tunPort: 0, tunFlags: 0 });
  assert.equal(v.realServers[0]!.method, undefined);
  assert.deepEqual(v.realServers[1]!.method, { fwd: 2, tunType: 1, tunPort: 6080, tunFlags: 1 });
  assert.deepEqual(v.realServers[2]!.method, { fwd: 0, tunType: 0, tunPort: 0, tunFlags: 0 });
});
