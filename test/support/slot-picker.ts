/**
 * Worker-thread body for src/sched/shared-slot.test.ts: builds an rr or wrr scheduler over a
 * shared state slot, as a data-path worker's engine does, makes `picks` picks as fast as it can
 * and posts how often it got each server (by weight order) and how many picks went unsynced.
 * Test-only.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { SchedHarness } from './sched-harness.js';

const { name, state, gate, weights, picks } = workerData as { name: 'rr' | 'wrr'; state: Int32Array; gate: Int32Array; weights: number[]; picks: number };
const h = new SchedHarness(name, { shared: { state, slot: 1 } });
const servers = weights.map((w, i) => h.add(`192.0.2.${11 + i}`, w));
const counts = new Array<number>(weights.length).fill(0);
counts[servers.indexOf(h.pick()!)]!++;
// start together: each thread waits at the gate until both are there
Atomics.add(gate, 0, 1);
while (Atomics.load(gate, 0) < 2);
for (let i = 1; i < picks; i++) counts[servers.indexOf(h.pick()!)]!++;
parentPort!.postMessage({ counts, unsynced: h.slots.reduce((n, s) => n + s.unsynced, 0) });
