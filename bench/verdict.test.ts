/** The benchmark's verdict (verdict.ts): round order, paired ratios, bars judged on their median. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judge, minMax, pairedRatios, roundOrder } from './verdict.js';

test('round order: the paired group stays together, units rotate, odd rounds run backwards', () => {
  const all = ['none', 'nft', 'haproxy', 'ulvs', 'ulvs-exact'];
  const orders = [0, 1, 2, 3, 4].map((r) => roundOrder(all, r));
  assert.deepEqual(orders[0], ['none', 'nft', 'ulvs', 'ulvs-exact', 'haproxy']);
  assert.deepEqual(orders[1], ['none', 'haproxy', 'ulvs-exact', 'ulvs', 'nft']);
  assert.deepEqual(orders[2], ['haproxy', 'none', 'nft', 'ulvs', 'ulvs-exact']);
  for (const o of orders) {
    assert.deepEqual([...o].sort(), [...all].sort(), 'every set-up once per round');
    const at = (s: string) => o.indexOf(s);
    assert.equal(Math.abs(at('nft') - at('ulvs')), 1, `nft next to ulvs in ${o.join(',')}`);
    assert.equal(Math.abs(at('ulvs') - at('ulvs-exact')), 1);
  }
  const nftFirst = orders.map((o) => o.indexOf('nft') < o.indexOf('ulvs'));
  assert.deepEqual(nftFirst, [true, false, true, false, true], 'nft and ulvs alternate which goes first');
  assert.ok(new Set(orders.map((o) => o[0])).size >= 3, 'the first slot is not always the same set-up');
});

test('round order of two set-ups alternates; one set-up is unchanged', () => {
  assert.deepEqual([0, 1, 2, 3].map((r) => roundOrder(['nft', 'ulvs'], r).join()), ['nft,ulvs', 'ulvs,nft', 'nft,ulvs', 'ulvs,nft']);
  assert.deepEqual(roundOrder(['ulvs'], 3), ['ulvs']);
  assert.deepEqual(roundOrder(['none', 'haproxy'], 1), ['none', 'haproxy'], 'rotated by one, then backwards');
});

test('paired ratios take each round on its own and skip rounds where either has no figure', () => {
  assert.deepEqual(pairedRatios([10, 20, null, 40], [5, 40, 1, 0]), [2, 0.5], 'round 3: no ulvs figure; round 4: peer 0');
  assert.deepEqual(pairedRatios(undefined, [1]), []);
  assert.deepEqual(minMax([3, null, 1, NaN, 2]), [1, 3]);
  assert.ok(minMax([]).every(Number.isNaN));
});

test('a drifting machine: every round gives the same 0.95 though the figures halve', () => {
  // the machine's speed halves over the run; ulvs is 5 % behind nft in every round
  const speed = [1, 0.9, 0.75, 0.6, 0.5];
  const nft = speed.map((k) => 10 * k);
  const ulvs = speed.map((k) => 9.5 * k);
  const v = judge({ metric: 'four_streams_bps', peer: 'nft', min: 1 }, 'ulvs', { 'four_streams_bps/ulvs': ulvs, 'four_streams_bps/nft': nft });
  assert.equal(v.median, 0.95);
  assert.equal(v.met, false);
  assert.equal(v.roundsMet, 0);
  assert.equal(v.bar, 'four_streams_bps ulvs/nft >= 1');
});

test('bars: median paired ratio decides, rounds that met it are counted, lower-is-better bars use max', () => {
  const up = judge({ metric: 'http_conns_per_s', peer: 'nft', min: 1.1 }, 'ulvs', { 'http_conns_per_s/ulvs': [12, 11, 10, 13, 12], 'http_conns_per_s/nft': [10, 10, 10, 10, 10] });
  assert.deepEqual(up.ratios, [1.2, 1.1, 1, 1.3, 1.2]);
  assert.equal(up.median, 1.2);
  assert.equal(up.low, 1);
  assert.equal(up.high, 1.3);
  assert.equal(up.roundsMet, 4);
  assert.equal(up.met, true);
  const down = judge({ metric: 'latency_p99_ms', peer: 'nft', max: 1 }, 'ulvs', { 'latency_p99_ms/ulvs': [1.1, 0.9, 1.2], 'latency_p99_ms/nft': [1, 1, 1] });
  assert.equal(down.median, 1.1);
  assert.equal(down.met, false, 'p99 above nft in the median round');
  assert.equal(down.roundsMet, 1);
  const none = judge({ metric: 'udp_64b_pps', peer: 'nft', min: 1 }, 'ulvs', {});
  assert.equal(none.met, false, 'a bar without figures is not met');
  assert.equal(none.median, null);
});
