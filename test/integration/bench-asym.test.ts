/**
 * The asymmetric benchmark's set-ups (bench/asym.ts) cannot rot: a very short run (1 round of
 * 1 s, 8 connections) of ulvs NAT, ulvs DR, ulvs TUN and the nftables netdev DR peer must move
 * real bytes through the path each claims. The benchmark checks that itself after every round
 * (bench/asym-path.ts: the direct-return links' byte counters, ulvs's service counters, the real
 * servers' decapsulation counters, the nftables rule's counter) and reports a round that fails
 * it as failed; this test asserts that no round failed and looks at the counters itself. No
 * figure of performance is asserted (the machine is shared).
 *
 * Control: the same run with each path broken on purpose after its set-up started (the hook
 * `beforeLoad`): DR without its direct-return rule (the replies still arrive, through the
 * director: a wrong path, not a dead one), TUN with the real servers' decapsulators removed, the
 * nftables chain flushed. Each of those set-ups is reported failed for its own reason, ulvs NAT
 * in the same run still succeeds, and the bed is gone afterwards either way. Also: a stale
 * rs-setup record for one of the bed's new namespaces (the kernel reuses inode numbers) is
 * deleted by the bed (AsymBed.dropStaleRsRecords), so it cannot make the TUN set-up fail.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { runAsym } from '../../bench/asym.js';
import type { AsymBed } from '../../bench/asym-bed.js';
import { rsSetup, type AsymSetup } from '../../bench/asym-setups.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { nftMissing } from '../support/one-way.js';

const missing = ['wrk', 'nginx'].filter((t) => !['/usr/bin', '/usr/sbin'].some((d) => existsSync(join(d, t))));
const skip = needsRoot || nftMissing || (missing.length ? `needs ${missing.join(' and ')} (apt wrk nginx-light)` : false);
const SETUPS: AsymSetup[] = ['ulvs', 'ulvs-dr', 'ulvs-tun', 'nft-dr'];

describe('asymmetric benchmark set-ups', { skip }, () => {
  const resultsDir = mkdtempSync(join(tmpdir(), 'ulvs-asym-results-'));
  after(() => rmSync(resultsDir, { recursive: true, force: true }));

  /** one short run; `beforeLoad` also notes the bed's namespaces and the real servers' rs-setup records */
  async function shortRun(breakPath?: (s: AsymSetup, bed: AsymBed) => void) {
    const seen = { namespaces: [] as string[], records: [] as string[] };
    const out = await runAsym({
      rounds: 1,
      seconds: 1,
      connections: 8,
      setups: SETUPS,
      resultsDir,
      ulvsArgs: [],
      print: false,
      beforeLoad: (s, bed) => {
        if (!seen.namespaces.length) {
          seen.namespaces = bed.bed.namespaces;
          seen.records = bed.realServers.map((ns) => bed.rsRecord(ns));
          if (s !== 'ulvs-tun') {
            // a stale record (a deleted namespace's, whose inode number the kernel gave to one of
            // ours) is deleted, or rs-setup would refuse the TUN set-up; none: nothing deleted
            mkdirSync(dirname(seen.records[1]!), { recursive: true });
            writeFileSync(seen.records[1]!, '{"stale": true}\n');
            assert.deepEqual(bed.dropStaleRsRecords(), [seen.records[1]]);
            assert.deepEqual(bed.dropStaleRsRecords(), []);
          }
        }
        breakPath?.(s, bed);
      },
    });
    const left = run(['ip', 'netns', 'list']).split('\n').map((l) => l.split(' ')[0]);
    assert.deepEqual(seen.namespaces.filter((n) => left.includes(n)), [], 'every namespace of the bed deleted');
    assert.deepEqual(seen.records.filter((f) => existsSync(f)), [], "rs-setup's records removed");
    return out;
  }

  test('NAT, DR, TUN and the nftables peer each move bytes by the path they claim', async (t) => {
    const { result, summary } = await shortRun();
    assert.deepEqual(result.failures, {});
    for (const s of SETUPS) {
      assert.ok((summary.figures.gbps?.[s] ?? 0) > 0, `${s} moved bytes`);
      t.diagnostic(`${s}: ${JSON.stringify(result.path[s])} direct share ${summary.figures.direct_return_share?.[s]}`);
    }
    const [nat] = result.path.ulvs!;
    const [dr] = result.path['ulvs-dr']!;
    const [tun] = result.path['ulvs-tun']!;
    const [nft] = result.path['nft-dr']!;
    assert.ok(nat!['ulvsOutPkts']! > 0, 'NAT: replies crossed ulvs');
    assert.ok(summary.figures.direct_return_share!.ulvs! < 0.01, 'NAT: no reply by the direct links (a few bytes of neighbour discovery may pass)');
    assert.deepEqual([dr!['ulvsOutPkts'], tun!['ulvsOutPkts']], [0, 0], 'DR, TUN: no reply crossed ulvs');
    for (const s of ['ulvs-dr', 'ulvs-tun', 'nft-dr'] as const) assert.ok(summary.figures.direct_return_share![s]! >= 0.99, `${s}: replies by the direct links`);
    assert.ok(tun!['decapsulated']! >= tun!['ulvsConns']!, 'TUN: the real servers decapsulated the tunnelled requests');
    assert.ok(nft!['nftPackets']! > 0, 'nft-dr: its netdev rule forwarded the requests');
    assert.equal(summary.figures.director_cpu_s_per_gb?.['nft-dr'], 0, 'nft-dr: no director process');
    assert.ok(summary.ratios.ulvs?.['ulvs-tun']?.gbps !== undefined && summary.ratios['nft-dr']?.['ulvs-dr']?.director_pkts_per_gb !== undefined, 'ratios against both baselines');
  });

  test('control: each path broken on purpose is reported as that set-up failing; NAT in the same run is not', async () => {
    const { result } = await shortRun((s, bed) => {
      if (s === 'ulvs-dr') bed.directReturn(false);
      if (s === 'ulvs-tun') for (const ns of bed.realServers) rsSetup(bed, ns, ['--remove']);
      if (s === 'nft-dr') bed.ns(bed.director, ['nft', 'flush', 'chain', 'netdev', 'ulvsasym', 'ingress']);
    });
    assert.deepEqual(Object.keys(result.failures).sort(), ['nft-dr', 'ulvs-dr', 'ulvs-tun']);
    assert.match(result.failures['ulvs-dr']![0]!, /only 0\.0 % of the reply bytes came by the direct-return links/);
    assert.match(result.failures['ulvs-tun']![0]!, /no bytes moved/);
    assert.match(result.failures['nft-dr']![0]!, /no bytes moved/);
    assert.equal(result.samples.gbps?.ulvs?.length, 1, 'ulvs NAT measured');
  });
});
