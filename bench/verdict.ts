/**
 * The side-by-side benchmark's verdict (issue 16): the order set-ups run in within each round,
 * the spread of each figure over the rounds, and the bars judged on paired ratios.
 *
 * Why paired: on a shared 2-core machine the whole machine's speed drifts by tens of percent
 * over minutes (other work, thermal and host state), so a median over ulvs's rounds divided by a
 * median over nftables's rounds mixes slow phases of one with fast phases of the other. Within
 * a round the two are measured next to each other, seconds apart; the ratio of the two figures
 * of one round ("paired ratio") cancels most of the drift, and the median of those ratios is
 * the verdict. Pure: no I/O.
 */

/** Set-ups measured next to each other in every round: nftables and the ulvs variants. */
export const PAIRED_GROUP: readonly string[] = ['nft', 'ulvs', 'ulvs-exact'];

/**
 * The order of the set-ups in round `round` (0-based). The paired group stays contiguous (its
 * members in list order) and counts as one unit; the units rotate by one position per round,
 * and every odd round runs the whole order backwards, so within the group nft runs before ulvs
 * in even rounds and after it in odd ones, and no set-up always runs first or last (the first
 * after the bed is built, the last before the memory test).
 */
export function roundOrder<S extends string>(setups: readonly S[], round: number): S[] {
  const group = setups.filter((s) => PAIRED_GROUP.includes(s));
  const units: S[][] = [];
  for (const s of setups) {
    if (!PAIRED_GROUP.includes(s)) units.push([s]);
    else if (s === group[0]) units.push(group);
  }
  const k = units.length ? round % units.length : 0;
  const order = [...units.slice(k), ...units.slice(0, k)].flat();
  return round % 2 ? order.reverse() : order;
}

/** Smallest and largest of the finite values (NaN, NaN for none). */
export function minMax(xs: readonly (number | null)[]): [number, number] {
  const f = xs.filter((x): x is number => x !== null && Number.isFinite(x));
  return f.length ? [Math.min(...f), Math.max(...f)] : [NaN, NaN];
}

export function median(xs: readonly (number | null)[]): number {
  const s = xs.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b);
  const n = s.length;
  if (n === 0) return NaN;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

/**
 * Per-round ratios a/b of two set-ups' samples of one metric, sample i being round i: only
 * rounds where both have a finite figure and b's is above 0 give a ratio.
 */
export function pairedRatios(a: readonly (number | null)[] | undefined, b: readonly (number | null)[] | undefined): number[] {
  if (!a || !b) return [];
  const out: number[] = [];
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const x = a[i];
    const y = b[i];
    if (x !== null && y !== null && x !== undefined && y !== undefined && Number.isFinite(x) && Number.isFinite(y) && y > 0) out.push(x / y);
  }
  return out;
}

/** A bar of issue 16: the ratio subject/peer of a metric must be at least min or at most max. */
export interface Bar {
  metric: string;
  peer: string;
  min?: number;
  max?: number;
}
/** Issue 16's bars, for ulvs (and for ulvs-exact, judged the same way, when it ran). */
export const BARS: readonly Bar[] = [
  { metric: 'http_conns_per_s', peer: 'nft', min: 1.1 },
  { metric: 'http_conns_per_s', peer: 'haproxy', min: 1.5 },
  { metric: 'http_conns_per_s_2_clients', peer: 'nft', min: 1.1 },
  { metric: 'http_conns_per_s_2_clients', peer: 'haproxy', min: 1.5 },
  { metric: 'four_streams_bps', peer: 'nft', min: 1.0 },
  { metric: 'single_stream_bps', peer: 'nft', min: 1.0 },
  { metric: 'udp_64b_pps', peer: 'nft', min: 1.0 },
  { metric: 'latency_p99_ms', peer: 'nft', max: 1.0 },
  { metric: 'cpu_s_per_1000_conns', peer: 'nft', max: 1.0 },
];
export const barText = (b: Bar): string => (b.min !== undefined ? `>= ${b.min}` : `<= ${b.max}`);
const meets = (b: Bar, r: number) => Number.isFinite(r) && (b.min === undefined || r >= b.min) && (b.max === undefined || r <= b.max);

export interface BarVerdict {
  /** e.g. "http_conns_per_s ulvs/nft >= 1.1" */
  bar: string;
  subject: string;
  metric: string;
  peer: string;
  /** the per-round ratios subject/peer, in round order */
  ratios: number[];
  /** median of the paired ratios (null without any) */
  median: number | null;
  /** smallest and largest paired ratio */
  low: number | null;
  high: number | null;
  /** the bar's condition, e.g. ">= 1.1" */
  want: string;
  /** rounds whose own paired ratio meets the bar, of `ratios.length` */
  roundsMet: number;
  /** the bar is met when the median paired ratio meets it */
  met: boolean;
}

const r3 = (x: number) => (Number.isFinite(x) ? Number(x.toFixed(3)) : null);

/** Judge one bar for `subject` from the per-round samples ("metric/set-up" -> samples by round). */
export function judge(b: Bar, subject: string, samples: Readonly<Record<string, readonly (number | null)[]>>): BarVerdict {
  const ratios = pairedRatios(samples[`${b.metric}/${subject}`], samples[`${b.metric}/${b.peer}`]);
  const med = median(ratios);
  const [lo, hi] = minMax(ratios);
  return {
    bar: `${b.metric} ${subject}/${b.peer} ${barText(b)}`,
    subject,
    metric: b.metric,
    peer: b.peer,
    ratios: ratios.map((x) => r3(x)!),
    median: r3(med),
    low: r3(lo),
    high: r3(hi),
    want: barText(b),
    roundsMet: ratios.filter((x) => meets(b, x)).length,
    met: meets(b, med),
  };
}
