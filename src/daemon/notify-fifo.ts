/**
 * Reading keepalived's notify FIFO (`notify_fifo PATH` / `vrrp_notify_fifo PATH` in global_defs).
 *
 * keepalived 2.2.7 (lib/notify.c fifo_open) creates the FIFO when it is missing — and removes
 * it at exit if it created it — and opens it O_RDWR|O_NONBLOCK, so its writes never block and,
 * while no reader is there, queue in the pipe (up to the pipe's 64 KiB; beyond that keepalived
 * drops them). ulvsd therefore:
 *   - creates the FIFO itself (mode 0600) when it is missing, so keepalived finds it and leaves
 *     it in place; refuses a path that exists and is not a FIFO;
 *   - opens it O_RDWR|O_NONBLOCK too: it never sees end-of-file when keepalived restarts, and
 *     what keepalived wrote before ulvsd started is read first, in order;
 *   - every second compares the path's device and inode with those of the FIFO it holds (an
 *     inode number cannot be reused while it is open) and reopens when the FIFO was replaced
 *     or removed (a keepalived that created it exited, another made a new one).
 * Lines are handed to `onLine` without their newline; a line longer than 4 KiB is cut and
 * handed over as it is (the parser counts it as malformed).
 */
import { execFileSync } from 'node:child_process';
import { constants, fstatSync, openSync, statSync } from 'node:fs';
import { Socket } from 'node:net';
import type { DaemonLog } from './log.js';

const MAX_LINE = 4096;
const CHECK_MS = 1000;

export class FifoError extends Error {}

const identity = (st: { dev: number; ino: number }) => `${st.dev}/${st.ino}`;

/** Create `path` as a FIFO if nothing is there; throw FifoError if something else is. */
export function ensureFifo(path: string): void {
  let st;
  try {
    st = statSync(path);
  } catch {
    try {
      execFileSync('mkfifo', ['-m', '0600', path], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (e) {
      throw new FifoError(`cannot create the notify FIFO ${path}: ${String((e as { stderr?: Buffer }).stderr ?? (e as Error).message).trim()}`);
    }
    return;
  }
  if (!st.isFIFO()) throw new FifoError(`notify FIFO ${path} exists and is not a FIFO`);
}

export class NotifyFifoReader {
  #sock: Socket | null = null;
  /** device and inode of the FIFO we hold (unique while we hold it open) */
  #id = '';
  #partial = '';
  #timer: NodeJS.Timeout | null = null;
  #stopped = false;

  constructor(
    readonly path: string,
    readonly onLine: (line: string) => void,
    readonly log: DaemonLog,
  ) {}

  /** Create (if needed) and open the FIFO; throws FifoError. */
  start(): void {
    this.#open();
    this.#timer = setInterval(() => this.#check(), CHECK_MS);
    this.#timer.unref();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    this.#close();
  }

  #open(): void {
    ensureFifo(this.path);
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_RDWR | constants.O_NONBLOCK);
    } catch (e) {
      throw new FifoError(`cannot open the notify FIFO ${this.path}: ${(e as Error).message}`);
    }
    this.#id = identity(fstatSync(fd));
    const s = new Socket({ fd, readable: true, writable: false });
    s.setEncoding('utf8');
    s.on('data', (d: string) => this.#data(d));
    s.on('error', (e) => this.log.warn(`notify FIFO ${this.path}: ${e.message}`, 'vrrp'));
    this.#sock = s;
  }

  #close(): void {
    this.#sock?.destroy(); // closes the fd
    this.#sock = null;
    this.#partial = '';
  }

  #data(d: string): void {
    const parts = (this.#partial + d).split('\n');
    this.#partial = parts.pop()!;
    for (const line of parts) if (line !== '') this.onLine(line);
    if (this.#partial.length > MAX_LINE) {
      this.onLine(this.#partial.slice(0, MAX_LINE));
      this.#partial = '';
    }
  }

  /** Reopen when the path no longer names the FIFO we hold. Never throws. */
  #check(): void {
    if (this.#stopped) return;
    let id = '';
    try {
      id = identity(statSync(this.path));
    } catch {
      /* removed */
    }
    if (id === this.#id && this.#sock) return;
    this.#close();
    try {
      this.#open();
      this.log.info(`notify FIFO ${this.path} was ${id === '' ? 'removed' : 'replaced'}: reopened`, 'vrrp');
    } catch (e) {
      this.log.warn(`${(e as Error).message}; retrying every ${CHECK_MS / 1000} s`, 'vrrp');
    }
  }
}

