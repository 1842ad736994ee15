/**
 * The dashboard's recent events (issue 15): the last `capacity` log lines of the daemon, kept
 * in memory for GET /v1/status and the live stream (http.ts). Filled by wrapping the daemon's
 * log (`recordingLog`), so every place that already logs a health change, a quorum change, a
 * VRRP or sync-role transition, a flood-defence or SYN-cookie mode switch, a reload or a rule
 * change is recorded without a second hook; nothing on the packet path logs, so this adds no
 * per-packet work.
 *
 * Bounds: `capacity` entries (oldest overwritten), each message cut to MAX_MESSAGE characters.
 * Entries are recorded before the logger's rate limit (logger.ts), so a burst the log holds
 * back is still seen here, within the ring's size.
 */
import type { DaemonLog } from './log.js';

/** Characters of one message kept (a log line can carry a long error text). */
export const MAX_MESSAGE = 300;
/** Entries kept by default. */
export const EVENT_RING_SIZE = 100;

export interface DaemonEvent {
  /** wall-clock time, ms since the epoch */
  at: number;
  level: 'info' | 'warn';
  /** the log line's kind: health, quorum, vrrp, defense, config, pressure, sync, daemon, ... */
  kind: string;
  msg: string;
}

export class EventRing {
  readonly #items: (DaemonEvent | undefined)[];
  #next = 0;
  /** events recorded since start (the ring keeps the last `capacity`) */
  recorded = 0;

  constructor(
    readonly capacity = EVENT_RING_SIZE,
    readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`event ring capacity must be a positive integer, not ${capacity}`);
    this.#items = new Array<DaemonEvent | undefined>(capacity);
  }

  push(level: DaemonEvent['level'], kind: string, msg: string): void {
    this.#items[this.#next] = { at: this.now(), level, kind, msg: msg.length > MAX_MESSAGE ? `${msg.slice(0, MAX_MESSAGE - 1)}…` : msg };
    this.#next = (this.#next + 1) % this.capacity;
    this.recorded++;
  }

  /** The kept events, newest first. */
  list(): DaemonEvent[] {
    const out: DaemonEvent[] = [];
    for (let k = 1; k <= this.capacity; k++) {
      const e = this.#items[(this.#next - k + this.capacity) % this.capacity];
      if (e) out.push(e);
    }
    return out;
  }
}

/** `log`, with every line also pushed into `ring` (kind `daemon` when none is given, as log.ts). */
export function recordingLog(log: DaemonLog, ring: EventRing): DaemonLog {
  return {
    info: (msg, kind = 'daemon', fields) => {
      ring.push('info', kind, msg);
      log.info(msg, kind, fields);
    },
    warn: (msg, kind = 'daemon', fields) => {
      ring.push('warn', kind, msg);
      log.warn(msg, kind, fields);
    },
  };
}
