/**
 * The daemon's logs: JSON lines (pino, written synchronously so nothing is lost at exit) with
 * a level, a message and structured fields, or `text` for people (`ulvsd: message`). Each kind
 * of runtime message (health, quorum, config, ...) is rate-limited (a burst of 20, then 5 per
 * second); what was held back is reported on the next line of that kind as `suppressed`.
 * Start-up and life-cycle lines (kinds `startup`, `daemon`) are never held back.
 */
import pino from 'pino';

export type Level = 'info' | 'warn' | 'error';
export interface Logger {
  log(level: Level, kind: string, msg: string, fields?: Record<string, unknown>): void;
}

const BURST = 20;
const PER_SEC = 5;

export function createLogger(format: 'json' | 'text', now: () => number = () => Date.now()): Logger {
  const p = format === 'json' ? pino({ base: { name: 'ulvsd' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: true })) : null;
  const buckets = new Map<string, { tokens: number; at: number; suppressed: number }>();
  return {
    log(level, kind, msg, fields = {}) {
      if (kind === 'startup' || kind === 'daemon') {
        if (p) p[level]({ kind, ...fields }, msg);
        else (level === 'info' ? process.stdout : process.stderr).write(`ulvsd: ${msg}\n`);
        return;
      }
      const t = now();
      const b = buckets.get(kind) ?? { tokens: BURST, at: t, suppressed: 0 };
      b.tokens = Math.min(BURST, b.tokens + ((t - b.at) / 1000) * PER_SEC);
      b.at = t;
      buckets.set(kind, b);
      if (b.tokens < 1) {
        b.suppressed++;
        return;
      }
      b.tokens -= 1;
      const extra = b.suppressed ? { suppressed: b.suppressed } : {};
      b.suppressed = 0;
      if (p) p[level]({ kind, ...fields, ...extra }, msg);
      else (level === 'info' ? process.stdout : process.stderr).write(`ulvsd: ${msg}${extra.suppressed ? ` (${extra.suppressed} similar messages suppressed)` : ''}\n`);
    },
  };
}
