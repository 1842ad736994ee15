/**
 * Before ulvsd touches the kernel: make sure it is alone with what it will use.
 *
 *   guardStart(o) -> Claims   throws ClaimError (the daemon exits 1 with its message) when
 *                             another live ulvsd in this network namespace uses the same TUN
 *                             device, routing table or rule preferences (netns-claims.ts; the
 *                             message names its pid and admin socket), or serves the admin
 *                             socket `o.socket`, or when that path is not a safe place for it
 *                             (admin-socket.ts). A stale socket (nobody accepting) is removed.
 *   restoreFor(claims)        what the final stop gives kernel-setup.ts remove(): the sysctls to
 *                             restore, without the namespace's shared ones while another ulvsd
 *                             still runs here.
 *
 * Before these claims, a second `ulvsd --socket OTHER` started on the first one's TUN, table
 * and preferences, and its stop removed the rules and table the first one still forwarded with.
 */
import { existsSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { namespaceSysctls } from '../datapath/tun/routing.js';
import { ClaimError, CLAIMS_DIR, STOPPING_WAIT_MS, takeClaims, type Claims } from './netns-claims.js';

export { ClaimError, type Claims };
import type { DaemonOptions } from './options.js';
import { checkSocketPlace } from './admin-socket.js';

/** True when a process accepts connections on the Unix socket at `path`. */
function socketLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect(path, () => {
      c.destroy();
      resolve(true);
    });
    c.on('error', () => resolve(false));
  });
}

/** See the file header. `dir`: where the claims live (tests give their own). */
export async function guardStart(o: Pick<DaemonOptions, 'dev' | 'table' | 'pref' | 'socket'>, log: (msg: string) => void, dir = CLAIMS_DIR): Promise<Claims> {
  try {
    checkSocketPlace(o.socket);
  } catch (e) {
    throw new ClaimError((e as Error).message);
  }
  const claims = takeClaims({ dev: o.dev, table: o.table, pref: o.pref, socket: o.socket, sharedSysctls: namespaceSysctls() }, dir, STOPPING_WAIT_MS, (pid) => log(`ulvsd pid ${pid} is stopping: waiting for it to finish (at most ${STOPPING_WAIT_MS / 1000} s)`));
  try {
    if (existsSync(o.socket)) {
      if (await socketLive(o.socket)) throw new ClaimError(`another ulvsd is serving ${o.socket} (give this one its own --socket)`);
      unlinkSync(o.socket);
    }
  } catch (e) {
    claims.release(false);
    throw e;
  }
  return claims;
}

/** The sysctl filter of a final stop (kernel-setup.ts remove). */
export const restoreFor =
  (claims: Claims) =>
  (own: [string, string][]): [string, string][] =>
    claims.sysctlsToRestore(own, namespaceSysctls());
