/**
 * What the flood tests ask of a running DirectorBed: how many of `n` concurrent HTTP requests
 * from client 0 to VIP:80 were answered (each a new connection, 3 s timeout), and ulvsd's
 * engine and data-path counters in one record (the data path's carry the kernel's syncookie_*).
 */
import { DirectorBed, SCRIPTS } from '../../src/lab/director-bed.js';
import { run } from '../../src/lab/shell.js';
import { LAB } from '../../src/lab/testbed.js';
import { callAdmin } from '../../src/control/admin-client.js';

export function answeredRequests(bed: DirectorBed, n: number): number {
  const out = run(['ip', 'netns', 'exec', bed.bed.clients[0]!, process.execPath, SCRIPTS.client, '--host', LAB.VIP, '--http', '80', '--requests', String(n), '--concurrent', '--timeout', '3000']);
  return out
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { kind: string; ok?: boolean })
    .filter((j) => j.kind === 'http' && j.ok).length;
}

export async function engineCounters(bed: DirectorBed): Promise<Record<string, number>> {
  const j = (await callAdmin(bed.socket, 'GET', '/v1/counters')).json as { engine: Record<string, number>; datapath: Record<string, number> };
  return { ...j.engine, ...j.datapath };
}
