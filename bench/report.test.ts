/** The benchmark report: medians, ratios, bars and the chart's scale. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barChartSvg, median, renderReport } from './report.js';

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('ratios ulvs/nft and ulvs/haproxy, bars met and not met, n/a for a missing set-up', () => {
  const { summary, markdown } = renderReport(
    {
      single_stream_bps: { none: 20e9, nft: 18e9, haproxy: 9e9, ulvs: 17.1e9 },
      http_conns_per_s: { none: 30000, nft: 20000, haproxy: 8000, ulvs: 12000 },
      udp_64b_pps: { none: 500000, nft: 400000, ulvs: 300000 },
      cpu_s_per_gb: { none: 0.1, nft: 0.12, haproxy: 0.3, ulvs: 0.2 },
      latency_p99_ms: { none: 1, nft: 2, haproxy: 4, ulvs: 3.2 },
    },
    { date: 'd', node: 'v20', rounds: 3, seconds: 5, samples: { 'single_stream_bps/ulvs': [17.1e9] } },
  );
  assert.equal(summary['single_stream_bps_ratio_ulvs_nft'], 0.95);
  assert.equal(summary['http_conns_per_s_ratio_ulvs_haproxy'], 1.5);
  assert.equal(summary['udp_64b_pps_ratio_ulvs_haproxy'], null);
  const bars = summary['bars'] as { bar: string; met: boolean }[];
  const met = Object.fromEntries(bars.map((b) => [b.bar, b.met]));
  assert.equal(met['single_stream_bps ulvs/nft >= 0.9'], true);
  assert.equal(met['http_conns_per_s ulvs/nft >= 0.9'], false);
  assert.equal(met['http_conns_per_s ulvs/haproxy >= 1.5'], true);
  assert.equal(met['four_streams_bps ulvs/nft >= 0.7'], false, 'a bar without figures is not met');
  assert.equal(met['cpu_s_per_gb better than haproxy'], true, 'lower is better for CPU');
  assert.equal(met['latency_p99_ms ulvs/nft <= 1.5'], false, '3.2 ms is 1.6 x nft');
  assert.match(markdown, /\| TCP throughput, 1 stream \(Gbit\/s\) \| 20\.00 \| 18\.00 \| 9\.00 \| 17\.10 \| 0\.95 \| 1\.9 \|/);
  assert.match(markdown, /UDP.*\| n\/a \|/);
});

test('the chart scales bars to the largest figure and says n/a where there is none', () => {
  const svg = barChartSvg('udp_64b_pps', { none: 100, nft: 50, ulvs: 25 });
  const widths = [...svg.matchAll(/<rect x="210" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.deepEqual(widths, [580, 290, 145]);
  assert.match(svg, />n\/a</);
});

test('memory line and summary fields', () => {
  const { summary, markdown } = renderReport({}, { date: 'd', node: 'v20', rounds: 0, seconds: 5, samples: {}, memory: { connections: 1_000_000, rss_before: 100 * 2 ** 20, rss_after: 150 * 2 ** 20 } });
  assert.equal(summary['ulvs_rss_mib_with_connections'], 150);
  assert.equal(summary['ulvs_rss_growth_bytes_per_connection'], 52.4);
  assert.match(markdown, /1,000,000 tracked connections, resident 150 MiB/);
});
