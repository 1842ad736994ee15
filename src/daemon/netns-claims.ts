/**
 * What one ulvsd uses in its network namespace, claimed so that no other ulvsd uses it or
 * removes it: its TUN device, its routing table and its two rule preferences P and P+1 (the
 * policy rules and the tc capture filters use both; routing.ts, capture.ts).
 *
 *   takeClaims(want, dir)  -> Claims; throws ClaimError naming the holder (pid, admin socket)
 *                             of every resource another live ulvsd holds, and takes none then
 *   claims.markStopping()  a stop has begun: a start meanwhile waits (up to STOPPING_WAIT_MS)
 *                             for this process to finish instead of being refused, so
 *                             `kill -USR2 $pid && ulvsd ...` (README) hands over in order
 *   claims.release(final)  drop the claims (idempotent, never throws); `final`: this is a
 *                             final stop, see the shared sysctls below
 *
 * A claim is an exclusive flock(2) (LOCK_EX|LOCK_NB) on `<dir>/net<cookie>.<kind>-<value>.lock`;
 * the cookie is the network namespace's (netns-cookie.ts), never given to another namespace
 * until reboot. The kernel drops a flock when its open file description goes, i.e. when the
 * process ends in any way (a final stop, a hand-over stop, kill -9): a dead process's claim is
 * free without anyone deciding it is stale, so the next start after a hand-over (SIGUSR2,
 * --keep-state) takes it over. The file holds its holder's pid and admin socket, for the
 * message. The directory is fixed (CLAIMS_DIR), not --state-dir: two ulvsd given different
 * state directories still meet. A holder unlinks its files when it releases them; a taker
 * checks after locking that the path still names the file it locked (else it locked an
 * unlinked file and tries again), the usual way to make lock-file removal safe.
 *
 * Shared sysctls. routing.ts sets net.ipv4.ip_forward and net.ipv4.conf.all.rp_filter, which
 * belong to the namespace, not to one device, and restores their values at a final stop. With
 * two ulvsd, the first one stopping would turn forwarding off under the other. So every ulvsd
 * also holds a shared flock on `net<cookie>.present.lock`; the first one there (the only one to
 * get it exclusively) writes the namespace's values of those sysctls into it, before it sets
 * them; at a final stop only the last one (again the only one to get it exclusively) restores
 * them, from that file, and removes it. The others leave the shared sysctls as they are
 * (`sysctlsToRestore`). A hand-over stop keeps the file: the values from before the first run
 * are restored by the last final stop, also after restarts.
 */
import { closeSync, fstatSync, ftruncateSync, mkdirSync, openSync, readFileSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { netnsCookie } from '../datapath/tun/netns-cookie.js';
import { libc, errno, EAGAIN } from '../datapath/tun/syscalls.js';

/** Where the claims of every ulvsd on this host live (root-only). */
export const CLAIMS_DIR = '/run/ulvs/claims';

const flock = libc.func('int flock(int fd, int operation)') as (fd: number, op: number) => number;
// include/uapi/asm-generic/fcntl.h
const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;

/** A start refused: another live ulvsd holds some of what this one would use. */
export class ClaimError extends Error {}

/** What a ulvsd uses in its namespace (DaemonOptions' names), and who it is. */
export interface ClaimWant {
  dev: string;
  table: number;
  pref: number;
  socket: string;
  /** net.ipv4.* names routing.ts sets on the namespace as a whole (not on the TUN) */
  sharedSysctls: readonly string[];
}

/** What a claim file says about its holder. */
interface Holder {
  pid: number;
  socket: string;
  dev?: string;
  table?: number;
  pref?: number;
  /** a hand-over or final stop has begun: a new start waits for the exit */
  stopping?: boolean;
}

/** The resources of `w`, each as the file-name part and the words of the message. */
function resources(w: ClaimWant): { key: string; what: string }[] {
  return [
    { key: `dev-${w.dev}`, what: `TUN device ${w.dev}` },
    { key: `table-${w.table}`, what: `routing table ${w.table}` },
    { key: `pref-${w.pref}`, what: `rule preference ${w.pref}` },
    { key: `pref-${w.pref + 1}`, what: `rule preference ${w.pref + 1}` },
  ];
}

/** Open `path` and lock it (`op`: LOCK_EX or LOCK_SH, never blocking). Returns the fd, or null
 *  when another holds a conflicting lock. Throws on other errors. */
function lockFile(path: string, op: number): number | null {
  for (let tries = 0; tries < 10; tries++) {
    const fd = openSync(path, 'a+', 0o600); // O_CLOEXEC: children (MISC checkers) do not inherit it
    if (flock(fd, op | LOCK_NB) !== 0) {
      const e = errno();
      closeSync(fd);
      if (e === EAGAIN) return null;
      throw new Error(`flock ${path}: errno ${e}`);
    }
    // the holder may have unlinked the file between our open and our lock: then ours is an
    // orphan nobody else will see; open the path again
    let same = false;
    try {
      same = statSync(path).ino === fstatSync(fd).ino;
    } catch {
      /* unlinked */
    }
    if (same) return fd;
    closeSync(fd);
  }
  throw new Error(`cannot lock ${path}: it keeps being replaced`);
}

function readHolder(path: string): Holder | null {
  try {
    const h = JSON.parse(readFileSync(path, 'utf8')) as Holder;
    return typeof h.pid === 'number' ? h : null;
  } catch {
    return null; // being written, or not ours
  }
}

function rewrite(fd: number, text: string): void {
  ftruncateSync(fd, 0);
  writeSync(fd, text, 0);
}

/** The current values of `names` (/proc/sys); a name that cannot be read is left out. */
function readSysctls(names: readonly string[]): [string, string][] {
  const out: [string, string][] = [];
  for (const n of names) {
    try {
      out.push([n, readFileSync(`/proc/sys/${n.replace(/\./g, '/')}`, 'utf8').trim()]);
    } catch {
      /* not on this kernel */
    }
  }
  return out;
}

export class Claims {
  #held: { path: string; fd: number }[];
  #present: { path: string; fd: number } | null;
  #released = false;
  /** sysctlsToRestore found this process the last ulvsd in the namespace */
  #last = false;

  readonly #me: Holder;

  constructor(held: { path: string; fd: number }[], present: { path: string; fd: number }, me: Holder) {
    this.#held = held;
    this.#present = present;
    this.#me = me;
  }

  /** Say in every claim that this ulvsd is stopping (a start meanwhile waits: takeClaims). Never throws. */
  markStopping(): void {
    for (const h of this.#held) {
      try {
        rewrite(h.fd, `${JSON.stringify({ ...this.#me, stopping: true })}\n`);
      } catch {
        /* the claim still holds; a start is refused instead of waiting */
      }
    }
  }

  /**
   * The sysctls a final stop restores, from `own` (what this process found at its start,
   * routing.ts RoutingState): the shared ones (`shared`) only if this is the last ulvsd in the
   * namespace, and then with the values from before the first of them. Call once, at the final
   * stop: it converts the presence lock (a failed conversion drops it: the process is stopping).
   */
  sysctlsToRestore(own: [string, string][], shared: readonly string[]): [string, string][] {
    const p = this.#present;
    if (p === null) return own.filter(([k]) => !shared.includes(k));
    this.#last = flock(p.fd, LOCK_EX | LOCK_NB) === 0;
    if (!this.#last) return own.filter(([k]) => !shared.includes(k));
    let first: [string, string][] = [];
    try {
      first = JSON.parse(readFileSync(p.path, 'utf8')) as [string, string][];
    } catch {
      /* written by nobody: keep our own */
    }
    const firstOf = new Map(first);
    return own.map(([k, v]) => [k, shared.includes(k) ? (firstOf.get(k) ?? v) : v]);
  }

  /** Drop every claim; `final`: a final stop, which removes the presence file if
   *  sysctlsToRestore found this the last ulvsd. Idempotent, never throws. */
  release(final: boolean): void {
    if (this.#released) return;
    this.#released = true;
    for (const h of this.#held) {
      try {
        unlinkSync(h.path); // while locked: a taker that opened it first finds it unlinked
      } catch {
        /* gone */
      }
      closeSync(h.fd);
    }
    const p = this.#present;
    if (p) {
      if (final && this.#last) {
        try {
          unlinkSync(p.path);
        } catch {
          /* gone */
        }
      }
      closeSync(p.fd);
    }
    this.#held = [];
    this.#present = null;
  }
}

/** How long a start waits for holders that are stopping (a hand-over writes its connections,
 *  then exits: workers stop within 3 s, daemon.ts), ms. */
export const STOPPING_WAIT_MS = 10_000;

/** One try at every claim of `w`: all of them held, or none and who holds what. */
function tryClaims(w: ClaimWant, base: string): { held: { path: string; fd: number }[] } | { busy: { holder: Holder | null; what: string[] }[] } {
  const held: { path: string; fd: number }[] = [];
  const busy = new Map<string, { holder: Holder | null; what: string[] }>();
  try {
    for (const r of resources(w)) {
      const path = `${base}.${r.key}.lock`;
      const fd = lockFile(path, LOCK_EX);
      if (fd === null) {
        const holder = readHolder(path);
        const k = holder ? `${holder.pid} ${holder.socket}` : '?';
        const e = busy.get(k) ?? { holder, what: [] };
        e.what.push(r.what);
        busy.set(k, e);
      } else held.push({ path, fd });
    }
  } catch (e) {
    for (const h of held) closeSync(h.fd);
    throw e;
  }
  if (busy.size === 0) return { held };
  for (const h of held) {
    try {
      unlinkSync(h.path); // while locked, as release() does
    } catch {
      /* gone */
    }
    closeSync(h.fd);
  }
  return { busy: [...busy.values()] };
}

/**
 * Take every claim of `w` in `dir` (see the file header); all or none. While every holder of
 * a busy claim says it is stopping (Claims.markStopping: a hand-over, `kill -USR2 && ulvsd`),
 * wait for it up to `waitMs`; `waited` is told the holder's pid once.
 */
export function takeClaims(w: ClaimWant, dir = CLAIMS_DIR, waitMs = STOPPING_WAIT_MS, waited: (pid: number) => void = () => {}): Claims {
  const cookie = netnsCookie();
  if (cookie === null) throw new ClaimError('this kernel gives network namespaces no cookie (Linux 5.14+ needed): cannot tell another ulvsd in this namespace from one elsewhere');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const base = join(dir, `net${cookie}`);
  const t0 = Date.now();
  let told = false;
  for (;;) {
    const r = tryClaims(w, base);
    if ('held' in r) {
      const me: Holder = { pid: process.pid, socket: w.socket, dev: w.dev, table: w.table, pref: w.pref };
      try {
        for (const h of r.held) rewrite(h.fd, `${JSON.stringify(me)}\n`);
        return new Claims(r.held, presence(`${base}.present.lock`, w.sharedSysctls), me);
      } catch (e) {
        for (const h of r.held) closeSync(h.fd);
        throw e;
      }
    }
    const stopping = r.busy.every((b) => b.holder?.stopping === true);
    if (!stopping || Date.now() - t0 > waitMs) {
      const who = r.busy.map((b) => `${b.holder ? `another ulvsd (pid ${b.holder.pid}, admin socket ${b.holder.socket}${b.holder.stopping ? `, stopping for over ${waitMs / 1000} s` : ''})` : 'another ulvsd (starting: pid not yet known)'} uses ${b.what.join(', ')}`);
      throw new ClaimError(`${who.join('; ')} in this network namespace: give this one its own --dev, --table and --pref (each director its own device, table and two preferences P, P+1), or stop the other first`);
    }
    if (!told) waited(r.busy[0]!.holder!.pid);
    told = true;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 50); // at start: nothing else to run yet
  }
}

/** The presence lock, held shared; the first ulvsd in the namespace records the shared
 *  sysctls' values there before anyone changes them (a file that has them keeps them). */
function presence(path: string, shared: readonly string[]): { path: string; fd: number } {
  for (let tries = 0; tries < 50; tries++) {
    const ex = lockFile(path, LOCK_EX);
    if (ex !== null) {
      if (fstatSync(ex).size === 0) rewrite(ex, JSON.stringify(readSysctls(shared)) + '\n');
      flock(ex, LOCK_SH | LOCK_NB); // a conversion: nobody holds it, so it cannot fail
      return { path, fd: ex };
    }
    const sh = lockFile(path, LOCK_SH);
    if (sh !== null) return { path, fd: sh };
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20); // another one is writing it (a few ms)
  }
  throw new ClaimError(`cannot take ${path}: held exclusively by another process for over a second`);
}
