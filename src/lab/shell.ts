/**
 * Running iproute2 and friends, inside or outside a network namespace. Errors carry the
 * command line and its stderr.
 */
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';

export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly stderr: string,
    readonly status: number | null,
  ) {
    super(`${argv.join(' ')} failed (exit ${status}): ${stderr.trim()}`);
  }
}

/** Run a command, return its stdout; throw CommandError on failure. */
export function run(argv: string[], input?: string): string {
  try {
    return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: string; status?: number | null };
    throw new CommandError(argv, String(err.stderr ?? ''), err.status ?? null);
  }
}

/** Run and ignore failure (cleanup paths). Returns true on success. */
export function tryRun(argv: string[]): boolean {
  try {
    run(argv);
    return true;
  } catch {
    return false;
  }
}

export const inNs = (ns: string | null, argv: string[]): string[] => (ns ? ['ip', 'netns', 'exec', ns, ...argv] : argv);

export function spawnIn(ns: string | null, argv: string[], opts: SpawnOptions = {}): ChildProcess {
  const full = inNs(ns, argv);
  return spawn(full[0]!, full.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}
