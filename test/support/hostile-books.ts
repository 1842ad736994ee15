/**
 * The books of the hostile-packet test (test/integration/hostile.test.ts): every counter a
 * frame from the generator can end in, read at one moment, and the balances between two
 * readings. Test-only.
 *
 * The generator's frames take one road: its namespace's eth0 (link tx) -> the director's
 * `qhg0` (link rx; a veth drop counts at either end) -> the fast path at qhg0's tcx ingress,
 * which counts each frame in exactly one verdict of ulvs_verdicts for qhg0's ifindex
 * (redirect: forwarded by a flow entry; ok: another host's frame, to the IP layer, which drops
 * it; shot; next) -> for `next`, the tc capture filters on qhg0 (mirred into the TUN, each with
 * its action's packet count) or, failing them, the IP stack. Captured frames join the other
 * interfaces' in the TUN, whose every packet read by ulvsd is in exactly one engine outcome
 * (core/verdict.ts): the TUN's tx_packets (packets read) against the sum of the outcome
 * counters, and its tx_dropped (queue full) beside them.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/lab/shell.js';
import { callAdmin } from '../../src/control/admin-client.js';
import { OUTCOME_NAMES } from '../../src/core/verdict.js';
import type { FastVerdictCounts } from '../../src/datapath/tun/fast-verdicts.js';

export interface LinkCounts {
  rxPackets: number;
  rxDropped: number;
  txPackets: number;
  txDropped: number;
}

export function linkCounts(ns: string, dev: string): LinkCounts {
  const j = JSON.parse(run(['ip', '-n', ns, '-s', '-j', 'link', 'show', 'dev', dev])) as { stats64: { rx: { packets: number; dropped: number }; tx: { packets: number; dropped: number } } }[];
  const s = j[0]!.stats64;
  return { rxPackets: s.rx.packets, rxDropped: s.rx.dropped, txPackets: s.tx.packets, txDropped: s.tx.dropped };
}

/** packets counted by the mirred actions of the tc ingress filters on `dev` (the capture) */
export function capturedByTc(ns: string, dev: string): number {
  const j = JSON.parse(run(['ip', 'netns', 'exec', ns, 'tc', '-s', '-j', 'filter', 'show', 'dev', dev, 'ingress']) || '[]') as { options?: { actions?: { kind: string; stats: { packets: number } }[] } }[];
  let n = 0;
  for (const f of j) for (const a of f.options?.actions ?? []) if (a.kind === 'mirred') n += a.stats.packets;
  return n;
}

/** ulvs_verdicts of the fast path in `ns`, for interface index `ifindex` */
export function fastVerdicts(ns: string, ifindex: number): FastVerdictCounts {
  const dist = fileURLToPath(new URL('../../', import.meta.url));
  const script = `
    const fv = await import(${JSON.stringify(dist + 'src/datapath/tun/fast-verdicts.js')});
    const fd = fv.findFastVerdictsMap();
    if (fd === null) throw new Error('no fast path attached');
    const c = fv.readFastVerdicts(fd).get(${ifindex}) ?? { next: 0, redirect: 0, ok: 0, shot: 0, other: 0 };
    process.stdout.write(JSON.stringify(c));`;
  const out = spawnSync('ip', ['netns', 'exec', ns, process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return JSON.parse(out.stdout) as FastVerdictCounts;
}

/** The kernel's IP counters of the namespace (/proc/net/snmp, the Ip: lines). */
export function ipCounters(ns: string): Record<string, number> {
  const lines = run(['ip', 'netns', 'exec', ns, 'cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Ip:'));
  const names = lines[0]!.split(/\s+/).slice(1);
  const vals = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(names.map((n, i) => [n, vals[i]!]));
}

export async function engineOutcomes(socket: string): Promise<Record<string, number>> {
  const r = await callAdmin(socket, 'GET', '/v1/counters');
  assert.equal(r.status, 200, r.text);
  const e = (r.json as { engine: Record<string, number> }).engine;
  return Object.fromEntries(OUTCOME_NAMES.map((n) => [n, e[n] ?? 0]));
}

export interface Books {
  genTx: LinkCounts;
  qhg0: LinkCounts;
  fast: FastVerdictCounts;
  captured: number;
  tun: LinkCounts;
  engine: Record<string, number>;
  ip: Record<string, number>;
}

export interface BooksWhere {
  gen: string;
  director: string;
  ifindex: number;
  socket: string;
}

/**
 * One reading, taken when the TUN and the engine are still: the TUN's counts and the engine's
 * outcomes read twice 200 ms apart must agree (packets the kernel has handed to a worker's
 * reads but the worker has not yet counted would otherwise show as a difference; a real
 * server's retransmitted SYN-ACK to a spoofed client can cross the TUN at any time). Throws
 * when no still moment comes within `ms`.
 */
export async function readBooks(w: BooksWhere, ms = 30_000): Promise<Books> {
  const t0 = Date.now();
  for (;;) {
    const a = await readOnce(w);
    await new Promise((r) => setTimeout(r, 200));
    const b = await readOnce(w);
    if (JSON.stringify([a.tun, a.engine]) === JSON.stringify([b.tun, b.engine])) return b;
    if (Date.now() - t0 > ms) throw new Error(`the TUN and the engine did not stand still for 200 ms within ${ms} ms`);
  }
}

async function readOnce(w: BooksWhere): Promise<Books> {
  return {
    genTx: linkCounts(w.gen, 'eth0'),
    qhg0: linkCounts(w.director, 'qhg0'),
    fast: fastVerdicts(w.director, w.ifindex),
    captured: capturedByTc(w.director, 'qhg0'),
    tun: linkCounts(w.director, 'ulvs0'),
    engine: await engineOutcomes(w.socket),
    ip: ipCounters(w.director),
  };
}

/** `after - before`, field by field, for a flat record of numbers */
export function delta<T extends object>(a: T, b: T): T {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) out[k] = (v as number) - ((a as Record<string, number>)[k] ?? 0);
  return out as T;
}

/** One balance: `total` must equal the sum of `terms`; returns the unexplained difference. */
export interface Balance {
  name: string;
  total: number;
  terms: Record<string, number>;
}
export const unexplained = (b: Balance): number => b.total - Object.values(b.terms).reduce((a, x) => a + x, 0);

/** What the generator reports of its own TAP (src/lab/hostile.ts `tap`). */
export interface TapReport {
  rx_packets: number;
  rx_dropped: number;
  mirred_packets: number;
  mirred_drops: number;
  mirred_overlimits: number;
}

/**
 * The balances from the generator's count `sent`, its TAP's counts and the deltas of two
 * readings:
 *   frames sent = frames the TAP received (+ its rx drops)
 *   frames the TAP received = frames its mirred action handled
 *   frames mirred handled = frames that left the generator's eth0 (+ mirred's drops and
 *     overlimits, + eth0's tx drops)
 *   frames that left = frames qhg0 received (+ its rx drops)
 *   frames qhg0 received = fast path next + redirect + ok + shot + other (on qhg0)
 *   packets ulvsd read from the TUN = the sum of the engine's outcome counters
 */
export function balances(sent: number, tap: TapReport, a: Books, b: Books): Balance[] {
  const gen = delta(a.genTx, b.genTx);
  const q = delta(a.qhg0, b.qhg0);
  const f = delta(a.fast, b.fast);
  const tun = delta(a.tun, b.tun);
  const eng = delta(a.engine, b.engine);
  return [
    { name: 'generator -> its TAP', total: sent, terms: { tap_rx: tap.rx_packets, tap_rx_dropped: tap.rx_dropped } },
    { name: 'TAP -> mirred', total: tap.rx_packets, terms: { mirred: tap.mirred_packets } },
    { name: 'mirred -> its eth0', total: tap.mirred_packets, terms: { eth0_tx: gen.txPackets, eth0_tx_dropped: gen.txDropped, mirred_drops: tap.mirred_drops, mirred_overlimits: tap.mirred_overlimits } },
    { name: 'its eth0 -> director qhg0', total: gen.txPackets, terms: { qhg0_rx: q.rxPackets, qhg0_rx_dropped: q.rxDropped } },
    { name: 'qhg0 -> fast path verdicts', total: q.rxPackets, terms: { ...f } },
    { name: 'TUN read -> engine outcomes', total: tun.txPackets, terms: { ...eng } },
  ];
}
