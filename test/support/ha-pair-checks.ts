/**
 * Checks of the HA pair's failover tests (ha-failover.test.ts, ha-failover-dr.test.ts) on a
 * running Pair (src/lab/pair.ts) and the stream client's connections (stream-status.ts):
 * established, listed / waitListed (a director's `ulvsadm -L -c -n`), packets (its engines'
 * counters), across (survival of the connections across an event), cutD1 (the takeover by
 * link cut) and assertFastPathCarries (a director's NIC fast path carries them). Test-only.
 */
import assert from 'node:assert/strict';
import type { Pair } from '../../src/lab/pair.js';
import { PAIR } from '../../src/lab/pair-bed.js';
import { flowMapView } from './flow-map-view.js';
import { streamStatus, type Stream, type StreamStatus } from './stream-status.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves when the stream client says its `n` connections are open; throws after 30 s. */
export async function established(s: Stream, n: number): Promise<void> {
  for (let t0 = Date.now(); !s.lines.some((l) => l['event'] === 'established'); await sleep(50)) if (Date.now() - t0 > 30_000) throw new Error(`${n} connections not established in 30 s: ${JSON.stringify(s.lines.slice(-3))}`);
}

/** Connections of the VIP in director i's `ulvsadm -L -c -n` in state ESTABLISHED. */
export const listed = (pair: Pair, i: number) => pair.adm(i, ['-L', '-c', '-n']).split('\n').filter((l) => l.includes('ESTABLISHED') && l.includes(`${PAIR.VIP}:${PAIR.VPORT}`)).length;

/** Until director i lists at least `n` (listed); returns the ms it took, throws after `ms`. */
export async function waitListed(pair: Pair, i: number, n: number, ms = 20_000): Promise<number> {
  const t0 = Date.now();
  for (;;) {
    const k = listed(pair, i);
    if (k >= n) return Date.now() - t0;
    if (Date.now() - t0 > ms) throw new Error(`director ${i + 1} lists ${k} of ${n} connections after ${ms} ms`);
    await sleep(250);
  }
}

/** Packets director i's engines counted (both directions, fast path included). */
export async function packets(pair: Pair, i: number): Promise<number> {
  const s = await pair.api<{ totals: { counters: number[] } }>(i, '/v1/snapshot');
  return s ? s.totals.counters[1]! + s.totals.counters[2]! : -1; // Stat.INPKTS, Stat.OUTPKTS
}

export interface Across {
  /** Date.now() when the event began */
  at: number;
  gapMedian: number;
  gapMax: number;
  survivors: number;
  errors: number;
  mismatches: number;
  samples: string[];
}

/**
 * Around an event (cut, kill): the baseline just before, then `runMs` of traffic with a status
 * (25 s: a connection's TCP retransmission backoff may hold it several seconds after the takeover)
 * every ~100 ms. Per connection the longest time without an echo across the event (the
 * client's maxStallMs counts an open gap up to now, and a closed one whole, so the maximum over
 * the polls is the gap): its median is the interruption a connection saw (the takeover time as
 * the application sees it, including the 100 ms between messages). Survivors: connections that
 * received in the last 5 s, stalled less than 2 s there, and got more than before the event.
 */
export async function across(s: Stream, event: () => Promise<void> | void, runMs = 25_000): Promise<Across> {
  const before = await streamStatus(s);
  const t0 = Date.now();
  await event();
  const gap = new Array<number>(before.perConn.length).fill(0);
  const note = (st: StreamStatus) => st.maxStallMs.forEach((g, k) => (gap[k] = Math.max(gap[k]!, g)));
  while (Date.now() - t0 < runMs - 5000) {
    note(await streamStatus(s));
    await sleep(100);
  }
  const mid = await streamStatus(s);
  note(mid);
  await sleep(5000);
  const end = await streamStatus(s);
  const survivors = end.perConn.filter((r, k) => r > mid.perConn[k]! && end.maxStallMs[k]! < 2000 && r > before.perConn[k]!).length;
  const sorted = [...gap].sort((a, b) => a - b);
  return { at: t0, gapMedian: sorted[sorted.length >> 1]!, gapMax: sorted[sorted.length - 1]!, survivors, errors: end.errors, mismatches: end.mismatches, samples: end.errorSamples };
}

/** Packets director i's workers read from the TUN (the engine's per-packet path). */
export async function tunReads(pair: Pair, i: number): Promise<number> {
  const c = await pair.api<{ datapath: { reads: number } }>(i, '/v1/counters');
  if (c === null) throw new Error(`director ${i + 1}'s ulvsd does not answer`);
  return c.datapath.reads;
}

/**
 * Director i's NIC fast path over `ms` of traffic (flow-map-view.ts): its flow map's entries
 * for the pair's client at the end (by enum flow_dir), the packets the slots of the client's
 * offloaded entries counted meanwhile, and the packets its workers read from the TUN meanwhile.
 * A connection the fast path carries adds to slotPackets and not to reads.
 */
export async function fastPathWindow(pair: Pair, i: number, ms = 3000): Promise<{ byDir: number[]; slotPackets: number; reads: number }> {
  const ns = pair.net.directors[i]!;
  const f0 = flowMapView(ns, PAIR.client);
  const r0 = await tunReads(pair, i);
  await sleep(ms);
  const r1 = await tunReads(pair, i);
  const f1 = flowMapView(ns, PAIR.client);
  return { byDir: f1.clientByDir, slotPackets: f1.clientSlotPackets - f0.clientSlotPackets, reads: r1 - r0 };
}

/**
 * d1's links cut, with unicast flooding to d2 off meanwhile (else the bridge floods d1's frames
 * to d2 once d1's port is down, and ulvsd's tc capture takes them before d2 is MASTER): the
 * connections across the cut, the packets d2's engines counted meanwhile (fast path included),
 * and how long after the cut d2's sync group G_NAT became MASTER (ms).
 */
export async function cutD1(pair: Pair, s: Stream): Promise<Across & { forwarded: number; masterMs: number }> {
  pair.net.setFlood(1, false);
  const p2 = await packets(pair, 1);
  const r = await across(s, () => pair.net.setLinks(0, false));
  const forwarded = (await packets(pair, 1)) - p2;
  pair.net.setFlood(1, true);
  const g = (await pair.vrrp(1))?.groups.find((x) => x.name === 'G_NAT') as { since?: number } | undefined;
  return { ...r, forwarded, masterMs: (g?.since ?? NaN) - r.at };
}

/**
 * Director i's NIC fast path carries the `n` connections of the pair's client (fastPathWindow):
 * at least n - 2 flow entries of each enum flow_dir in `dirs`, more than 10 n packets counted in
 * their slots in 3 s (each connection sends >= 10 a second), fewer than n read by its workers
 * from the TUN meanwhile. Prints what it saw, prefixed by `label`.
 */
export async function assertFastPathCarries(pair: Pair, i: number, n: number, dirs: number[], label: string): Promise<void> {
  const w = await fastPathWindow(pair, i);
  const d = `d${i + 1}`;
  console.log(`# ${label}${d}'s fast path: flow entries by flow_dir ${JSON.stringify(w.byDir)}; in 3 s its slots counted ${w.slotPackets} packets, its workers read ${w.reads} from the TUN`);
  for (const k of dirs) assert.ok(w.byDir[k]! >= n - 2, `${d}'s flow map: ${JSON.stringify(w.byDir)} by flow_dir for ${n} connections; TUN reads in 3 s: ${w.reads}`);
  assert.ok(w.slotPackets > n * 10, `${d}'s fast path counted ${w.slotPackets} packets in 3 s`);
  assert.ok(w.reads < n, `${d}'s workers read ${w.reads} packets in 3 s: not offloaded`);
}
