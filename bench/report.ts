/**
 * The side-by-side benchmark's report: medians with their spread over the rounds, paired ratios,
 * the issue's bars judged on them (bench/verdict.ts), a Markdown page and one bar chart (SVG
 * text) per metric. Pure: no I/O; bench/datapath.ts writes the files.
 */
import type { MachineInfo } from './machine-info.js';
import { BARS, judge, median, minMax, pairedRatios, type BarVerdict } from './verdict.js';

export { median };
export const SETUPS = ['none', 'nft', 'haproxy', 'ulvs', 'ulvs-exact', 'ulvs-base'] as const;
export type Setup = (typeof SETUPS)[number];
/** metric -> set-up -> median figure */
export type Figures = Record<string, Partial<Record<Setup, number>>>;

export const SETUP_NAMES: Record<Setup, string> = {
  none: 'no balancer (ceiling)',
  nft: 'nftables DNAT (kernel)',
  haproxy: 'HAProxy (TCP mode)',
  ulvs: 'ulvs',
  'ulvs-exact': 'ulvs, exact path (kernel_setup=0)',
  'ulvs-base': 'ulvs of --base-ulvsd (an earlier build, its defaults)',
};

interface MetricInfo {
  title: string;
  unit: string;
  /** the displayed value is figure / scale */
  scale: number;
  digits: number;
  higherIsBetter: boolean;
}
export const METRICS: Record<string, MetricInfo> = {
  single_stream_bps: { title: 'TCP throughput, 1 stream', unit: 'Gbit/s', scale: 1e9, digits: 2, higherIsBetter: true },
  four_streams_bps: { title: 'TCP throughput, 4 streams', unit: 'Gbit/s', scale: 1e9, digits: 2, higherIsBetter: true },
  http_conns_per_s: { title: 'HTTP connections per second (Connection: close), 1 client', unit: 'conn/s', scale: 1, digits: 0, higherIsBetter: true },
  http_conns_per_s_2_clients: { title: 'HTTP connections per second, 2 clients', unit: 'conn/s', scale: 1, digits: 0, higherIsBetter: true },
  latency_p50_ms: { title: 'HTTP latency p50 at 2,000 req/s, keep-alive', unit: 'ms', scale: 1, digits: 3, higherIsBetter: false },
  latency_p99_ms: { title: 'HTTP latency p99 at 2,000 req/s, keep-alive', unit: 'ms', scale: 1, digits: 3, higherIsBetter: false },
  udp_64b_pps: { title: 'UDP, 64-byte datagrams delivered per second', unit: 'pkt/s', scale: 1, digits: 0, higherIsBetter: true },
  cpu_s_per_gb: { title: 'CPU seconds of the whole machine per GB (1 stream)', unit: 's/GB', scale: 1, digits: 3, higherIsBetter: false },
  cpu_s_per_1000_conns: { title: 'CPU seconds of the whole machine per 1,000 HTTP connections', unit: 's', scale: 1, digits: 3, higherIsBetter: false },
  balancer_cpu_s_per_gb: { title: "Balancer process's CPU seconds per GB (1 stream)", unit: 's/GB', scale: 1, digits: 3, higherIsBetter: false },
  balancer_runq_wait_s_per_1000_conns: { title: "Balancer process's seconds waiting for a CPU per 1,000 HTTP connections", unit: 's', scale: 1, digits: 3, higherIsBetter: false },
  tun_pkts_per_gb: { title: 'Packets through ulvsd (its TUN) per GB, 1 stream', unit: 'pkt/GB', scale: 1, digits: 0, higherIsBetter: false },
  tun_pkts_per_gb_4_streams: { title: 'Packets through ulvsd (its TUN) per GB, 4 streams', unit: 'pkt/GB', scale: 1, digits: 0, higherIsBetter: false },
  balancer_cpu_s_per_1000_conns: { title: "Balancer process's CPU seconds per 1,000 HTTP connections", unit: 's', scale: 1, digits: 3, higherIsBetter: false },
};

const fmt = (metric: string, v: number | undefined) => {
  if (v === undefined || !Number.isFinite(v)) return 'n/a';
  const m = METRICS[metric];
  const x = m ? v / m.scale : v;
  return x.toLocaleString('en-US', { minimumFractionDigits: m?.digits ?? 2, maximumFractionDigits: m?.digits ?? 2 });
};
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined && b > 0 ? Number((a / b).toFixed(3)) : null);

export interface ReportMeta {
  date: string;
  node: string;
  rounds: number;
  seconds: number;
  /** "metric/set-up" -> one figure per round, index = round - 1 (null: none that round) */
  samples: Record<string, (number | null)[]>;
  /** the set-up order of each round (bench/verdict.ts roundOrder) */
  orders?: string[][];
  /** a note on how ulvs-exact ran (e.g. without its arguments, which this ulvsd refused) */
  exactNote?: string;
  /** the CPU, kernel, mitigations and load before the run (bench/machine-info.ts) */
  machine?: MachineInfo;
  /** ulvsd's log lines that said a kernel part was unavailable (bench/datapath-setups.ts) */
  ulvsWarnings?: string[];
  /** ulvsd's resident memory (bytes) before and after the flow flood, and what it tracked */
  memory?: { connections: number; rss_before: number; rss_after: number } | null;
}

/** Medians of the per-round samples: metric -> set-up -> median. */
export function figuresOf(samples: Readonly<Record<string, readonly (number | null)[]>>): Figures {
  const figures: Figures = {};
  for (const [k, xs] of Object.entries(samples)) {
    const [metric, setup] = k.split('/') as [string, Setup];
    const m = median(xs);
    if (Number.isFinite(m)) (figures[metric] ??= {})[setup] = m;
  }
  return figures;
}

/** Subjects the bars are judged for: ulvs and, when it ran, ulvs-exact. */
const SUBJECTS = ['ulvs', 'ulvs-exact'] as const;
const r3 = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(3)) : null);

/**
 * ulvs-exact against ulvs per metric: "slower" only when every round's paired ratio is on the
 * worse side of 1 (all rounds agree; with 5 rounds a chance result of that has probability
 * 1/16), "faster" likewise, else "no consistent difference".
 */
export function exactVsUlvs(metric: string, samples: ReportMeta['samples'], against: Setup = 'ulvs'): { median: number | null; min: number | null; max: number | null; rounds: number; verdict: 'slower' | 'faster' | 'no consistent difference' | 'n/a' } {
  const rs = pairedRatios(samples[`${metric}/ulvs-exact`], samples[`${metric}/${against}`]);
  const [lo, hi] = minMax(rs);
  const higher = METRICS[metric]?.higherIsBetter ?? true;
  const worse = (x: number) => (higher ? x < 1 : x > 1);
  const better = (x: number) => (higher ? x > 1 : x < 1);
  const verdict = rs.length === 0 ? 'n/a' : rs.every(worse) ? 'slower' : rs.every(better) ? 'faster' : 'no consistent difference';
  return { median: r3(median(rs)), min: r3(lo), max: r3(hi), rounds: rs.length, verdict };
}

/**
 * Packets per GB through ulvsd's TUN above which a stream test did not run on the kernel fast
 * path: with it a whole test sends a few dozen packets up (handshakes, the first 8 packets of a
 * connection); without it every GSO packet goes up, about 18,000 per GB at the ~56 KB the
 * test bed's veths carry.
 */
export const BYPASS_PKTS_PER_GB = 1000;
/** "set-up round N (metric)" for every stream test of a ulvs set-up over BYPASS_PKTS_PER_GB. */
export function fastPathBypassed(samples: ReportMeta['samples']): string[] {
  const out: string[] = [];
  for (const m of ['tun_pkts_per_gb', 'tun_pkts_per_gb_4_streams'])
    for (const s of SUBJECTS) (samples[`${m}/${s}`] ?? []).forEach((x, i) => x !== null && x > BYPASS_PKTS_PER_GB && out.push(`${s} round ${i + 1} (${m === 'tun_pkts_per_gb' ? '1 stream' : '4 streams'}, ${Math.round(x).toLocaleString('en-US')}/GB)`));
  return out;
}

/** The Markdown page (charts referenced as `<chartPrefix><metric>.png`) and the JSON summary. */
export function renderReport(figures: Figures, meta: ReportMeta, chartPrefix = ''): { markdown: string; summary: Record<string, unknown> } {
  const summary: Record<string, unknown> = { bench: 'peers', date: meta.date, node: meta.node, rounds: meta.rounds, seconds: meta.seconds };
  const metrics = Object.keys(METRICS).filter((m) => figures[m]);
  const S = meta.samples;
  const paired = (m: string, a: string, b: string) => {
    const rs = pairedRatios(S[`${m}/${a}`], S[`${m}/${b}`]);
    const [lo, hi] = minMax(rs);
    return rs.length ? { median: r3(median(rs)), min: r3(lo), max: r3(hi), rounds: rs.length } : null;
  };
  for (const m of metrics) {
    for (const s of SETUPS) {
      if (figures[m]![s] === undefined) continue;
      summary[`${m}_${s}`] = Number(figures[m]![s]!.toPrecision(6));
      const [lo, hi] = minMax(S[`${m}/${s}`] ?? []);
      if (Number.isFinite(lo)) summary[`${m}_${s}_range`] = [Number(lo.toPrecision(6)), Number(hi.toPrecision(6))];
    }
    summary[`${m}_ratio_ulvs_nft`] = ratio(figures[m]!.ulvs, figures[m]!.nft);
    summary[`${m}_ratio_ulvs_haproxy`] = ratio(figures[m]!.ulvs, figures[m]!.haproxy);
    summary[`${m}_paired_ulvs_nft`] = paired(m, 'ulvs', 'nft');
    summary[`${m}_paired_ulvs_haproxy`] = paired(m, 'ulvs', 'haproxy');
    if (figures[m]!['ulvs-exact'] !== undefined) summary[`${m}_paired_exact_ulvs`] = exactVsUlvs(m, S);
    if (figures[m]!['ulvs-exact'] !== undefined && figures[m]!['ulvs-base'] !== undefined) summary[`${m}_paired_exact_base`] = exactVsUlvs(m, S, 'ulvs-base');
  }
  const mem = meta.memory;
  if (mem) {
    summary['ulvs_tracked_connections'] = mem.connections;
    summary['ulvs_rss_mib_idle'] = Number((mem.rss_before / 2 ** 20).toFixed(1));
    summary['ulvs_rss_mib_with_connections'] = Number((mem.rss_after / 2 ** 20).toFixed(1));
    summary['ulvs_rss_growth_bytes_per_connection'] = mem.connections > 0 ? Number(((mem.rss_after - mem.rss_before) / mem.connections).toFixed(1)) : null;
  }
  const subjects = SUBJECTS.filter((x) => x === 'ulvs' || Object.keys(S).some((k) => k.endsWith(`/${x}`)));
  const bars: BarVerdict[] = subjects.flatMap((x) => BARS.map((b) => judge(b, x, S)));
  const aboveHaproxy = metrics
    .filter((m) => figures[m]!.haproxy !== undefined && figures[m]!.ulvs !== undefined)
    .map((m) => ({ metric: m, met: METRICS[m]!.higherIsBetter ? figures[m]!.ulvs! > figures[m]!.haproxy! : figures[m]!.ulvs! < figures[m]!.haproxy! }));
  summary['bars'] = [...bars.map((b) => ({ bar: b.bar, ratio: b.median, low: b.low, high: b.high, rounds_met: b.roundsMet, rounds: b.ratios.length, met: b.met })), ...aboveHaproxy.map((a) => ({ bar: `${a.metric} better than haproxy`, met: a.met }))];
  if (meta.orders) summary['orders'] = meta.orders;
  if (meta.exactNote) summary['exact_note'] = meta.exactNote;
  if (meta.machine) summary['machine'] = { ...meta.machine, busyBefore: Number(meta.machine.busyBefore.toFixed(3)) };
  summary['fast_path_bypassed'] = fastPathBypassed(S);
  summary['ulvsd_warnings'] = meta.ulvsWarnings ?? [];

  const L: string[] = [];
  const ran = SETUPS.filter((s) => metrics.some((m) => figures[m]![s] !== undefined));
  const cell = (m: string, s: Setup) => {
    const [lo, hi] = minMax(S[`${m}/${s}`] ?? []);
    return figures[m]![s] === undefined ? 'n/a' : `${fmt(m, figures[m]![s])} (${fmt(m, lo)}-${fmt(m, hi)})`;
  };
  const pcell = (p: ReturnType<typeof paired>) => (p ? `${p.median} (${p.min}-${p.max})` : 'n/a');
  L.push(`# ulvs side-by-side benchmark, ${meta.date}`, '');
  L.push(`\`npm run bench\` on Node ${meta.node}: ${meta.rounds} rounds, ${meta.seconds} s per measurement. Each cell: the median of the rounds (smallest-largest). The ratio columns are paired: ulvs/peer computed within each round (the two measured seconds apart), then the median of those per-round ratios (smallest-largest); the bars are judged on them.`, '');
  const mc = meta.machine;
  if (mc) {
    const busy = Math.round(mc.busyBefore * 100);
    L.push(`Machine: ${mc.cpu}, ${mc.cpus} CPUs, kernel ${mc.kernel}; mitigations: ${Object.entries(mc.mitigations).map(([k, v]) => `${k}: ${v}`).join('; ') || 'none reported'}. Busy before the run (other work; ${mc.busySeconds} s): ${busy} %${busy >= 20 ? ' — **the machine was not idle: figures are noisier and a user-space data path loses more to the waiting for a CPU than a kernel one**' : ''}.`, '');
  }
  if (meta.orders) L.push(`Order of the set-ups per round: ${meta.orders.map((o, i) => `${i + 1}: ${o.join(', ')}`).join('; ')}.`, '');
  if (meta.exactNote) L.push(`ulvs-exact: ${meta.exactNote}`, '');
  L.push(`| metric | ${ran.map((s) => SETUP_NAMES[s]).join(' | ')} | ulvs/nft paired | ulvs/haproxy paired |`);
  L.push(`|---|${ran.map(() => '---:').join('|')}|---:|---:|`);
  for (const m of metrics) L.push(`| ${METRICS[m]!.title} (${METRICS[m]!.unit}) | ${ran.map((s) => cell(m, s)).join(' | ')} | ${pcell(paired(m, 'ulvs', 'nft'))} | ${pcell(paired(m, 'ulvs', 'haproxy'))} |`);
  if (mem)
    L.push(
      '',
      `ulvsd's memory: ${mem.connections.toLocaleString('en-US')} tracked connections, resident ${String(summary['ulvs_rss_mib_with_connections'])} MiB (${String(summary['ulvs_rss_mib_idle'])} MiB before the flows, growth ${String(summary['ulvs_rss_growth_bytes_per_connection'])} bytes per connection; the connection table is preallocated at twice the flow count, and the part of it that start-up touches is resident before the flows).`,
    );
  if (meta.ulvsWarnings?.length) L.push('', `**ulvsd said a kernel part was unavailable**: ${meta.ulvsWarnings.map((w) => `"${w}"`).join('; ')}`);
  const bypassed = fastPathBypassed(S);
  if (bypassed.length) L.push('', `**The kernel fast path did not carry the bulk traffic** (over ${BYPASS_PKTS_PER_GB.toLocaleString('en-US')} packets per GB through ulvsd's TUN) in: ${bypassed.join('; ')}. Those rounds measure ulvsd's user-space path, not the fast path.`);
  L.push('', '## The bars (issue 16), judged on the median paired ratio', '');
  for (const b of bars) L.push(`- ${b.met ? 'met' : b.ratios.length ? '**not met**' : 'not measured'}: ${METRICS[b.metric]!.title}, ${b.subject}/${b.peer} = ${b.median ?? 'n/a'} (rounds ${b.low ?? 'n/a'}-${b.high ?? 'n/a'}; ${b.roundsMet} of ${b.ratios.length} rounds met it), wanted ${b.want}`);
  for (const a of aboveHaproxy) L.push(`- ${a.met ? 'met' : '**not met**'}: ${METRICS[a.metric]!.title}: ulvs better than HAProxy (medians)`);
  if (subjects.includes('ulvs-exact')) {
    L.push('', '## The exact path against ulvs (ulvs-exact/ulvs, paired)', '', '"slower" only when every round says so.', '', '| metric | median (smallest-largest) | rounds | verdict |', '|---|---:|---:|---|');
    for (const m of metrics) {
      const e = exactVsUlvs(m, S);
      if (e.rounds) L.push(`| ${METRICS[m]!.title} | ${e.median} (${e.min}-${e.max}) | ${e.rounds} | ${e.verdict === 'slower' ? '**slower**' : e.verdict} |`);
    }
  }
  if (subjects.includes('ulvs-exact') && metrics.some((m) => figures[m]!['ulvs-base'] !== undefined)) {
    L.push('', '## The exact path against the earlier build (ulvs-exact/ulvs-base, paired)', '', 'Issue 16: with the exact path selected, nothing slower than before. "slower" only when every round says so.', '', '| metric | median (smallest-largest) | rounds | verdict |', '|---|---:|---:|---|');
    for (const m of metrics) {
      const e = exactVsUlvs(m, S, 'ulvs-base');
      if (e.rounds) L.push(`| ${METRICS[m]!.title} | ${e.median} (${e.min}-${e.max}) | ${e.rounds} | ${e.verdict === 'slower' ? '**slower**' : e.verdict} |`);
    }
  }
  L.push('', '## Charts', '');
  for (const m of metrics) L.push(`![${METRICS[m]!.title}](${chartPrefix}${m}.png)`, '');
  L.push('## Every sample, by round', '', '| metric / set-up | samples |', '|---|---|');
  for (const [k, xs] of Object.entries(S)) L.push(`| ${k} | ${xs.map((x) => (x === null ? '-' : fmt(k.split('/')[0]!, x))).join(', ')} |`);
  L.push('', 'HAProxy has no UDP figure (it does not balance UDP). CPU per GB and per 1,000 connections counts every busy CPU second of the machine during the measurement (client, servers and balancer); subtract the no-balancer column for the cost of balancing. The balancer process figures count ulvsd or haproxy alone; nftables works in softirq context and has none.', '');
  return { markdown: L.join('\n'), summary };
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

/** A horizontal bar chart of one metric by set-up, as SVG text (DejaVu Sans). */
export function barChartSvg(metric: string, f: Partial<Record<Setup, number>>): string {
  const info = METRICS[metric]!;
  const W = 900;
  const rowH = 44;
  const left = 210;
  const top = 46;
  const shown = SETUPS.filter((s) => s !== 'ulvs-base' || f[s] !== undefined); // the optional earlier build: only when it ran
  const H = top + shown.length * rowH + 20;
  const max = Math.max(...shown.map((s) => f[s] ?? 0), 1e-12);
  const colors: Record<Setup, string> = { none: '#9e9e9e', nft: '#1f77b4', haproxy: '#ff7f0e', ulvs: '#2ca02c', 'ulvs-exact': '#98df8a', 'ulvs-base': '#bcbd22' };
  const rows = shown.map((s, i) => {
    const v = f[s];
    const y = top + i * rowH;
    const w = v === undefined ? 0 : Math.max(1, ((W - left - 110) * v) / max);
    return (
      `<text x="${left - 10}" y="${y + 24}" text-anchor="end" font-size="14">${esc(SETUP_NAMES[s])}</text>` +
      (v === undefined ? `<text x="${left + 6}" y="${y + 24}" font-size="14" fill="#777">n/a</text>` : `<rect x="${left}" y="${y + 8}" width="${w.toFixed(1)}" height="24" fill="${colors[s]}"/><text x="${left + w + 6}" y="${y + 25}" font-size="14">${esc(fmt(metric, v))}</text>`)
    );
  }).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans"><rect width="100%" height="100%" fill="#fff"/><text x="12" y="28" font-size="16" font-weight="bold">${esc(info.title)} (${esc(info.unit)}${info.higherIsBetter ? ', higher is better' : ', lower is better'})</text>${rows}</svg>`;
}
