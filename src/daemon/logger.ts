/**
 * The daemon's logs: JSON lines (pino, written synchronously so nothing is lost at exit) with
 * a level, a message and structured fields, `text` for people (`ulvsd: message`), or `journal`
 * for systemd's journal: the message alone, prefixed with its syslog priority as sd-daemon(3)
 * describes (`<6>` info, `<4>` warning, `<3>` error; journald stores it as PRIORITY= and adds
 * the time and the program's name itself, so neither is written). `auto` (the default) is
 * journal when stdout or stderr is connected to the journal (journalStream), else json. Each kind
 * of runtime message (health, quorum, config, ...) is rate-limited (a burst of 20, then 5 per
 * second); what was held back is reported on the next line of that kind as `suppressed`.
 * Start-up and life-cycle lines (kinds `startup`, `daemon`) are never held back.
 */
import { fstatSync } from 'node:fs';
import pino from 'pino';

export type Level = 'info' | 'warn' | 'error';
export interface Logger {
  log(level: Level, kind: string, msg: string, fields?: Record<string, unknown>): void;
}

const BURST = 20;
const PER_SEC = 5;

/** syslog priorities (sd-daemon(3) SD_INFO, SD_WARNING, SD_ERR) */
const PRIORITY: Record<Level, number> = { info: 6, warn: 4, error: 3 };

/**
 * True when $JOURNAL_STREAM (`DEVICE:INODE`, set by systemd for a service whose stdout or stderr
 * is the journal; systemd.exec(5)) names this process's fd 1 or 2: then the journal format is
 * the right one. A variable inherited by a process whose output goes elsewhere does not match.
 */
export function journalStream(env: NodeJS.ProcessEnv = process.env): boolean {
  const m = /^(\d+):(\d+)$/.exec(env['JOURNAL_STREAM'] ?? '');
  if (!m) return false;
  for (const fd of [1, 2]) {
    try {
      const st = fstatSync(fd, { bigint: true });
      if (st.dev === BigInt(m[1]!) && st.ino === BigInt(m[2]!)) return true;
    } catch {
      /* closed */
    }
  }
  return false;
}

export function createLogger(format: 'auto' | 'json' | 'text' | 'journal', now: () => number = () => Date.now()): Logger {
  if (format === 'auto') format = journalStream() ? 'journal' : 'json';
  const p = format === 'json' ? pino({ base: { name: 'ulvsd' }, timestamp: pino.stdTimeFunctions.isoTime }, pino.destination({ dest: 1, sync: true })) : null;
  // info to stdout, warnings and errors to stderr (both reach the journal under systemd)
  const line = (level: Level, msg: string) => (format === 'journal' ? `<${PRIORITY[level]}>${msg.replace(/\n/g, ' | ')}\n` : `ulvsd: ${msg}\n`);
  const buckets = new Map<string, { tokens: number; at: number; suppressed: number }>();
  return {
    log(level, kind, msg, fields = {}) {
      if (kind === 'startup' || kind === 'daemon') {
        if (p) p[level]({ kind, ...fields }, msg);
        else (level === 'info' ? process.stdout : process.stderr).write(line(level, msg));
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
      else (level === 'info' ? process.stdout : process.stderr).write(line(level, `${msg}${extra.suppressed ? ` (${extra.suppressed} similar messages suppressed)` : ''}`));
    },
  };
}
