/**
 * The flood benchmark (issue 14), as a function the CLI (bench/flood.ts) and the smoke test
 * call: for every flood shape and every set-up (ulvs NAT, nftables DNAT, HAProxy), one
 * measurement in a fresh bed (bench/flood-run.ts); writes <resultsDir>/<date>-flood.md and
 * .json (with the raw timelines) and returns the summary.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { measureFlood, type FloodHooks, type FloodParams, type FloodShape } from './flood-run.js';
import { floodMarkdown, summarise, type FloodResults, type FloodSummary } from './flood-report.js';
import type { FloodSetup, UlvsVariant } from './flood-setups.js';

export interface FloodBenchOptions {
  setups: FloodSetup[];
  shapes: FloodShape[];
  params: FloodParams;
  variant: UlvsVariant;
  /** beds are named <prefix><n>-... */
  prefix: string;
  resultsDir: string;
  /** the command line, for the report */
  command: string;
  log?: (s: string) => void;
  /** for the smoke test's control (bench/flood-run.ts) */
  hooks?: FloodHooks;
}

export async function runFloodBench(o: FloodBenchOptions): Promise<{ summary: FloodSummary; results: FloodResults; files: string[] }> {
  const log = o.log ?? ((s: string) => process.stderr.write(`${s}\n`));
  const load = loadavg();
  const results: FloodResults = {};
  let k = 0;
  for (const shape of o.shapes) {
    results[shape.name] = {};
    for (const setup of o.setups) {
      const dir = mkdtempSync(join(tmpdir(), `${o.prefix}-`));
      try {
        log(`  ${shape.name} sources, ${setup}`);
        const m = await measureFlood(setup, shape, o.params, `${o.prefix}${++k}`, dir, o.variant, log, o.hooks);
        results[shape.name]![setup] = m;
        log(
          `    flood ${m.flood.pps} SYN/s (${m.flood.sent} sent, ${m.flood.sources} sources); legit during ${m.legit.answered}/${m.legit.total}, p99 ${m.legit.p99_ms} ms; stream ${(m.stream.during_bps / 1e6).toFixed(0)}/${(m.stream.before_bps / 1e6).toFixed(0)} Mbit/s; recovery ${m.recovery_ms} ms; RSS peak ${(m.memory.rss_peak / 2 ** 20).toFixed(0)} MiB, conntrack peak ${m.memory.conntrack_peak}, ulvs conns peak ${m.memory.ulvs_conns_peak}`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const date = new Date().toISOString();
  const summary = summarise(results, date, load, { ...o.params, shapes: o.shapes, ulvs_args: o.variant.args, ulvs_sysctls: o.variant.sysctls });
  mkdirSync(o.resultsDir, { recursive: true });
  const stem = join(o.resultsDir, `${date.slice(0, 19).replace(/:/g, '-')}-flood`);
  writeFileSync(`${stem}.md`, floodMarkdown(summary, o.command));
  const raw = Object.fromEntries(Object.entries(results).map(([shape, by]) => [shape, Object.fromEntries(Object.entries(by).map(([s, m]) => [s, m.raw]))]));
  writeFileSync(`${stem}.json`, `${JSON.stringify({ ...summary, raw })}\n`);
  return { summary, results, files: [`${stem}.md`, `${stem}.json`] };
}
