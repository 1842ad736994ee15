import { test } from 'node:test';
import assert from 'node:assert/strict';
import { accountingText, parsePerfChildren, usPerConnection } from './perf-account.js';

const sample = `# Total Lost Samples: 0
#
# Samples: 7K of event 'cpu-clock:ppp'
# Event count (approx.): 16000000000
#
# Children      Self  Symbol
# ........  ........  ......
#
    50.00%     0.10%  [k] tun_get_user
    20.00%     1.00%  [k] ip_route_input_noref
     5.00%     5.00%  [.] K::TranslateNormalCall
     1.00%     1.00%  [k] ip_route_input_noref
`;

test('perf accounting: inclusive share x CPU time / connections', () => {
  const p = parsePerfChildren(sample);
  assert.equal(p.eventCount, 16e9);
  assert.equal(p.children.get('tun_get_user'), 50);
  assert.equal(p.children.get('ip_route_input_noref'), 20, 'the first (inclusive) line of a symbol counts');
  // 16 s of CPU over 100,000 connections = 160 us each; half of it below tun_get_user
  assert.equal(usPerConnection(p, 'tun_get_user', 100_000), 80);
  assert.equal(usPerConnection(p, 'nf_conntrack_in', 100_000), 0);
  assert.equal(usPerConnection(p, 'tun_get_user', 0), 0);
  const text = accountingText(p, 100_000);
  assert.match(text, /all CPU samples \(every core, idle included\)\s+160\.0/);
  assert.match(text, /\[ip_route_input_noref\]\s+32\.0/);
});
