/**
 * sync_maxlen: the largest UDP payload a sync daemon sends (master) or reads (backup), as the
 * kernel's start_sync_thread sets it. hlen = IP + UDP header (28 for an IPv4 group, 48 for IPv6).
 *  - not given (0): master 1500 - hlen (1472; never above 1500 "for compatibility", whatever the
 *    interface MTU), backup clamp(interface MTU, 1500, 65535) - hlen;
 *  - given (--sync-maxlen): clamped to [1 (master) or 1024 (backup), 65535 - hlen].
 * A backup's read buffer has this size: a longer datagram arrives cut, and the header's size
 * check then drops it.
 */
import { SYNC_HLEN_V4, SYNC_HLEN_V6 } from './constants.js';

export function syncMaxlen(role: 'master' | 'backup', requested: number, ifMtu: number, ipv6Group = false): number {
  const hlen = ipv6Group ? SYNC_HLEN_V6 : SYNC_HLEN_V4;
  const backup = role === 'backup';
  if (requested > 0) return Math.min(Math.max(requested, backup ? 1024 : 1), 65535 - hlen);
  const mtu = backup ? Math.min(Math.max(ifMtu, 1500), 65535) : 1500;
  return mtu - hlen;
}
