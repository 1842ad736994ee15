/**
 * The flood benchmark's report: a markdown table per flood shape and the summary JSON (the
 * bench's last line), with issue 14's targets for ulvs checked and the ratios to the peers
 * measured in the same run.
 */
import type { FloodMeasurement, FloodParams, FloodShape } from './flood-run.js';

/** issue 14: legitimate new connections answered, established throughput kept, recovery */
export const TARGETS = { legit_success: 0.99, stream_ratio: 0.95, recovery_ms: 1000 } as const;

export type FloodResults = Record<string, Record<string, FloodMeasurement>>; // shape -> setup -> measurement

export interface FloodSummary {
  date: string;
  load_before: number[];
  params: FloodParams & { shapes: FloodShape[]; ulvs_args: string[]; ulvs_sysctls: string[] };
  figures: Record<string, Record<string, Omit<FloodMeasurement, 'raw'>>>;
  /** per shape, per set-up: does it meet the targets */
  targets_met: Record<string, Record<string, { legit: boolean; stream: boolean; recovery: boolean }>>;
  /** per shape: ulvs's figure divided by each peer's */
  ratios: Record<string, Record<string, { legit_success: number; stream_ratio: number }>>;
}

export function summarise(results: FloodResults, date: string, load: number[], params: FloodSummary['params']): FloodSummary {
  const figures: FloodSummary['figures'] = {};
  const targets: FloodSummary['targets_met'] = {};
  const ratios: FloodSummary['ratios'] = {};
  for (const [shape, bySetup] of Object.entries(results)) {
    figures[shape] = {};
    targets[shape] = {};
    for (const [setup, m] of Object.entries(bySetup)) {
      const { raw: _raw, ...rest } = m;
      figures[shape]![setup] = rest;
      targets[shape]![setup] = { legit: m.legit.success >= TARGETS.legit_success, stream: m.stream.ratio >= TARGETS.stream_ratio, recovery: m.recovery_ms !== null && m.recovery_ms <= TARGETS.recovery_ms };
    }
    const u = bySetup['ulvs'];
    if (u) {
      ratios[shape] = {};
      for (const [setup, m] of Object.entries(bySetup))
        if (setup !== 'ulvs') ratios[shape]![setup] = { legit_success: u.legit.success / m.legit.success, stream_ratio: u.stream.ratio / m.stream.ratio };
    }
  }
  return { date, load_before: load, params, figures, targets_met: targets, ratios };
}

const pct = (x: number) => (Number.isNaN(x) ? '–' : `${(x * 100).toFixed(1)} %`);
const mib = (b: number) => (Number.isNaN(b) || b === 0 ? '–' : `${(b / 2 ** 20).toFixed(0)} MiB`);
const n = (x: number) => (Number.isNaN(x) ? '–' : Math.round(x).toLocaleString('en-US'));

export function floodMarkdown(s: FloodSummary, command: string): string {
  const p = s.params;
  const lines = [
    `# Flood benchmark ${s.date}`,
    '',
    `Command: \`${command}\`  `,
    `Load average before: ${s.load_before.map((x) => x.toFixed(2)).join(' ')} (2 cores, shared with other work: compare set-ups within this run only).  `,
    `Timeline per set-up: ${p.preS} s before, ${p.floodS} s of SYN flood to VIP:80${p.coverSources ? ` (longer until every source was used once, at most ${p.maxFloodS} s: the flood's own seconds are in the table)` : ''} (${p.floodRate ? `${p.floodRate}/s` : 'unpaced: the generator\'s maximum'}, io ${p.floodIo}, ${p.floodProcs} process${p.floodProcs > 1 ? 'es' : ''}), ${p.postS} s after; `,
    `legitimate new connections ${p.probeRate}/s (timeout ${p.probeTimeoutMs} ms) and one established stream (iperf3 -R${p.streamMbps ? `, paced at ${p.streamMbps} Mbit/s` : ', unpaced'}) throughout.`,
    p.ulvs_args.length || p.ulvs_sysctls.length ? `ulvs variant: ${[...p.ulvs_args, ...p.ulvs_sysctls.map((x) => `--sysctl ${x}`)].join(' ')}` : 'ulvs: defaults.',
    '',
  ];
  for (const shape of p.shapes) {
    const by = s.figures[shape.name];
    if (!by) continue;
    lines.push(`## ${shape.name}: ${n(shape.sources)} distinct spoofed sources (${shape.addrs} addresses of 198.51.100.128/25 x ${n(Math.ceil(shape.sources / shape.addrs))} ports)`, '');
    lines.push('| set-up | flood SYN/s (sent, seconds) | legit answered during flood | within normal latency | legit p99 during | stream during / before | recovery | answered after | memory peak (before) | conntrack peak | ulvs conns peak | targets legit/stream/recovery |');
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const [setup, m] of Object.entries(by)) {
      const t = s.targets_met[shape.name]![setup]!;
      const yes = (b: boolean) => (b ? 'yes' : '**no**');
      lines.push(
        `| ${setup} | ${n(m.flood.pps)} (${n(m.flood.sent)}, ${m.flood.seconds} s) | ${m.legit.answered}/${m.legit.total} = ${pct(m.legit.success)} | ${pct(m.legit.prompt)} | ${n(m.legit.p99_ms)} ms | ${(m.stream.during_bps / 1e6).toFixed(0)} / ${(m.stream.before_bps / 1e6).toFixed(0)} Mbit/s = ${m.stream.ratio.toFixed(3)} | ${m.recovery_ms === null ? '**not within the window**' : `${m.recovery_ms} ms`} | ${m.legit_after.answered}/${m.legit_after.total} | ${mib(m.memory.rss_peak)} (${mib(m.memory.rss_before)}) | ${n(m.memory.conntrack_peak)} | ${setup === 'ulvs' ? n(m.memory.ulvs_conns_peak) : '–'} | ${yes(t.legit)}/${yes(t.stream)}/${yes(t.recovery)} |`,
      );
    }
    lines.push('');
    const u = by['ulvs']?.ulvs;
    if (u) {
      const nonzero = Object.entries(u.engine).filter(([k, v]) => v > 0 && /drop|evict|syn|full|new|conn/i.test(k));
      lines.push(`ulvs, where the SYNs went: dropped by the kernel at the full TUN queue (ulvs0 tx dropped) ${n(u.tun_tx_dropped)}; engine counters ${nonzero.map(([k, v]) => `${k} ${n(v)}`).join(', ') || 'none'}.`, '');
    }
  }
  lines.push(`Targets (issue 14): ≥ ${TARGETS.legit_success * 100} % of legitimate new connections answered during the flood, the stream keeps ≥ ${TARGETS.stream_ratio * 100} % of its throughput, normal service (every answer within the normal latency: max(100 ms, 3 x p99 before the flood)) within ${TARGETS.recovery_ms} ms of the flood's end. Recovery is resolved to the probe interval (${Math.round(1000 / p.probeRate)} ms).`);
  return `${lines.join('\n')}\n`;
}
