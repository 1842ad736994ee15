/** The flood defences' clock (defense-feed.ts): MemAvailable read and passed in pages, the
 *  engines' states merged, each change logged at most once per defence per LOG_EVERY_MS with
 *  the count held back, and an unreadable /proc/meminfo warned once. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DefenseChange, DefenseStatus } from '../core/defense.js';
import { DefenseFeed, LOG_EVERY_MS, memAvailablePages } from './defense-feed.js';

const status = (on: number, mode: number): DefenseStatus => ({
  mode: { drop_entry: mode, drop_packet: 0, secure_tcp: 0 },
  on: { drop_entry: on, drop_packet: 0, secure_tcp: 0 },
  dropRate: 0,
  availPages: on ? 0 : 50,
  memPages: 1000,
  tablePages: on ? 0 : 50,
  memLow: 0,
  tableLow: on,
});
const change = (on: boolean): DefenseChange => ({ defense: 'drop_entry', on, mode: on ? 2 : 1, availPages: on ? 0 : 50, memPages: 1000, tablePages: on ? 0 : 50, amemthresh: 2 });

test('memAvailablePages: kB to 4096-byte pages; -1 without the line', () => {
  assert.equal(memAvailablePages('MemTotal:       16384000 kB\nMemFree:  100 kB\nMemAvailable:    8192000 kB\n'), 2048000);
  assert.equal(memAvailablePages('MemTotal: 1 kB\n'), -1);
});

test('changes logged at most once per defence per interval, the held ones counted; memory passed in pages', async () => {
  const lines: string[] = [];
  const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`WARN ${m}`) };
  let clock = 0;
  const fed: number[] = [];
  let script: { changes: DefenseChange[]; status: DefenseStatus }[][] = [];
  const pool = { defend: async (p: number) => (fed.push(p), script.shift() ?? [{ changes: [], status: status(0, 1) }]) };
  const feed = new DefenseFeed(pool, log, () => 4242, () => clock);
  assert.equal(feed.status, null);
  script = [[{ changes: [change(true)], status: status(1, 2) }, { changes: [], status: status(0, 1) }]];
  await feed.tick();
  assert.deepEqual(fed, [4242]);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^flood defence drop_entry on \(drop_entry=2, worker 0\): memory low, 0 pages available < amemthresh 2 \(connection table 0 pages free, host 1000 pages\)$/);
  assert.deepEqual([feed.status!.mode.drop_entry, feed.status!.on.drop_entry], [2, 1], 'merged over the two workers');
  // off and on again within the interval: held back
  clock = 1000;
  script = [[{ changes: [change(false)], status: status(0, 1) }]];
  await feed.tick();
  clock = 2000;
  script = [[{ changes: [change(true)], status: status(1, 2) }]];
  await feed.tick();
  assert.equal(lines.length, 1, 'held back');
  // the interval passed: one line with the state now and the count
  clock = LOG_EVERY_MS;
  script = [[{ changes: [], status: status(1, 2) }]];
  await feed.tick();
  assert.equal(lines.length, 2);
  assert.equal(lines[1], `flood defence drop_entry now on (drop_entry=2); 2 changes not logged in the last ${LOG_EVERY_MS / 1000} s`);
  // control: a change after a full interval is logged at once, with nothing held
  clock = 2 * LOG_EVERY_MS;
  script = [[{ changes: [change(false)], status: status(0, 1) }]];
  await feed.tick();
  assert.equal(lines.length, 3);
  assert.match(lines[2]!, /^flood defence drop_entry off \(drop_entry=1, worker 0\): 50 pages available, amemthresh 2/);
});

test('an unreadable /proc/meminfo: warned once, the engines told the host memory is unknown (-1); a failing pool is logged, never thrown', async () => {
  const lines: string[] = [];
  const log = { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`WARN ${m}`) };
  const fed: number[] = [];
  let fail = false;
  const pool = {
    defend: async (p: number) => {
      if (fail) throw new Error('worker gone');
      fed.push(p);
      return [{ changes: [], status: status(0, 1) }];
    },
  };
  const feed = new DefenseFeed(pool, log, () => {
    throw new Error('ENOENT');
  });
  await feed.tick();
  await feed.tick();
  assert.deepEqual(fed, [-1, -1]);
  assert.deepEqual(lines, ['WARN /proc/meminfo: ENOENT; the flood defences judge the connection table only']);
  fail = true;
  await feed.tick();
  assert.equal(lines[1], 'WARN flood defences not updated: worker gone');
});
