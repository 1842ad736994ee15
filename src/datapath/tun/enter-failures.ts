/**
 * What a worker does when io_uring_enter(2) fails (uring-loop.ts):
 *   EAGAIN, ENOMEM  the kernel could not allocate the requests now (io_submit_sqes); EBUSY: the
 *                   completion ring overflowed and the backlog could not be flushed yet. Both pass:
 *                   retry (the completions already there are drained first, which frees room);
 *   anything else   (EBADF, EFAULT, EINVAL, EOWNERDEAD, ...) the ring is unusable: fall back;
 * and a transient failure that lasts `giveUpMs` without one success also falls back (to
 * read(2)/write(2), which need no kernel allocation per batch). ETIME and EINTR are not failures
 * (the wait timed out, a signal came): Uring.enter answers true for them.
 */
import { EAGAIN, EBUSY, ENOMEM } from './syscalls.js';

export const TRANSIENT_ENTER_ERRORS: readonly number[] = [EAGAIN, ENOMEM, EBUSY];

export class EnterFailures {
  /** when the present run of failures began (ms), -1 when the last enter succeeded */
  #since = -1;

  constructor(readonly giveUpMs = 1000) {}

  /** The last enter succeeded. */
  ok(): void {
    this.#since = -1;
  }

  /** An enter failed with `errno` at `now` (ms): retry, or fall back for good. */
  failed(errno: number, now: number): 'retry' | 'fallback' {
    if (errno !== EAGAIN && errno !== ENOMEM && errno !== EBUSY) return 'fallback';
    if (this.#since < 0) this.#since = now;
    return now - this.#since >= this.giveUpMs ? 'fallback' : 'retry';
  }
}
