/**
 * Checks shared by the direct-routing and tunnelling tests, whose director sees the client's
 * direction only. Test-only.
 */
import assert from 'node:assert/strict';
import type { SpawnSyncReturns } from 'node:child_process';
import type { TestContext } from 'node:test';
import type { DirectorBed } from '../../src/lab/director-bed.js';
import { downloadAndUpload } from './transfer.js';

/** A counter `name=N` from ulvsd's dump (SIGUSR1 text), 0 when absent. */
export const dumpCounter = (dump: string, name: string) => Number(new RegExp(`\\b${name}=(\\d+)`).exec(dump)?.[1] ?? 0);

/**
 * 100 MB down and 100 MB up through `service` (VIP:port): intact (SHA-256, transfer.ts), both
 * connections offloaded, fewer than 1,000 packets through ulvsd (100 MB of upload alone is
 * over 70,000 MTU-sized packets), the request bytes counted by IPVS, no reply packet or byte.
 */
export async function assertOneWayTransfer(bed: DirectorBed, adm: (args: string) => SpawnSyncReturns<string>, service: string, t: TestContext): Promise<void> {
  const before = await bed.dump();
  downloadAndUpload(bed, 100e6, 60_000);
  const dump = await bed.dump();
  const reads = dumpCounter(dump, 'reads') - dumpCounter(before, 'reads');
  assert.ok(dumpCounter(dump, 'offloaded') - dumpCounter(before, 'offloaded') >= 2, 'both connections offloaded');
  assert.ok(reads < 1000, `packets read by ulvsd for 200 MB: ${reads}`);
  t.diagnostic(`packets read by ulvsd for 100 MB each way: ${reads}`);
  const line = adm(`-L -n --stats --exact -t ${service}`).stdout.split('\n')[2]!;
  const [, , , inPkts, outPkts, inBytes, outBytes] = line.trim().split(/\s+/).map(Number);
  t.diagnostic(`IPVS counters: ${line.trim()}`);
  assert.ok(inBytes! > 100e6 && inPkts! > 1000, `request bytes counted: ${line}`);
  assert.equal(outPkts, 0, 'no replies cross ulvs');
  assert.equal(outBytes, 0);
}
