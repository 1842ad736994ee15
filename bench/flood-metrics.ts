/**
 * The flood benchmark's figures from its raw timelines (pure; bench/flood.ts gathers them).
 * Times are ms since the epoch: the flood generator, the new-connection prober and the stream's
 * intervals are separate processes and meet on the wall clock.
 *
 * - legitimate success: of the probes (src/lab/new-conns.ts) that opened their connection while
 *   the flood ran, the share answered (within the prober's timeout);
 * - normal latency: the threshold a probe's answer must meet to count as normal service,
 *   max(FLOOR_MS, 3 x the 99th percentile of the probes before the flood) — a SYN lost once
 *   costs its 1 s retransmission and is far above it;
 * - recovery time: from the flood's end to the first probe from which on every probe was
 *   answered within normal latency (the probes are 1000 / rate ms apart, the resolution); null
 *   when the last probe of the window still was not;
 * - established throughput: the stream's mean rate over its intervals inside the flood, divided
 *   by its mean rate over the intervals before it (its first `warmMs` left out: slow start).
 */

/** [start of the attempt, ms to its answer or -1] */
export type Probe = readonly [number, number];
export interface Span {
  start: number;
  end: number;
}
/** one reporting interval of the stream, bits per second */
export interface StreamInterval extends Span {
  bps: number;
}

export const FLOOR_MS = 100;

export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))]!;
}

export interface LegitFigures {
  total: number;
  answered: number;
  /** answered / total, 0..1 (NaN without probes) */
  success: number;
  /** answered within the normal latency (no SYN retransmission, no stall) / total */
  prompt: number;
  p50_ms: number;
  p99_ms: number;
}
/** The probes that started inside `during`; `normalMs` as normalLatencyMs gives it. */
export function legit(probes: readonly Probe[], during: Span, normalMs: number): LegitFigures {
  const inside = probes.filter(([t]) => t >= during.start && t < during.end);
  const ok = inside.filter(([, ms]) => ms >= 0).map(([, ms]) => ms);
  const share = (n: number) => (inside.length ? n / inside.length : NaN);
  return { total: inside.length, answered: ok.length, success: share(ok.length), prompt: share(ok.filter((ms) => ms <= normalMs).length), p50_ms: quantile(ok, 0.5), p99_ms: quantile(ok, 0.99) };
}

/** The normal-latency threshold from the probes that started before `floodStart`. */
export function normalLatencyMs(probes: readonly Probe[], floodStart: number): number {
  const before = probes.filter(([t, ms]) => t < floodStart && ms >= 0).map(([, ms]) => ms);
  return Math.max(FLOOR_MS, 3 * (before.length ? quantile(before, 0.99) : 0));
}

/** ms from `floodEnd` to the start of the last run of normal answers, or null (see above). */
export function recoveryMs(probes: readonly Probe[], floodEnd: number, normalMs: number): number | null {
  const after = probes.filter(([t]) => t >= floodEnd).sort((a, b) => a[0] - b[0]);
  if (after.length === 0) return null;
  const normal = ([, ms]: Probe) => ms >= 0 && ms <= normalMs;
  let i = after.length;
  while (i > 0 && normal(after[i - 1]!)) i--;
  if (i === after.length) return null;
  return Math.max(0, after[i]![0] - floodEnd);
}

export interface StreamFigures {
  before_bps: number;
  during_bps: number;
  /** during / before */
  ratio: number;
}
/** The stream's rate before and inside `flood` (intervals wholly inside each window). */
export function streamRatio(intervals: readonly StreamInterval[], streamStart: number, flood: Span, warmMs = 1000): StreamFigures {
  const mean = (xs: StreamInterval[]) => {
    const ms = xs.reduce((a, x) => a + (x.end - x.start), 0);
    return ms > 0 ? xs.reduce((a, x) => a + x.bps * (x.end - x.start), 0) / ms : NaN;
  };
  const before = mean(intervals.filter((x) => x.start >= streamStart + warmMs && x.end <= flood.start));
  const during = mean(intervals.filter((x) => x.start >= flood.start && x.end <= flood.end));
  return { before_bps: before, during_bps: during, ratio: during / before };
}
