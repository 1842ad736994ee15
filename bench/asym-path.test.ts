/**
 * The asymmetric benchmark's path check (asym-path.ts): a round that shows its set-up's path
 * passes; each way of taking another path, one field changed from a passing round, is caught.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pathProblem, type RoundTraffic } from './asym-path.js';
import type { AsymSetup, PathCounters } from './asym-setups.js';

const none: PathCounters = { ulvsConns: null, ulvsInPkts: null, ulvsOutPkts: null, decapsulated: null, nftPackets: null };
const direct: RoundTraffic = { requests: 100, bytes: 100 * 2 ** 20, directShare: 1.005 };
const viaDirector: RoundTraffic = { ...direct, directShare: 0 };
const good: [AsymSetup, RoundTraffic, PathCounters][] = [
  ['ulvs', viaDirector, { ...none, ulvsConns: 100, ulvsInPkts: 4000, ulvsOutPkts: 3000 }],
  ['ulvs-nofp', viaDirector, { ...none, ulvsConns: 101, ulvsInPkts: 4000, ulvsOutPkts: 3000 }],
  ['ulvs-dr-fwd', viaDirector, { ...none, ulvsConns: 97, ulvsInPkts: 4000, ulvsOutPkts: 0 }], // 3 SYNs reused connections in FIN_WAIT
  ['ulvs-dr', direct, { ...none, ulvsConns: 100, ulvsInPkts: 4000, ulvsOutPkts: 0 }],
  ['ulvs-tun', direct, { ...none, ulvsConns: 100, ulvsInPkts: 4000, ulvsOutPkts: 0, decapsulated: 4000 }],
  ['nft-dr', direct, { ...none, nftPackets: 3500 }],
];

test('a round that shows its set-up path passes', () => {
  for (const [s, t, c] of good) assert.equal(pathProblem(s, t, c), null, s);
});

test('each other path is caught', () => {
  const by = new Map(good.map(([s, t, c]) => [s, { t, c }]));
  const caught = (s: AsymSetup, t: Partial<RoundTraffic>, c: Partial<PathCounters>, re: RegExp) => assert.match(pathProblem(s, { ...by.get(s)!.t, ...t }, { ...by.get(s)!.c, ...c }) ?? 'passed', re, s);
  for (const s of by.keys()) caught(s, { bytes: 0, requests: 0 }, {}, /no bytes moved/);
  caught('ulvs-dr', { directShare: 0 }, {}, /only 0\.0 % of the reply bytes came by the direct-return links/); // replies through the director
  caught('ulvs-tun', { directShare: 0.5 }, {}, /only 50\.0 %/);
  caught('nft-dr', { directShare: 0.98 }, {}, /only 98\.0 %/);
  caught('ulvs', { directShare: 1 }, {}, /which this set-up does not use/);
  caught('ulvs-dr-fwd', { directShare: 1 }, {}, /which this set-up does not use/);
  caught('ulvs', {}, { ulvsOutPkts: 0 }, /NAT, yet no reply packet crossed ulvs/);
  caught('ulvs-dr', {}, { ulvsOutPkts: 5 }, /5 reply packets crossed ulvs/);
  caught('ulvs-tun', {}, { ulvsOutPkts: 5 }, /5 reply packets crossed ulvs/);
  caught('ulvs-dr', {}, { ulvsConns: 0 }, /ulvs scheduled 0 connections for 100 completed requests/);
  caught('ulvs-dr', {}, { ulvsInPkts: 99 }, /ulvs carried 99 packets for 100 completed requests/); // another balancer did the rest
  caught('ulvs-tun', {}, { ulvsInPkts: null }, /ulvs carried null packets/);
  caught('ulvs-tun', {}, { decapsulated: 0 }, /decapsulated 0 IPIP packets for 100 connections/); // e.g. forwarded by DR instead
  caught('ulvs-tun', {}, { decapsulated: null }, /decapsulated null/);
  caught('nft-dr', {}, { nftPackets: 99 }, /the nftables fwd rule matched 99 packets for 100 connections/);
  caught('nft-dr', {}, { nftPackets: null }, /matched null packets/);
});
