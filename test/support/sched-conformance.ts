/**
 * The conformance suite every scheduler passes (house rule 7). Properties:
 *  - an empty service yields null;
 *  - a quiesced (weight 0) or OVERLOAD-flagged server is never picked for a new flow;
 *  - with no usable server the pick is null;
 *  - servers removed while in use are never returned afterwards, and nothing throws;
 *  - dry runs (explain) give the answer a real pick would give next, and commit nothing;
 *  - the long-run distribution matches what the algorithm promises (weighted, equal, or
 *    all on the highest weight), within tolerance.
 * Any skipped property must say why.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SchedHarness } from './sched-harness.js';
import { Prng } from './prng.js';

export interface SuiteOptions {
  /** weighted: share ~ weight; equal: same share whatever the weight; highest: all to the top weight */
  distribution: 'weighted' | 'equal' | 'highest';
  /** the flow key the scheduler hashes on; vary it in distribution tests */
  keyedOn?: 'client' | 'vaddr';
  /** each pick opens a connection that stays active (load-based schedulers need it to spread) */
  accumulate?: boolean;
  skip?: Partial<Record<'dryRun' | 'distribution', string>>;
}

export function runSchedulerSuite(name: string, o: SuiteOptions): void {
  const r = new Prng(name.length * 7919 + name.charCodeAt(0));
  const randomFlow = (h: SchedHarness) => {
    h.ctx.caddr = r.u32();
    h.ctx.cport = 1024 + r.int(60000);
    if (o.keyedOn === 'vaddr') h.ctx.vaddr = (0xcb007100 | r.int(256)) + (r.int(64) << 8);
  };

  test(`${name}: empty service -> null`, () => {
    const h = new SchedHarness(name);
    assert.equal(h.pick(), null);
  });

  test(`${name}: never picks a quiesced or overloaded server; null when none is usable`, () => {
    const h = new SchedHarness(name);
    const q = h.add('192.0.2.11', 0);
    const ok = h.add('192.0.2.12', 2);
    const over = h.add('192.0.2.13', 5);
    over.overloaded = true;
    let got = 0;
    for (let i = 0; i < 2000; i++) {
      randomFlow(h);
      const d = h.pick();
      assert.ok(d === null || d === ok, `picked ${d?.addr}`);
      if (d === ok) got++;
    }
    assert.ok(got > 0, 'the usable server is picked at least sometimes');
    h.setWeight(ok, 0);
    for (let i = 0; i < 500; i++) {
      randomFlow(h);
      assert.equal(h.pick(), null);
    }
    void q;
  });

  test(`${name}: servers removed while in use are never returned`, () => {
    const h = new SchedHarness(name);
    const ds = [11, 12, 13, 14, 15].map((n) => h.add(`192.0.2.${n}`, 1 + (n % 3)));
    const removed = new Set<unknown>();
    for (let i = 0; i < 3000; i++) {
      randomFlow(h);
      const d = h.pick();
      assert.ok(d === null || !removed.has(d), 'returned a removed server');
      if (d && o.accumulate) d.activeConns++;
      if (i % 600 === 599) {
        const victim = ds.find((x) => !removed.has(x))!;
        h.del(victim);
        removed.add(victim);
      }
    }
  });

  test(`${name}: a dry run answers like the next real pick and commits nothing`, { skip: o.skip?.dryRun }, () => {
    const h = new SchedHarness(name);
    [11, 12, 13].forEach((n, i) => h.add(`192.0.2.${n}`, i + 1));
    for (let i = 0; i < 300; i++) {
      randomFlow(h);
      const a = h.pick({ dryRun: true });
      const b = h.pick({ dryRun: true });
      const c = h.pick();
      assert.equal(a, b, 'two dry runs agree');
      assert.equal(a, c, 'the dry run predicted the real pick');
      if (c && o.accumulate) c.activeConns++;
    }
  });

  test(`${name}: distribution over weights 1,2,3 is ${o.distribution}`, { skip: o.skip?.distribution }, () => {
    const h = new SchedHarness(name);
    const ds = [1, 2, 3].map((w, i) => h.add(`192.0.2.${11 + i}`, w));
    const n = 6000;
    const count = new Map(ds.map((d) => [d, 0]));
    for (let i = 0; i < n; i++) {
      randomFlow(h);
      const d = h.pick();
      assert.ok(d !== null);
      count.set(d, count.get(d)! + 1);
      if (o.accumulate) d.activeConns++;
    }
    const share = ds.map((d) => count.get(d)! / n);
    const want = o.distribution === 'weighted' ? [1 / 6, 2 / 6, 3 / 6] : o.distribution === 'equal' ? [1 / 3, 1 / 3, 1 / 3] : [0, 0, 1];
    share.forEach((s, i) => assert.ok(Math.abs(s - want[i]!) < 0.05, `share ${share.map((x) => x.toFixed(3))} vs ${want.map((x) => x.toFixed(3))}`));
  });
}
