/**
 * Checks shared by the direct-routing and tunnelling tests, whose director sees the client's
 * direction only. Test-only.
 */
import assert from 'node:assert/strict';
import type { SpawnSyncReturns } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { TestContext } from 'node:test';
import type { DirectorBed } from '../../src/lab/director-bed.js';
import { run } from '../../src/lab/shell.js';
import { LAB } from '../../src/lab/testbed.js';
import { downloadAndUpload } from './transfer.js';

/** A counter `name=N` from ulvsd's dump (SIGUSR1 text), 0 when absent. */
export const dumpCounter = (dump: string, name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(dump)?.[1] ?? 0);

/**
 * `bytes` (200 MB unless told) down and as many up through `service` (VIP:port): intact (SHA-256,
 * transfer.ts), both connections offloaded, fewer than 1,000 packets through ulvsd (100 MB of
 * upload alone is over 70,000 MTU-sized packets), the request bytes counted by IPVS, no reply
 * packet or byte.
 */
export async function assertOneWayTransfer(bed: DirectorBed, adm: (args: string) => SpawnSyncReturns<string>, service: string, t: TestContext, bytes = 200e6): Promise<void> {
  const before = await bed.dump();
  downloadAndUpload(bed, bytes, 120_000);
  const dump = await bed.dump();
  const reads = dumpCounter(dump, 'reads') - dumpCounter(before, 'reads');
  assert.ok(dumpCounter(dump, 'offloaded') - dumpCounter(before, 'offloaded') >= 2, 'both connections offloaded');
  assert.ok(reads < 1000, `packets read by ulvsd for ${bytes / 1e6} MB each way: ${reads}`);
  t.diagnostic(`packets read by ulvsd for ${bytes / 1e6} MB each way: ${reads}`);
  const line = adm(`-L -n --stats --exact -t ${service}`).stdout.split('\n')[2]!;
  const [, , , inPkts, outPkts, inBytes, outBytes] = line.trim().split(/\s+/).map(Number);
  t.diagnostic(`IPVS counters: ${line.trim()}`);
  assert.ok(inBytes! > bytes && inPkts! > 1000, `request bytes counted: ${line}`);
  assert.equal(outPkts, 0, 'no replies cross ulvs');
  assert.equal(outBytes, 0);
}

/** Skip reason for tests that count packets at a real server with nftables. */
export const nftMissing = ['/usr/sbin/nft', '/usr/bin/nft'].some((f) => existsSync(f)) ? false : 'needs nft (apt nftables) to look at packets at a real server';

/** Counters at real server `ns`'s input (after any decapsulation): packets from the client to
 *  VIP:80 with TTL 63 (one hop: the director), and every other packet to port 80. */
function arrivals(ns: string): { read(): { expected: number; other: number }; remove(): void } {
  const table = 'ulvsoneway';
  const nft = (script: string) => run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], script);
  nft(`table ip ${table} {\n chain seen {\n  type filter hook input priority 0;\n  ip saddr ${LAB.client(0)} ip daddr ${LAB.VIP} tcp dport 80 ip ttl 63 counter\n  tcp dport 80 counter\n }\n}\n`);
  return {
    read() {
      const n = [...run(['ip', 'netns', 'exec', ns, 'nft', 'list', 'table', 'ip', table]).matchAll(/packets (\d+)/g)].map((m) => Number(m[1]));
      return { expected: n[0] ?? 0, other: (n[1] ?? 0) - (n[0] ?? 0) };
    },
    remove() {
      nft(`delete table ip ${table}\n`);
    },
  };
}

/**
 * Requests and a 5 MB download through VIP:80 arrive at every real server from the client,
 * addressed to the VIP, port 80, TTL one less (at least 10 packets each; `what` names them in
 * messages), and no other packet to port 80 does.
 */
export function assertArrivals(bed: DirectorBed, what: string): void {
  const seen = bed.bed.realServers.map(arrivals);
  try {
    const got = bed.client(['--requests', '6', '--timeout', '3000']);
    assert.equal(got.filter((x) => x['ok']).length, 6);
    const [get] = bed.client(['--get-bytes', String(5e6), '--timeout', '20000'], 0, 60_000); // its ACKs: the fast path
    assert.equal(get?.['ok'], true, JSON.stringify(get));
    for (const [i, x] of seen.map((s) => s.read()).entries()) {
      assert.ok(x.expected >= 10, `real server ${i + 1}: ${what} ${JSON.stringify(x)}`);
      assert.equal(x.other, 0, `real server ${i + 1}: no packet with another address, port or TTL`);
    }
  } finally {
    for (const s of seen) s.remove();
  }
}
