/**
 * What one run of a checker gives (checks.ts, smtp-check.ts, ping-check.ts), and the rule for
 * a check this director could not make for want of its own resources: it says nothing about the
 * real server, so it resolves with `notRun` (the errno name) and the monitor keeps the state.
 */
export interface CheckResult {
  ok: boolean;
  reason: string;
  /** the check did not run: this director lacked a resource (the errno name, RESOURCE_ERRORS) */
  notRun?: string;
  /** MISC_CHECK with misc_dynamic: exit code - 2; null = back to the configured weight (exit 0) */
  weight?: number | null;
}

export const ms = (s: number) => Math.max(1, Math.round(s * 1000));

/** errno names that mean the director, not the server, is out of something: no descriptor
 *  (EMFILE per process, ENFILE system-wide), no process or memory for fork (EAGAIN, ENOMEM) */
export const RESOURCE_ERRORS: ReadonlySet<string> = new Set(['EMFILE', 'ENFILE', 'EAGAIN', 'ENOMEM']);

/** The result for error `e` of check `what`: not run when it is the director's own shortage. */
export function failed(e: NodeJS.ErrnoException, what: string, failedText: string): CheckResult {
  const code = e.code ?? '';
  if (RESOURCE_ERRORS.has(code)) return { ok: false, notRun: code, reason: `${what} not run: ${code} on this director (${e.message})` };
  return { ok: false, reason: failedText };
}

