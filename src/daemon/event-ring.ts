/**
 * The dashboard's recent events (issue 15): the last `capacity` log lines of the daemon, kept
 * in memory for GET /v1/status and the live stream (http.ts). Filled by wrapping the daemon's
 * log (`recordingLog`), so every place that already logs a health change, a quorum change, a
 * VRRP or sync-role transition, a flood-defence or SYN-cookie mode switch, a reload or a rule
 * change is recorded without a second hook; nothing on the packet path logs, so this adds no
 * per-packet work.
 *
 * Bounds: `capacity` entries, each message cut to MAX_MESSAGE characters. When full, the oldest
 * entry goes; one kind holds at most half the ring (its own oldest goes first), so a storm of
 * one kind (pressure, defence) never pushes the last health or VRRP changes out. Entries are
 * recorded before the logger's rate limit (logger.ts): a line the log holds back is still seen
 * here, within these bounds. Pushing costs O(capacity) at most; nothing logs per packet.
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
  /** oldest first */
  readonly #items: DaemonEvent[] = [];
  readonly #perKind = new Map<string, number>();
  /** entries one kind may hold */
  readonly perKindMax: number;
  /** events recorded since start (the ring keeps the last `capacity`) */
  recorded = 0;

  constructor(
    readonly capacity = EVENT_RING_SIZE,
    readonly now: () => number = Date.now,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`event ring capacity must be a positive integer, not ${capacity}`);
    this.perKindMax = Math.max(1, Math.floor(capacity / 2));
  }

  push(level: DaemonEvent['level'], kind: string, msg: string): void {
    const n = this.#perKind.get(kind) ?? 0;
    if (n >= this.perKindMax) this.#remove(this.#items.findIndex((e) => e.kind === kind));
    else if (this.#items.length >= this.capacity) this.#remove(0);
    this.#items.push({ at: this.now(), level, kind, msg: msg.length > MAX_MESSAGE ? `${msg.slice(0, MAX_MESSAGE - 1)}…` : msg });
    this.#perKind.set(kind, (this.#perKind.get(kind) ?? 0) + 1);
    this.recorded++;
  }

  /** The kept events, newest first. */
  list(): DaemonEvent[] {
    return this.#items.slice().reverse();
  }

  #remove(i: number): void {
    const [e] = this.#items.splice(i, 1);
    const left = this.#perKind.get(e!.kind)! - 1;
    if (left === 0) this.#perKind.delete(e!.kind);
    else this.#perKind.set(e!.kind, left);
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
