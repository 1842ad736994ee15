/**
 * The side-by-side benchmark's report: medians, ratios, the issue's bars, a Markdown page and
 * one bar chart (SVG text) per metric. Pure: no I/O; bench/datapath.ts writes the files.
 */

export const SETUPS = ['none', 'nft', 'haproxy', 'ulvs'] as const;
export type Setup = (typeof SETUPS)[number];
/** metric -> set-up -> median figure */
export type Figures = Record<string, Partial<Record<Setup, number>>>;

export const SETUP_NAMES: Record<Setup, string> = {
  none: 'no balancer (ceiling)',
  nft: 'nftables DNAT (kernel)',
  haproxy: 'HAProxy (TCP mode)',
  ulvs: 'ulvs',
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
  balancer_cpu_s_per_1000_conns: { title: "Balancer process's CPU seconds per 1,000 HTTP connections", unit: 's', scale: 1, digits: 3, higherIsBetter: false },
};

/** The issue's bars: metric, peer, and the ratio ulvs/peer must be at least min or at most max. */
export const BARS: { metric: string; peer: Setup; min?: number; max?: number }[] = [
  { metric: 'single_stream_bps', peer: 'nft', min: 0.9 },
  { metric: 'four_streams_bps', peer: 'nft', min: 0.7 },
  { metric: 'http_conns_per_s', peer: 'nft', min: 0.9 },
  { metric: 'http_conns_per_s', peer: 'haproxy', min: 1.5 },
  { metric: 'latency_p99_ms', peer: 'nft', max: 1.5 },
];
const barText = (b: (typeof BARS)[number]) => (b.min !== undefined ? `>= ${b.min}` : `<= ${b.max}`);

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

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
  samples: Record<string, number[]>;
  /** ulvsd's resident memory (bytes) before and after the flow flood, and what it tracked */
  memory?: { connections: number; rss_before: number; rss_after: number } | null;
}

/** The Markdown page (charts referenced as `<chartPrefix><metric>.png`) and the JSON summary. */
export function renderReport(figures: Figures, meta: ReportMeta, chartPrefix = ''): { markdown: string; summary: Record<string, unknown> } {
  const summary: Record<string, unknown> = { bench: 'peers', date: meta.date, node: meta.node, rounds: meta.rounds, seconds: meta.seconds };
  const metrics = Object.keys(METRICS).filter((m) => figures[m]);
  for (const m of metrics) {
    for (const s of SETUPS) if (figures[m]![s] !== undefined) summary[`${m}_${s}`] = Number(figures[m]![s]!.toPrecision(6));
    summary[`${m}_ratio_ulvs_nft`] = ratio(figures[m]!.ulvs, figures[m]!.nft);
    summary[`${m}_ratio_ulvs_haproxy`] = ratio(figures[m]!.ulvs, figures[m]!.haproxy);
  }
  const mem = meta.memory;
  if (mem) {
    summary['ulvs_tracked_connections'] = mem.connections;
    summary['ulvs_rss_mib_idle'] = Number((mem.rss_before / 2 ** 20).toFixed(1));
    summary['ulvs_rss_mib_with_connections'] = Number((mem.rss_after / 2 ** 20).toFixed(1));
    summary['ulvs_rss_growth_bytes_per_connection'] = mem.connections > 0 ? Number(((mem.rss_after - mem.rss_before) / mem.connections).toFixed(1)) : null;
  }
  const bars = BARS.map((b) => {
    const r = ratio(figures[b.metric]?.ulvs, figures[b.metric]?.[b.peer]);
    return { ...b, ratio: r, met: r !== null && (b.min === undefined || r >= b.min) && (b.max === undefined || r <= b.max) };
  });
  const aboveHaproxy = metrics
    .filter((m) => figures[m]!.haproxy !== undefined && figures[m]!.ulvs !== undefined)
    .map((m) => ({ metric: m, met: METRICS[m]!.higherIsBetter ? figures[m]!.ulvs! > figures[m]!.haproxy! : figures[m]!.ulvs! < figures[m]!.haproxy! }));
  summary['bars'] = [...bars.map((b) => ({ bar: `${b.metric} ulvs/${b.peer} ${barText(b)}`, ratio: b.ratio, met: b.met })), ...aboveHaproxy.map((a) => ({ bar: `${a.metric} better than haproxy`, met: a.met }))];

  const L: string[] = [];
  L.push(`# ulvs side-by-side benchmark, ${meta.date}`, '');
  L.push(`\`npm run bench\` on Node ${meta.node}: ${meta.rounds} rounds, each set-up measured in turn within a round, ${meta.seconds} s per measurement; every figure is the median of its rounds.`, '');
  L.push(`| metric | ${SETUPS.map((s) => SETUP_NAMES[s]).join(' | ')} | ulvs/nft | ulvs/haproxy |`);
  L.push(`|---|${SETUPS.map(() => '---:').join('|')}|---:|---:|`);
  for (const m of metrics) {
    const f = figures[m]!;
    const r = (x: unknown) => (x === null || x === undefined ? 'n/a' : String(x));
    L.push(`| ${METRICS[m]!.title} (${METRICS[m]!.unit}) | ${SETUPS.map((s) => fmt(m, f[s])).join(' | ')} | ${r(summary[`${m}_ratio_ulvs_nft`])} | ${r(summary[`${m}_ratio_ulvs_haproxy`])} |`);
  }
  if (mem)
    L.push(
      '',
      `ulvsd's memory: ${mem.connections.toLocaleString('en-US')} tracked connections, resident ${String(summary['ulvs_rss_mib_with_connections'])} MiB (${String(summary['ulvs_rss_mib_idle'])} MiB before the flows, growth ${String(summary['ulvs_rss_growth_bytes_per_connection'])} bytes per connection; the connection table is preallocated at twice the flow count, and the part of it that start-up touches is resident before the flows).`,
    );
  L.push('', '## The bars', '');
  for (const b of bars) L.push(`- ${b.met ? 'met' : '**not met**'}: ${METRICS[b.metric]!.title}, ulvs/${b.peer} = ${b.ratio ?? 'n/a'} (wanted ${barText(b)})`);
  for (const a of aboveHaproxy) L.push(`- ${a.met ? 'met' : '**not met**'}: ${METRICS[a.metric]!.title}: ulvs better than HAProxy`);
  L.push('', '## Charts', '');
  for (const m of metrics) L.push(`![${METRICS[m]!.title}](${chartPrefix}${m}.png)`, '');
  L.push('## Every sample', '', '| metric / set-up | samples |', '|---|---|');
  for (const [k, xs] of Object.entries(meta.samples)) L.push(`| ${k} | ${xs.map((x) => fmt(k.split('/')[0]!, x)).join(', ')} |`);
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
  const H = top + SETUPS.length * rowH + 20;
  const max = Math.max(...SETUPS.map((s) => f[s] ?? 0), 1e-12);
  const colors: Record<Setup, string> = { none: '#9e9e9e', nft: '#1f77b4', haproxy: '#ff7f0e', ulvs: '#2ca02c' };
  const rows = SETUPS.map((s, i) => {
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
