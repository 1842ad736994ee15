/**
 * Every sample configuration Debian's keepalived package ships (/usr/share/doc/keepalived/samples
 * and /etc/keepalived/keepalived.conf.sample) either loads — its virtual servers read, VRRP parts
 * followed or left to keepalived as usual, and `ulvsd -t` says 0 — or is refused with the named
 * reason of this short allow-list, and `ulvsd -t` says 4. A sample missing from the list that
 * is refused fails the test, and so does a listed one that loads (the list must shrink when
 * ulvs grows: the fwmark samples left it when firewall-mark services came, docs/fwmark.md).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadKeepalived } from '../src/control/keepalived/config.js';
import { configTest } from '../src/daemon/config-test.js';

/** sample -> why ulvs refuses it (matched against the error) */
const REFUSED: Record<string, RegExp> = {
  // IPv6 virtual and real servers: ulvs's data path is IPv4 only
  'keepalived.conf.IPv6': /IPv6 is not supported by ulvs/,
  // the pre-2.0 vrrp_sync_group syntax (members without `group { }`): keepalived 2.2.7 itself
  // reports its members as unknown keywords and runs without them; ulvs refuses the group
  'keepalived.conf.vrrp.lvs_syncd': /vrrp_sync_group VG1: group \{ INSTANCE \.\.\. \} is missing/,
};

/** what a loaded sample must contain (so a sample is not "loaded" by skipping its virtual servers) */
const CHECKERS: Record<string, string[]> = {
  'keepalived.conf.PING_CHECK': ['PING_CHECK'],
  'keepalived.conf.SMTP_CHECK': ['SMTP_CHECK'],
  'keepalived.conf.UDP_CHECK': ['UDP_CHECK'],
  'keepalived.conf.SSL_GET': ['SSL_GET'],
  'keepalived.conf.misc_check': ['MISC_CHECK'],
};

const DIR = '/usr/share/doc/keepalived/samples';
const samples = existsSync(DIR)
  ? [...readdirSync(DIR).filter((f) => f.startsWith('keepalived.conf')).map((f) => join(DIR, f)), ...(existsSync('/etc/keepalived/keepalived.conf.sample') ? ['/etc/keepalived/keepalived.conf.sample'] : [])]
  : [];

test("keepalived's sample configurations load, or are refused for a listed reason", { skip: samples.length ? false : `no keepalived samples in ${DIR}` }, () => {
  const seen = new Set<string>();
  for (const file of samples) {
    const name = file.slice(file.lastIndexOf('/') + 1);
    const refusal = file.startsWith(DIR) ? REFUSED[name] : undefined;
    if (file.startsWith(DIR)) seen.add(name);
    const t = configTest({ source: { kind: 'keepalived', file }, configId: 'ulvs', capture: 'tc', fastPath: 'tc' }, { dr: null, route: () => ({ kind: 'onlink', dev: 'eth0' }) });
    if (refusal) {
      assert.throws(() => loadKeepalived(file), refusal, `${name} is refused for its listed reason`);
      assert.equal(t.code, 4, `ulvsd -t ${name}: ${t.findings.join('\n')}`);
      continue;
    }
    const cfg = loadKeepalived(file); // throws: a refusal not on the list
    assert.equal(t.code, 0, `ulvsd -t ${name}: ${t.findings.join('\n')}`);
    for (const type of CHECKERS[name] ?? []) assert.ok(cfg.services.some((v) => v.realServers.some((r) => r.checkers.some((c) => c.type === type))), `${name} has a ${type}`);
    if (/HTTP_GET|SSL_GET|SMTP_CHECK|PING_CHECK|UDP_CHECK|misc_check|quorum|inhibit|virtualhost|status_code|sample$/.test(name)) assert.ok(cfg.services.length > 0, `${name} has virtual servers`);
  }
  for (const name of Object.keys(REFUSED)) assert.ok(seen.has(name), `listed sample ${name} exists`);
});

test('the conditional sample reads for each of its config ids', { skip: existsSync(join(DIR, 'keepalived.conf.conditional_conf')) ? false : 'no sample' }, () => {
  for (const id of ['high', 'low', 'ulvs']) {
    const cfg = loadKeepalived(join(DIR, 'keepalived.conf.conditional_conf'), undefined, id);
    assert.equal(cfg.vrrp.instances.length, 1, id);
  }
});
