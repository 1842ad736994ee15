/**
 * The daemon modules' view of the log (logger.ts does the writing and rate limiting):
 * `info` and `warn` with a kind (default `daemon`, never rate-limited) and structured fields.
 */
import type { Logger } from './logger.js';

export interface DaemonLog {
  info(msg: string, kind?: string, fields?: Record<string, unknown>): void;
  warn(msg: string, kind?: string, fields?: Record<string, unknown>): void;
}

export function daemonLog(logger: Logger): DaemonLog {
  return {
    info: (msg, kind = 'daemon', fields) => logger.log('info', kind, msg, fields),
    warn: (msg, kind = 'daemon', fields) => logger.log('warn', kind, msg, fields),
  };
}
