/** The benchmark report: medians, ratios, bars and the chart's scale. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { barChartSvg, exactVsUlvs, fastPathBypassed, figuresOf, median, renderReport } from './report.js';

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.ok(Number.isNaN(median([])));
});

test('medians with their spread, paired ratios, bars on the median paired ratio, n/a for a missing set-up', () => {
  const samples = {
    'single_stream_bps/nft': [18e9, 10e9, 17e9],
    'single_stream_bps/ulvs': [17.1e9, 10.5e9, 16e9],
    'single_stream_bps/haproxy': [9e9, 9e9, 9e9],
    'http_conns_per_s/nft': [20000, 20000, 18000],
    'http_conns_per_s/haproxy': [8000, 8000, 8000],
    'http_conns_per_s/ulvs': [23000, 21000, 20000],
    'udp_64b_pps/nft': [400000, 400000, 400000],
    'udp_64b_pps/ulvs': [300000, null, 500000],
    'latency_p99_ms/nft': [2, 2, 2],
    'latency_p99_ms/ulvs': [1.8, 2.2, 1.9],
  };
  const { summary, markdown } = renderReport(figuresOf(samples), { date: 'd', node: 'v20', rounds: 3, seconds: 5, samples, orders: [['nft', 'ulvs'], ['ulvs', 'nft'], ['nft', 'ulvs']] });
  // medians: ulvs 16e9 / nft 17e9 = 0.941; paired: 0.95, 1.05, 0.941 -> median 0.95
  assert.equal(summary['single_stream_bps_ratio_ulvs_nft'], 0.941);
  assert.deepEqual(summary['single_stream_bps_paired_ulvs_nft'], { median: 0.95, min: 0.941, max: 1.05, rounds: 3 });
  assert.deepEqual(summary['single_stream_bps_ulvs_range'], [10.5e9, 17.1e9]);
  assert.equal(summary['udp_64b_pps_ratio_ulvs_haproxy'], null);
  assert.deepEqual(summary['udp_64b_pps_paired_ulvs_nft'], { median: 1, min: 0.75, max: 1.25, rounds: 2 }, 'the round without a ulvs figure is left out');
  const bars = summary['bars'] as { bar: string; met: boolean; ratio?: number; rounds_met?: number; rounds?: number }[];
  const bar = (name: string) => bars.find((b) => b.bar === name)!;
  assert.equal(bar('single_stream_bps ulvs/nft >= 1').met, false);
  assert.equal(bar('single_stream_bps ulvs/nft >= 1').rounds_met, 1);
  // the control: the ratio of the medians is 21,000 / 20,000 = 1.05, which would not meet the bar
  assert.equal(bar('http_conns_per_s ulvs/nft >= 1.1').met, true, 'paired 1.15, 1.05, 1.111: median 1.111');
  assert.equal(bar('http_conns_per_s ulvs/nft >= 1.1').rounds_met, 2);
  assert.equal(bar('http_conns_per_s ulvs/haproxy >= 1.5').met, true);
  assert.equal(bar('udp_64b_pps ulvs/nft >= 1').met, true, 'median of 0.75 and 1.25 is 1');
  assert.equal(bar('latency_p99_ms ulvs/nft <= 1').met, true, 'paired 0.9, 1.1, 0.95');
  assert.equal(bar('four_streams_bps ulvs/nft >= 1').met, false, 'a bar without figures is not met');
  assert.equal(bar('cpu_s_per_1000_conns ulvs/nft <= 1').met, false);
  assert.ok(!bars.some((b) => b.bar.includes('ulvs-exact')), 'no ulvs-exact bars when it did not run');
  assert.match(markdown, /\| TCP throughput, 1 stream \(Gbit\/s\) \| 17\.00 \(10\.00-18\.00\) \| 9\.00 \(9\.00-9\.00\) \| 16\.00 \(10\.50-17\.10\) \| 0\.95 \(0\.941-1\.05\) \| 1\.778 \(1\.167-1\.9\) \|/);
  assert.match(markdown, /not met\*\*: TCP throughput, 1 stream, ulvs\/nft = 0\.95 \(rounds 0\.941-1\.05; 1 of 3 rounds met it\), wanted >= 1/);
  assert.match(markdown, /Order of the set-ups per round: 1: nft, ulvs; 2: ulvs, nft; 3: nft, ulvs\./);
  assert.match(markdown, /\| udp_64b_pps\/ulvs \| 300,000, -, 500,000 \|/);
});

test('ulvs-exact: its own bars, and against ulvs "slower" only when every round says so', () => {
  const samples = {
    'four_streams_bps/nft': [10, 10, 10],
    'four_streams_bps/ulvs': [10, 10, 10],
    'four_streams_bps/ulvs-exact': [9, 9.9, 9.5],
    'latency_p99_ms/ulvs': [1, 1, 1],
    'latency_p99_ms/ulvs-exact': [0.9, 1.1, 0.8],
  };
  assert.equal(exactVsUlvs('four_streams_bps', samples).verdict, 'slower');
  assert.equal(exactVsUlvs('four_streams_bps', samples).median, 0.95);
  assert.equal(exactVsUlvs('latency_p99_ms', samples).verdict, 'no consistent difference');
  assert.equal(exactVsUlvs('latency_p99_ms', { ...samples, 'latency_p99_ms/ulvs-exact': [0.9, 0.9, 0.9] }).verdict, 'faster', 'lower is better for latency');
  assert.equal(exactVsUlvs('udp_64b_pps', samples).verdict, 'n/a');
  const { summary, markdown } = renderReport(figuresOf(samples), { date: 'd', node: 'v20', rounds: 3, seconds: 5, samples, exactNote: 'ran as ulvs: refused' });
  const bars = summary['bars'] as { bar: string; met: boolean }[];
  assert.equal(bars.find((b) => b.bar === 'four_streams_bps ulvs-exact/nft >= 1')?.met, false);
  assert.equal(bars.find((b) => b.bar === 'four_streams_bps ulvs/nft >= 1')?.met, true);
  assert.match(markdown, /\| TCP throughput, 4 streams \| 0\.95 \(0\.9-0\.99\) \| 3 \| \*\*slower\*\* \|/);
  assert.match(markdown, /ulvs-exact: ran as ulvs: refused/);
  assert.doesNotMatch(markdown, /against the earlier build/, 'no ulvs-base section when it did not run');
});

test('ulvs-base (--base-ulvsd): the exact path paired against the earlier build, its own section and summary', () => {
  const samples = {
    'http_conns_per_s/ulvs': [12, 12, 12],
    'http_conns_per_s/ulvs-exact': [9, 9.3, 9.6],
    'http_conns_per_s/ulvs-base': [10, 10, 10],
  };
  assert.equal(exactVsUlvs('http_conns_per_s', samples, 'ulvs-base').verdict, 'slower');
  const { summary, markdown } = renderReport(figuresOf(samples), { date: 'd', node: 'v20', rounds: 3, seconds: 5, samples });
  assert.equal((summary['http_conns_per_s_paired_exact_base'] as { median: number }).median, 0.93);
  assert.match(markdown, /## The exact path against the earlier build[^]*\| 0\.93 \(0\.9-0\.96\) \| 3 \| \*\*slower\*\* \|/);
  assert.match(barChartSvg('http_conns_per_s', figuresOf(samples)['http_conns_per_s']!), /ulvs of --base-ulvsd/);
});

test('the chart scales bars to the largest figure and says n/a where there is none', () => {
  const svg = barChartSvg('udp_64b_pps', { none: 100, nft: 50, ulvs: 25 });
  const widths = [...svg.matchAll(/<rect x="210" y="\d+" width="([\d.]+)"/g)].map((m) => Number(m[1]));
  assert.deepEqual(widths, [580, 290, 145]);
  assert.equal((svg.match(/>n\/a</g) ?? []).length, 2, 'haproxy and ulvs-exact have no figure');
  assert.match(svg, />n\/a</);
});

test('memory line and summary fields', () => {
  const { summary, markdown } = renderReport({}, { date: 'd', node: 'v20', rounds: 0, seconds: 5, samples: {}, memory: { connections: 1_000_000, rss_before: 100 * 2 ** 20, rss_after: 150 * 2 ** 20 } });
  assert.equal(summary['ulvs_rss_mib_with_connections'], 150);
  assert.equal(summary['ulvs_rss_growth_bytes_per_connection'], 52.4);
  assert.match(markdown, /1,000,000 tracked connections, resident 150 MiB/);
});

test('a stream test whose bulk went through the TUN is called out; one on the fast path is not', () => {
  const samples = { 'tun_pkts_per_gb/ulvs': [12, 18000, 9], 'tun_pkts_per_gb_4_streams/ulvs-exact': [20, 30, 1001], 'four_streams_bps/ulvs': [1, 1, 1] };
  assert.deepEqual(fastPathBypassed(samples), ['ulvs round 2 (1 stream, 18,000/GB)', 'ulvs-exact round 3 (4 streams, 1,001/GB)']);
  const { markdown, summary } = renderReport(figuresOf(samples), { date: 'd', node: 'v20', rounds: 3, seconds: 5, samples });
  assert.match(markdown, /did not carry the bulk traffic\*\* \(over 1,000 packets per GB through ulvsd's TUN\) in: ulvs round 2/);
  assert.equal((summary['fast_path_bypassed'] as string[]).length, 2);
  const clean = renderReport(figuresOf({ 'tun_pkts_per_gb/ulvs': [12, 1000] }), { date: 'd', node: 'v20', rounds: 2, seconds: 5, samples: { 'tun_pkts_per_gb/ulvs': [12, 1000] } });
  assert.doesNotMatch(clean.markdown, /did not carry/, '1,000 per GB is still the fast path');
});

test("ulvsd's lines about an unavailable kernel part are shown; none, no line", () => {
  const w = 'kernel fast path unavailable, every packet goes through user space: EPERM';
  const { markdown, summary } = renderReport({}, { date: 'd', node: 'v20', rounds: 1, seconds: 5, samples: {}, ulvsWarnings: [w] });
  assert.match(markdown, /\*\*ulvsd said a kernel part was unavailable\*\*: "kernel fast path unavailable, every packet/);
  assert.deepEqual(summary['ulvsd_warnings'], [w]);
  assert.doesNotMatch(renderReport({}, { date: 'd', node: 'v20', rounds: 1, seconds: 5, samples: {} }).markdown, /kernel part/);
});

test('the machine line: CPU, kernel, mitigations, and a warning when it was busy before the run', () => {
  const machine = { cpu: 'AMD EPYC (family 26, model 2)', cpus: 2, kernel: '6.18', mitigations: { spectre_v2: 'Mitigation: Retpolines' }, busyBefore: 0.95, busySeconds: 2 };
  const busy = renderReport({}, { date: 'd', node: 'v20', rounds: 1, seconds: 5, samples: {}, machine });
  assert.match(busy.markdown, /Machine: AMD EPYC \(family 26, model 2\), 2 CPUs, kernel 6\.18; mitigations: spectre_v2: Mitigation: Retpolines\. Busy before the run \(other work; 2 s\): 95 % — \*\*the machine was not idle/);
  assert.equal((busy.summary['machine'] as { busyBefore: number }).busyBefore, 0.95);
  const idle = renderReport({}, { date: 'd', node: 'v20', rounds: 1, seconds: 5, samples: {}, machine: { ...machine, busyBefore: 0.03 } });
  assert.match(idle.markdown, /Busy before the run \(other work; 2 s\): 3 %\./);
  assert.doesNotMatch(idle.markdown, /not idle/);
});
