import { test } from 'node:test';
import assert from 'node:assert/strict';
import { floodMarkdown, summarise } from './flood-report.js';
import type { FloodMeasurement } from './flood-run.js';

const params = { preS: 3, floodS: 10, postS: 5, coverSources: true, maxFloodS: 60, floodRate: 0, floodIo: 'uring' as const, floodProcs: 1, probeRate: 20, probeTimeoutMs: 3000, streamMbps: 1000, shapes: [{ name: 'many', addrs: 128, sources: 1_000_000 }], ulvs_args: [], ulvs_sysctls: ['drop_entry=1'] };
const lf = (success: number) => ({ total: 200, answered: success * 200, success, prompt: success, p50_ms: 1, p99_ms: 5 });
function m(setup: 'ulvs' | 'nft', success: number, ratio: number, recovery: number | null): FloodMeasurement {
  return {
    setup,
    shape: 'many',
    flood: { sent: 1e6, seconds: 10, pps: 1e5, write_errors: 0, sources: 1e6, start_ms: 0, end_ms: 10_000 },
    legit: lf(success),
    legit_after: lf(1),
    stream: { before_bps: 1e9, during_bps: ratio * 1e9, ratio },
    normal_ms: 100,
    recovery_ms: recovery,
    memory: { rss_before: 1, rss_peak: 2, rss_after: 2, conntrack_peak: 0, ulvs_conns_peak: 5 },
    raw: { probes: [], intervals: [], stream_start: 0 },
  };
}

test('targets per set-up, ratios of ulvs to each peer, raw timelines left out of the figures', () => {
  const s = summarise({ many: { ulvs: m('ulvs', 0.5, 0.96, 1500), nft: m('nft', 1, 0.8, 0) } }, 'D', [1, 2, 3], params);
  assert.deepEqual(s.targets_met['many'], { ulvs: { legit: false, stream: true, recovery: false }, nft: { legit: true, stream: false, recovery: true } });
  assert.deepEqual(s.ratios['many'], { nft: { legit_success: 0.5, stream_ratio: 1.2 } });
  assert.equal('raw' in s.figures['many']!['ulvs']!, false);
  const md = floodMarkdown(s, 'npm run bench:flood');
  assert.match(md, /\| ulvs \| 100,000 \(1,000,000, 10 s\) \| 100\/200 = 50\.0 % \|/);
  assert.match(md, /--sysctl drop_entry=1/);
  assert.match(md, /yes\/\*\*no\*\*\/yes \|$/m); // nft: legit yes, stream no, recovery yes
  // recovery null: not within the window, and the target missed
  assert.equal(summarise({ many: { ulvs: m('ulvs', 1, 1, null) } }, 'D', [], params).targets_met['many']!['ulvs']!.recovery, false);
});
