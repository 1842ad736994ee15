/**
 * Why ulvsadm cannot reach ulvsd, in words an operator can act on: the cause (from connect(2)'s
 * errno and what is at the socket's path) and the fix.
 *
 *   unreachableMessage(socket, err) -> string
 *
 *   EACCES        the socket (0600) or its directory (/run/ulvs, 0700) is root's alone: run as root
 *   ENOENT        no socket there: ulvsd is not running, or listens elsewhere (ULVS_SOCKET)
 *   ECONNREFUSED  a socket nobody accepts on: left by a ulvsd that was killed (stale), or the path
 *                 is not a socket at all
 *   ENOTDIR, EAGAIN, others: named with their code
 *
 * connect(2) on a Unix socket path (unix(7)): EACCES when write permission on the socket or
 * search permission on a directory above it is missing, ECONNREFUSED when nothing listens (also
 * for a file that is not a socket), EAGAIN when the listen backlog is full.
 */
import { lstatSync } from 'node:fs';

const HINT_OTHER = 'if ulvsd runs with another --socket, set ULVS_SOCKET to that path';

/** What is at `path`: 'socket', 'other' (a file of another type), or 'none'. */
function what(path: string): 'socket' | 'other' | 'none' | 'unknown' {
  try {
    return lstatSync(path).isSocket() ? 'socket' : 'other';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'none' : 'unknown';
  }
}

/** See the file header. */
export function unreachableMessage(socket: string, err: NodeJS.ErrnoException): string {
  const code = err.code ?? err.message;
  const uid = process.getuid?.();
  switch (code) {
    case 'EACCES':
    case 'EPERM':
      return `permission denied on ulvsd's admin socket ${socket} (${code}): the socket and its directory are root's alone (mode 0600 and 0700), because whoever can use it can change the director; run ulvsadm as root (sudo ulvsadm ...)${uid === 0 ? '' : `, not as uid ${uid}`}`;
    case 'ENOENT':
      return `ulvsd is not running: there is no admin socket at ${socket} (ENOENT); start it (systemctl start ulvsd, or ulvsd as root), or ${HINT_OTHER}`;
    case 'ECONNREFUSED': {
      const at = what(socket);
      if (at === 'other') return `${socket} is not a socket (ECONNREFUSED): it is not ulvsd's admin socket; ${HINT_OTHER}`;
      return `ulvsd is not running: the socket ${socket} is left from one that ended without removing it (killed with -9, or crashed), and nobody accepts on it (ECONNREFUSED); start ulvsd again (it replaces a stale socket), or ${HINT_OTHER}`;
    }
    case 'ENOTDIR':
      return `${socket} cannot be a socket path: a part of it is not a directory (ENOTDIR); ${HINT_OTHER}`;
    case 'EAGAIN':
      return `ulvsd's admin socket ${socket} is not accepting more connections now (EAGAIN: its backlog is full); try again in a moment`;
    default:
      return `cannot reach ulvsd at ${socket} (${code}); is it running? (${HINT_OTHER})`;
  }
}
