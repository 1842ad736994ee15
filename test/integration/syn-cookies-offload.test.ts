/**
 * SYN-cookie connections in the kernel fast path (syn_cookies=1; core/syn-proxy.ts seqDelta,
 * bpf/fastpath.bpf.c translate_seq), through a live ulvsd:
 *   - a 20 MB download and a 20 MB upload over cookie connections arrive intact (SHA-256), and
 *     the engine forwards only a handful of their packets (the handshake, the packets before
 *     the offer, the close: forward_in + forward_out), the kernel the rest;
 *   - a streaming cookie connection, once offloaded, carries its delta in both flow entries.
 * Control: the same offloaded connection with its entries' delta written to 0 stalls (the
 * client sees the server's sequence numbers untranslated, the server the client's acks), and
 * goes on with no byte lost or changed once the delta is written back: so the transfer above
 * depended on the kernel's translation, and the stall check can fail.
 */
import { after, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { callAdmin } from '../../src/control/admin-client.js';
import { LAB } from '../../src/lab/testbed.js';
import type { DirectorBed } from '../../src/lab/director-bed.js';
import { needsRoot } from '../support/root.js';
import { downloadAndUpload } from '../support/transfer.js';
import { clientSeqDeltas } from '../support/flow-map-view.js';
import { PORT, sleep, startBed, stopBed, StreamClient, type Bed } from '../support/restart-bed.js';

const V = LAB.VIP;
const RS = [0, 1, 2].map(LAB.realServer);
/** HTTP on VIP:80 (the bed's servers on 8080), the echo streams on VIP:PORT, NAT */
const RULES = [`-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`), `-A -t ${V}:${PORT} -s rr`, ...RS.map((a) => `-a -t ${V}:${PORT} -r ${a}:${PORT} -m`)].join('\n') + '\n';

async function counters(bed: DirectorBed): Promise<Record<string, number>> {
  const j = (await callAdmin(bed.socket, 'GET', '/v1/counters')).json as { engine: Record<string, number>; datapath: Record<string, number> };
  return { ...j.engine, ...j.datapath };
}
const grew = (a: Record<string, number>, b: Record<string, number>, k: string) => (b[k] ?? 0) - (a[k] ?? 0);
/** IPVS's total packets (in + out) from /proc/net/ip_vs_stats: the engine's and the kernel's */
async function ipvsPackets(bed: DirectorBed): Promise<number> {
  const text = (await callAdmin(bed.socket, 'GET', '/v1/proc/ip_vs_stats')).text;
  const f = text.split('\n')[2]!.trim().split(/\s+/);
  return parseInt(f[1]!, 16) + parseInt(f[2]!, 16);
}
/** the packets of cookie connections the engine handled itself */
const ENGINE = ['forward_in', 'forward_out', 'send_synproxy_syn', 'send_synproxy_syn_again', 'send_synproxy_ack', 'drop_synproxy_early'];

async function offloadedNow(bed: DirectorBed, n: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if ((await counters(bed))['fastpath_active']! >= n) return true;
    await sleep(100);
  }
  return false;
}

describe('SYN-cookie connections offloaded to the kernel fast path', { skip: needsRoot }, () => {
  const beds: Bed[] = [];
  after(async () => {
    for (const b of beds) await stopBed(b);
  });

  test('syn_cookies=1: 20 MB down and 20 MB up intact, the engine forwarding only a handful of their packets', async (t: TestContext) => {
    const b = await startBed(['--sysctl', 'syn_cookies=1'], { rules: RULES, prefix: 'hq' });
    beds.push(b);
    const before = await counters(b.bed);
    const total0 = await ipvsPackets(b.bed);
    downloadAndUpload(b.bed, 20e6, 60_000);
    await sleep(1500); // the closes done, the last harvest (every 0.5 s) counted
    const now = await counters(b.bed);
    const engine = ENGINE.reduce((n, k) => n + grew(before, now, k), 0);
    const kernel = (await ipvsPackets(b.bed)) - total0 - engine;
    t.diagnostic(`2 cookie connections, 40 MB: the engine handled ${engine} packets, the kernel fast path ${kernel}; offloaded ${grew(before, now, 'offloaded')}`);
    assert.ok(grew(before, now, 'send_synproxy_ack') >= 2, 'both connections opened by the cookie handshake');
    assert.ok(grew(before, now, 'offloaded') >= 2, 'both offloaded');
    assert.ok(engine <= 100, `the engine handled ${engine} packets (handshake, the first 8, the close)`);
    assert.ok(kernel > 10 * engine, `the kernel forwarded the rest: ${kernel} packets`);
  });

  test("an offloaded cookie connection's entries carry its delta; control: written to 0 the stream stalls, written back it goes on intact", async () => {
    const b = await startBed(['--sysctl', 'syn_cookies=1'], { rules: RULES, prefix: 'hq' });
    beds.push(b);
    const ns = b.bed.bed.clients[0]!;
    const before = await counters(b.bed);
    const client = new StreamClient(ns, 1, ['--chunk', '4096', '--every-ms', '20']);
    await client.next('established', null);
    assert.ok(await offloadedNow(b.bed, 1), 'the connection is offloaded');
    assert.equal(grew(before, await counters(b.bed), 'send_synproxy_ack'), 1, 'opened by the cookie handshake');
    const deltas = clientSeqDeltas(b.bed.bed.director, LAB.client(0));
    assert.equal(deltas.length, 2, 'request and reply entry');
    assert.ok(deltas[0] !== 0 && deltas[0] === deltas[1], `the same non-zero delta in both: ${deltas}`);
    assert.equal((await client.progressed((await client.status()).perConn, 10_000)).n, 1, 'goes on while offloaded');

    clientSeqDeltas(b.bed.bed.director, LAB.client(0), 0); // break the translation
    await sleep(500); // what was in flight before
    const stalled = await client.progressed((await client.status()).perConn, 3_000);
    assert.equal(stalled.n, 0, 'no echo without the translation');

    assert.deepEqual(clientSeqDeltas(b.bed.bed.director, LAB.client(0), deltas[0]), [0, 0]); // mend it
    assert.equal((await client.progressed((await client.status()).perConn, 30_000)).n, 1, 'goes on once the delta is back');
    const fin = await client.next('final', 'SIGUSR2');
    assert.deepEqual({ errors: fin.errors, mismatches: fin.mismatches, lost: fin.lost }, { errors: 0, mismatches: 0, lost: 0 }, JSON.stringify(fin));
  });
});
