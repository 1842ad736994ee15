/**
 * The stream client's status (src/lab/stream.ts, started by Pair.stream): on SIGUSR1 it prints
 * one `{"event":"status", ...}` line with what every connection has done so far. Test-only.
 */
import type { ChildProcess } from 'node:child_process';

export type Stream = { lines: Record<string, unknown>[]; proc: ChildProcess };

export interface StreamStatus {
  established: number;
  errors: number;
  errorSamples: string[];
  mismatches: number;
  /** bytes echoed back, per connection */
  perConn: number[];
  maxStallMs: number[];
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Ask the client for a status line (SIGUSR1) and return it; throws after 10 s without one. */
export async function streamStatus(s: Stream): Promise<StreamStatus> {
  const from = s.lines.length;
  s.proc.kill('SIGUSR1');
  for (let t0 = Date.now(); ; await sleep(20)) {
    const l = s.lines.slice(from).find((x) => x['event'] === 'status');
    if (l) return l as unknown as StreamStatus;
    if (Date.now() - t0 > 10_000) throw new Error('the stream client gave no status');
  }
}
