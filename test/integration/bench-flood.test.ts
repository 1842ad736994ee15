/**
 * The flood benchmark (bench/flood.ts) runs end to end: a short run (2 s before, a 2 s flood
 * paced at 5,000 SYN/s from 1,000,000 possible sources, 5 s after) of ulvs, nftables DNAT and
 * HAProxy, each in its own bed, measures every figure from real packets, writes its report and
 * leaves no namespace behind. No figure of performance is asserted beyond what an idle director
 * must do (the machine is shared): the legitimate client is answered after the flood.
 *
 * Control: the same run with the legitimate client's path cut on purpose (an nftables rule in
 * its namespace dropping its SYNs to port 80 and the stream's incoming data) from the flood's
 * start until 3.5 s after its end. Each set-up must then be reported with 0 % of the
 * legitimate connections answered during the flood, a recovery time of at least 3 s, and the
 * stream kept below half its throughput (or no stream figure at all): the bench's measurements
 * can see a failure, and recovery is measured from the flood's end.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFloodBench } from '../../bench/flood-bench.js';
import { FLOOD_SETUPS, LEGIT_CLIENT } from '../../bench/flood-setups.js';
import type { FloodHooks } from '../../bench/flood-run.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';

const missing = ['iperf3', 'nginx', 'haproxy', 'nft'].filter((t) => !['/usr/bin', '/usr/sbin'].some((d) => existsSync(join(d, t))));
const skip = needsRoot || (missing.length ? `needs ${missing.join(', ')}` : false);
const params = { preS: 2, floodS: 2, postS: 5, coverSources: false, maxFloodS: 10, floodRate: 5000, floodIo: 'uring' as const, floodProcs: 1, probeRate: 20, probeTimeoutMs: 3000, streamMbps: 200 };

describe('flood benchmark', { skip }, () => {
  const resultsDir = mkdtempSync(join(tmpdir(), 'qb-flood-results-'));
  after(() => rmSync(resultsDir, { recursive: true, force: true }));

  async function shortRun(name: string, hooks?: FloodHooks, postS = params.postS) {
    const prefix = `qb${name}${process.pid % 1000}`;
    const out = await runFloodBench({
      setups: [...FLOOD_SETUPS],
      shapes: [{ name: 'many', addrs: 128, sources: 1_000_000 }],
      params: { ...params, postS },
      variant: { args: ['--workers', '1'], sysctls: [] },
      prefix,
      resultsDir,
      command: 'test',
      log: () => {},
      ...(hooks && { hooks }),
    });
    const left = run(['ip', 'netns', 'list']).split('\n').filter((l) => l.startsWith(prefix));
    assert.deepEqual(left, [], 'every bed deleted');
    return out;
  }

  test('ulvs, nftables and HAProxy each measured from real packets; report written', async (t) => {
    const { summary, files } = await shortRun('s');
    for (const s of FLOOD_SETUPS) {
      const m = summary.figures['many']![s]!;
      t.diagnostic(`${s}: ${JSON.stringify({ flood: m.flood.sent, legit: m.legit, after: m.legit_after.success, stream: m.stream.ratio, recovery: m.recovery_ms, memory: m.memory })}`);
      assert.ok(m.flood.sent >= 9000 && m.flood.write_errors === 0, `${s}: the flood was sent: ${JSON.stringify(m.flood)}`);
      assert.ok(m.legit.total >= 30, `${s}: probes during the flood: ${m.legit.total}`);
      assert.ok(m.legit_after.total >= 80 && m.legit_after.success >= 0.9, `${s}: answered after the flood: ${JSON.stringify(m.legit_after)}`);
      assert.ok(m.stream.before_bps > 50e6, `${s}: the stream ran before the flood: ${m.stream.before_bps}`);
      assert.ok(m.stream.during_bps > 0, `${s}: the stream was measured during the flood`);
    }
    assert.ok(summary.figures['many']!['ulvs']!.memory.ulvs_conns_peak > 0, "ulvs's connections sampled");
    assert.ok(summary.figures['many']!['nft']!.memory.conntrack_peak > 0, 'conntrack entries sampled');
    assert.ok(summary.figures['many']!['haproxy']!.memory.rss_peak > 0, "HAProxy's memory sampled");
    assert.ok(summary.ratios['many']!['nft'] && summary.ratios['many']!['haproxy'], 'ratios to both peers');
    const md = readFileSync(files[0]!, 'utf8');
    for (const s of FLOOD_SETUPS) assert.match(md, new RegExp(`^\\| ${s} \\|`, 'm'));
  });

  test('control: the legitimate client cut off from the flood start to 3.5 s after its end is reported as failing', async () => {
    const cut = (ns: string, on: boolean) =>
      run(['ip', 'netns', 'exec', ns, 'nft', on ? 'add table inet qbcut; add chain inet qbcut out { type filter hook output priority 0; }; add rule inet qbcut out tcp dport 80 drop; add chain inet qbcut in { type filter hook input priority 0; }; add rule inet qbcut in tcp sport 5201 drop' : 'delete table inet qbcut']);
    const hooks: FloodHooks = {
      floodStarted: (fb) => cut(fb.client(LEGIT_CLIENT), true),
      floodEnded: async (fb) => {
        await new Promise((r) => setTimeout(r, 3500));
        cut(fb.client(LEGIT_CLIENT), false);
      },
    };
    const { summary } = await shortRun('c', hooks, 8);
    for (const s of FLOOD_SETUPS) {
      const m = summary.figures['many']![s]!;
      assert.ok(m.legit.total >= 30 && m.legit.answered === 0, `${s}: nothing answered during the flood: ${JSON.stringify(m.legit)}`);
      assert.ok(m.recovery_ms !== null && m.recovery_ms >= 3000, `${s}: recovery measured from the flood's end: ${m.recovery_ms}`);
      assert.ok(!(m.stream.ratio >= 0.5), `${s}: the stream's loss is seen: ${JSON.stringify(m.stream)}`);
      assert.equal(summary.targets_met['many']![s]!.legit, false);
    }
  });
});
