/**
 * The asymmetric benchmark's figures and report: medians of the rounds, ratios against ulvs NAT
 * and against the nftables DR peer (both measured in the same run), a Markdown page, and the
 * JSON summary (the last line of the output). Pure: no I/O; bench/asym.ts writes the files.
 */
import { median } from './report.js';
import { SETUP_NAMES, type AsymSetup } from './asym-setups.js';

/** key, title, unit, digits; every figure is one round's value, the report shows medians */
export const ASYM_METRICS = [
  ['gbps', 'client throughput', 'Gbit/s', 2],
  ['requests_per_s', 'requests per second (each a new connection and a 1 MiB reply)', 'req/s', 0],
  ['director_cpu_s_per_gb', 'director process CPU per GB (ulvsd; nft: none, kernel only)', 's/GB', 4],
  ['director_cpu_s_per_1000_conns', 'director process CPU per 1,000 connections', 's', 4],
  ['director_pkts_per_gb', "packets the director's kernel received per GB (its veth ports, skbs)", 'pkt/GB', 0],
  ['director_pkts_per_conn', "packets the director's kernel received per connection", 'pkt', 1],
  ['machine_cpu_s_per_gb', 'whole-machine busy CPU per GB', 's/GB', 3],
  ['machine_cpu_s_per_1000_conns', 'whole-machine busy CPU per 1,000 connections', 's', 3],
  ['direct_return_share', "share of the client's bytes that came by the direct-return links", '', 3],
] as const;
export type AsymMetric = (typeof ASYM_METRICS)[number][0];
/** the two baselines every set-up is compared with */
export const BASELINES = ['ulvs', 'nft-dr'] as const;

/** metric -> set-up -> value */
export type AsymFigures = Partial<Record<AsymMetric, Partial<Record<AsymSetup, number>>>>;
/** baseline -> set-up -> metric -> set-up's figure / baseline's figure */
export type AsymRatios = Partial<Record<(typeof BASELINES)[number], Partial<Record<AsymSetup, Partial<Record<AsymMetric, number>>>>>>;

export interface AsymResult {
  date: string;
  rounds: number;
  seconds: number;
  requestBytes: number;
  replyBytes: number;
  /** the set-ups in the order of odd rounds (even rounds run them in reverse) */
  setups: AsymSetup[];
  /** metric -> set-up -> one value per successful round */
  samples: Partial<Record<AsymMetric, Partial<Record<AsymSetup, number[]>>>>;
  /** set-up -> the path counters of each successful round (asym-path.ts) */
  path: Partial<Record<AsymSetup, Record<string, number | null>[]>>;
  /** set-up -> why rounds failed ("round N: message") */
  failures: Partial<Record<AsymSetup, string[]>>;
  /** notes on how set-ups were prepared (e.g. the decapsulator rs-setup chose) */
  notes: string[];
}

export function asymFigures(r: AsymResult): AsymFigures {
  const f: AsymFigures = {};
  for (const [k] of ASYM_METRICS)
    for (const s of r.setups) {
      const xs = r.samples[k]?.[s];
      if (xs?.length) (f[k] ??= {})[s] = median(xs);
    }
  return f;
}

/** Ratios set-up / baseline per metric; none where the baseline's figure is 0 or missing. */
export function asymRatios(r: AsymResult, f: AsymFigures): AsymRatios {
  const out: AsymRatios = {};
  for (const base of BASELINES)
    for (const s of r.setups) {
      if (s === base) continue;
      for (const [k] of ASYM_METRICS) {
        if (k === 'direct_return_share') continue;
        const a = f[k]?.[s];
        const b = f[k]?.[base];
        if (a !== undefined && b) ((out[base] ??= {})[s] ??= {})[k] = a / b;
      }
    }
  return out;
}

const fmt = (x: number | undefined, digits: number) => (x === undefined ? '—' : x.toFixed(digits));

/** The Markdown page (without the per-round samples, which asym.ts appends). */
export function asymMarkdown(r: AsymResult, f: AsymFigures, ratios: AsymRatios): string {
  const ok = r.setups;
  const head = (first: string, cols: readonly AsymSetup[]) => `| ${first} | ${cols.map((s) => SETUP_NAMES[s]).join(' | ')} |\n|${'---|'.repeat(cols.length + 1)}`;
  const figureRows = ASYM_METRICS.map(([k, title, unit, d]) => `| ${title}${unit ? ` (${unit})` : ''} | ${ok.map((s) => fmt(f[k]?.[s], d)).join(' | ')} |`);
  const ratioTable = (base: (typeof BASELINES)[number]) => {
    const cols = ok.filter((s) => s !== base);
    if (!ok.includes(base) || cols.length === 0) return `(${SETUP_NAMES[base]} not in this run: no ratios against it)`;
    const rows = ASYM_METRICS.filter(([k]) => k !== 'direct_return_share').map(([k, title]) => `| ${title} | ${cols.map((s) => fmt(ratios[base]?.[s]?.[k], 3)).join(' | ')} |`);
    return `${head('set-up / ' + SETUP_NAMES[base], cols)}\n${rows.join('\n')}`;
  };
  const failures = ok.filter((s) => r.failures[s]?.length).map((s) => `- ${SETUP_NAMES[s]}: ${r.failures[s]!.join('; ')}`);
  const path = ok.map((s) => `- ${SETUP_NAMES[s]}: ${(r.path[s] ?? []).map((c) => Object.entries(c).filter(([, v]) => v !== null).map(([k, v]) => `${k}=${v}`).join(' ')).join(' | ') || 'no successful round'}`);
  return `# Asymmetric benchmark, ${r.date}

Node ${process.version}; ${r.rounds} rounds of ${r.seconds} s (odd rounds in the order below, even rounds reversed); medians of the successful rounds. wrk -t 2 -c 64, Connection: close, GET /1m (request ${r.requestBytes} bytes, reply ${r.replyBytes} bytes + headers).

${head('metric', ok)}
${figureRows.join('\n')}

Ratios against ulvs NAT (same run):

${ratioTable('ulvs')}

Ratios against the nftables netdev DR peer (same run; its director process CPU is 0, so no ratio there):

${ratioTable('nft-dr')}

Failed rounds: ${failures.length ? `\n\n${failures.join('\n')}` : 'none'}

Path counters per successful round (what shows each set-up took its path; bench/asym-path.ts):

${path.join('\n')}
${r.notes.length ? `\nNotes:\n\n${r.notes.map((n) => `- ${n}`).join('\n')}\n` : ''}`;
}

/** The JSON summary printed as the output's last line. */
export function asymSummary(r: AsymResult, f: AsymFigures, ratios: AsymRatios) {
  return { date: r.date, test: 'asym', node: process.version, rounds: r.rounds, seconds: r.seconds, request_bytes: r.requestBytes, reply_bytes: r.replyBytes, setups: r.setups, figures: f, ratios, failures: r.failures, notes: r.notes };
}
