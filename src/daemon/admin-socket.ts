/**
 * The admin socket is root's alone: who can connect to a Unix socket is decided by the
 * socket file's mode (write permission) and by the directories above it (search permission),
 * and who can replace it by the directory it is in.
 *
 *   checkSocketPlace(path)  throws an Error for the operator, before anything is installed, when
 *                    the path exists and is not a socket (it is never removed), or when a
 *                    directory on the way is owned by another user, or writable by others
 *                    without the sticky bit (they could put their own socket in its place and
 *                    read what ulvsadm sends). A missing directory is made 0700 at listen.
 *   listenPrivate(server, path, cb)  listen with umask 0177, so the socket is 0600 from the
 *                    moment bind(2) makes it, also in a directory others can search (/tmp);
 *                    a chmod after listen would leave it 0777 & ~umask until then.
 */
import { lstatSync, statSync } from 'node:fs';
import type { Server } from 'node:net';
import { dirname } from 'node:path';

const S_ISVTX = 0o1000;

/** See the file header. */
export function checkSocketPlace(path: string): void {
  try {
    if (!lstatSync(path).isSocket()) throw new Error(`--socket ${path} exists and is not a socket: not removed, give another path`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const me = process.getuid?.() ?? 0;
  for (let dir = dirname(path); ; dir = dirname(dir)) {
    let st;
    try {
      st = statSync(dir);
    } catch {
      st = null; // made at listen, 0700
    }
    if (st) {
      if (st.uid !== 0 && st.uid !== me) throw new Error(`the admin socket's directory ${dir} belongs to uid ${st.uid}: that user could replace the socket; use a directory of root's (the default /run/ulvs is made 0700)`);
      if (st.mode & 0o022 && !(st.mode & S_ISVTX)) throw new Error(`the admin socket's directory ${dir} is writable by other users (mode ${(st.mode & 0o7777).toString(8)}, no sticky bit): they could replace the socket; use a directory only root can write`);
    }
    if (dir === dirname(dir)) return;
  }
}

/** See the file header. */
export function listenPrivate(server: Server, path: string, onListening: () => void): void {
  const old = process.umask(0o177);
  try {
    server.listen(path, onListening); // bind(2) runs now, in this call, for a Unix socket
  } finally {
    process.umask(old);
  }
}
