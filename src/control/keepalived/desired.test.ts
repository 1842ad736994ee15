/** From configuration and health to rules: inhibit, dynamic weight, quorum with hysteresis, sorry server. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { desiredRules, omegaScripts, rsKey } from './desired.js';
import { loadKeepalived } from './config.js';
import type { ServerHealth } from '../../health/monitor.js';
import { formatRules } from '../rules.js';

const cfg = loadKeepalived('/k.conf', () => `
virtual_server 203.0.113.10 80 {
  lvs_sched rr
  quorum 3
  hysteresis 1
  sorry_server 192.0.2.250 8080
  real_server 192.0.2.11 8080 { weight 2 }
  real_server 192.0.2.12 8080 { weight 2
    inhibit_on_failure }
  real_server 192.0.2.13 8080 { weight 1 }
}`);
const v = cfg.services[0]!;
const keys = v.realServers.map((r) => rsKey(v, r));

test('dead servers leave (or get weight 0 with inhibit); quorum loss brings the sorry server; hysteresis', () => {
  const h = new Map<string, ServerHealth>();
  const q = new Map<string, boolean>();
  const run = () => desiredRules(cfg, (k) => h.get(k), q);
  const set = (i: number, alive: boolean, dynamicWeight?: number) => h.set(keys[i]!, { alive, reason: 'test', ...(dynamicWeight !== undefined ? { dynamicWeight } : {}) });
  let r = run();
  assert.equal(formatRules(r.rules), '-A -t 203.0.113.10:80 -s rr\n-a -t 203.0.113.10:80 -r 192.0.2.11:8080 -m -w 2\n-a -t 203.0.113.10:80 -r 192.0.2.12:8080 -m -w 2\n-a -t 203.0.113.10:80 -r 192.0.2.13:8080 -m -w 1\n');
  set(0, false); // alive weight 3: still >= quorum - hysteresis (2)
  set(1, false, undefined);
  r = run(); // alive weight 1 < 2: quorum lost -> sorry server alone
  assert.deepEqual(r.changes.map((c) => [c.up, c.weight]), [[false, 1]]);
  assert.equal(formatRules(r.rules), '-A -t 203.0.113.10:80 -s rr\n-a -t 203.0.113.10:80 -r 192.0.2.250:8080 -m -w 1\n');
  set(1, true); // alive weight 3 < quorum + hysteresis (4): still lost
  r = run();
  assert.deepEqual(r.changes, []);
  assert.match(formatRules(r.rules), /192\.0\.2\.250/);
  set(0, true); // 5 >= 4: gained
  r = run();
  assert.deepEqual(r.changes.map((c) => c.up), [true]);
  set(1, false); // 3 >= 2: kept; the inhibited server stays at weight 0
  set(2, true, 4); // dynamic weight
  r = run();
  assert.equal(formatRules(r.rules), '-A -t 203.0.113.10:80 -s rr\n-a -t 203.0.113.10:80 -r 192.0.2.11:8080 -m -w 2\n-a -t 203.0.113.10:80 -r 192.0.2.12:8080 -m -w 0\n-a -t 203.0.113.10:80 -r 192.0.2.13:8080 -m -w 4\n');
});

test('omega: at shutdown, notify_down of alive servers and quorum_down of services holding quorum; nothing without omega', () => {
  const conf = loadKeepalived('/o.conf', () => `
virtual_server 203.0.113.10 80 {
  omega
  quorum 2
  quorum_down "/bin/qdown a"
  real_server 192.0.2.11 8080 { notify_down "/bin/down 11" }
  real_server 192.0.2.12 8080 { notify_down "/bin/down 12" }
  real_server 192.0.2.13 8080 { weight 1 }
}
virtual_server 203.0.113.11 80 {
  quorum_down "/bin/qdown b"
  real_server 192.0.2.14 8080 { notify_down "/bin/down 14" }
}`);
  const a = conf.services[0]!;
  const h = new Map<string, ServerHealth>([[rsKey(a, a.realServers[1]!), { alive: false, reason: 'test' }]]);
  const q = new Map<string, boolean>();
  desiredRules(conf, (k) => h.get(k), q);
  assert.deepEqual(omegaScripts(conf, (k) => h.get(k), q), ['/bin/down 11', '/bin/qdown a']);
  h.set(rsKey(a, a.realServers[0]!), { alive: false, reason: 'test' });
  desiredRules(conf, (k) => h.get(k), q); // alive weight 1 < quorum 2: already down, no quorum_down at exit
  assert.deepEqual(omegaScripts(conf, (k) => h.get(k), q), []);
});
