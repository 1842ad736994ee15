/**
 * One line of keepalived's notify FIFO (keepalived 2.2.7 vrrp/vrrp_notify.c notify_fifo):
 *
 *   INSTANCE "VI_1" MASTER 100      TYPE "NAME" STATE PRIORITY
 *   GROUP "G_NAT" BACKUP 0          (a sync group's priority is always 0)
 *
 * STATE is MASTER, BACKUP, FAULT, STOP or DELETED, or an event that is not a state change:
 * MASTER_RX_LOWER_PRI, MASTER_PRIORITY, BACKUP_PRIORITY ({UNKNOWN} is keepalived's fallback).
 * The checker process writes other lines (`VS ...`, `RS ...`) to a shared `notify_fifo`; they
 * are recognised and ignored. Anything else is malformed: the caller counts it.
 */

export const VRRP_STATES = ['MASTER', 'BACKUP', 'FAULT', 'STOP', 'DELETED'] as const;
export type VrrpState = (typeof VRRP_STATES)[number];
const EVENTS = new Set(['MASTER_RX_LOWER_PRI', 'MASTER_PRIORITY', 'BACKUP_PRIORITY', '{UNKNOWN}']);

export type NotifyLine =
  | { kind: 'state'; type: 'INSTANCE' | 'GROUP'; name: string; state: VrrpState; priority: number }
  | { kind: 'event'; type: 'INSTANCE' | 'GROUP'; name: string; event: string; priority: number }
  | { kind: 'other' }
  | { kind: 'malformed'; why: string };

/** Parse one line (without its newline). Never throws. */
export function parseNotifyLine(line: string): NotifyLine {
  const m = /^(INSTANCE|GROUP) "([^"]*)" (\S+) (\d{1,3})$/.exec(line.trimEnd());
  if (!m) {
    if (/^(VS|RS) /.test(line)) return { kind: 'other' };
    return { kind: 'malformed', why: `not TYPE "NAME" STATE PRIORITY: ${JSON.stringify(line.slice(0, 120))}` };
  }
  const type = m[1] as 'INSTANCE' | 'GROUP';
  const name = m[2]!;
  const priority = Number(m[4]);
  if (name === '') return { kind: 'malformed', why: 'empty name' };
  if (priority > 255) return { kind: 'malformed', why: `priority ${priority} is more than 255` };
  const word = m[3]!;
  if ((VRRP_STATES as readonly string[]).includes(word)) return { kind: 'state', type, name, state: word as VrrpState, priority };
  if (EVENTS.has(word)) return { kind: 'event', type, name, event: word, priority };
  return { kind: 'malformed', why: `unknown state ${JSON.stringify(word)}` };
}
