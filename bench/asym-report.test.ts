/** The asymmetric benchmark's report (asym-report.ts): medians, both baselines' ratios, failures. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { asymFigures, asymMarkdown, asymRatios, asymSummary, type AsymResult } from './asym-report.js';

const result = (): AsymResult => ({
  date: '2026-12-01T00:00:00.000Z',
  rounds: 3,
  seconds: 5,
  requestBytes: 59,
  replyBytes: 2 ** 20,
  setups: ['ulvs', 'ulvs-dr', 'ulvs-tun', 'nft-dr'],
  samples: {
    gbps: { ulvs: [10, 12, 11], 'ulvs-dr': [13, 12, 14], 'nft-dr': [20, 22, 21] },
    director_cpu_s_per_gb: { ulvs: [0.3, 0.2, 0.25], 'ulvs-dr': [0.2, 0.2, 0.2], 'nft-dr': [0, 0, 0] },
    director_pkts_per_gb: { ulvs: [90000], 'ulvs-dr': [45000], 'nft-dr': [30000] },
  },
  path: { ulvs: [{ ulvsConns: 5, ulvsOutPkts: 7, decapsulated: null }] },
  failures: { 'ulvs-tun': ['round 1: not the claimed path: no bytes moved (wrk completed no request)'] },
  notes: [],
});

test('medians per set-up; ratios against ulvs NAT and against nft-dr; none against a zero or a missing figure', () => {
  const r = result();
  const f = asymFigures(r);
  assert.deepEqual(f.gbps, { ulvs: 11, 'ulvs-dr': 13, 'nft-dr': 21 });
  assert.equal(f.director_cpu_s_per_gb?.ulvs, 0.25);
  const q = asymRatios(r, f);
  assert.equal(q.ulvs?.['ulvs-dr']?.gbps, 13 / 11);
  assert.equal(q.ulvs?.['nft-dr']?.director_pkts_per_gb, 30000 / 90000);
  assert.equal(q.ulvs?.['nft-dr']?.director_cpu_s_per_gb, 0);
  assert.equal(q['nft-dr']?.ulvs?.gbps, 11 / 21);
  assert.equal(q['nft-dr']?.['ulvs-dr']?.director_cpu_s_per_gb, undefined, 'nft-dr has no process: no ratio against 0');
  assert.equal(q.ulvs?.['ulvs-tun'], undefined, 'failed set-up: no figures, no ratios');
  assert.equal(q.ulvs?.ulvs, undefined);
});

test('the page shows the failure, a dash for missing figures, the path counters; the summary carries the failures', () => {
  const r = result();
  const f = asymFigures(r);
  const q = asymRatios(r, f);
  const md = asymMarkdown(r, f, q);
  assert.match(md, /\| client throughput \(Gbit\/s\) \| 11\.00 \| 13\.00 \| — \| 21\.00 \|/);
  assert.match(md, /- ulvs TUN \(-i ipip\), direct return: round 1: not the claimed path: no bytes moved/);
  assert.match(md, /- ulvs NAT \(-m\): ulvsConns=5 ulvsOutPkts=7\n/);
  assert.match(md, /- ulvs TUN \(-i ipip\), direct return: no successful round/);
  const s = asymSummary(r, f, q);
  assert.deepEqual(s.failures, r.failures);
  assert.equal(JSON.parse(JSON.stringify(s)).ratios['nft-dr'].ulvs.gbps, 11 / 21);
});
