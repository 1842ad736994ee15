/**
 * The fast path's SYN-cookie service map (bpf/ulvs_syncookie.h ulvs_syncookie_svcs: struct
 * syncookie_key -> struct syncookie_value, bpf/ulvs_maps.h): which VIP:vport (TCP) get their
 * SYNs answered with cookies in the kernel. ulvsd writes it whole from the rules and the
 * syn_cookies sysctl (daemon/syn-cookies.ts); this file only knows the bytes.
 */
import { MapOps, progMapsByName } from './bpf.js';
import { FAST_COUNTER, SYNCOOKIE_KEY, SYNCOOKIE_VALUE, TCP_VALIDATED } from './layouts.gen.js';

export const SYNCOOKIE_KEY_SIZE = SYNCOOKIE_KEY.size;
export const SYNCOOKIE_VALUE_SIZE = SYNCOOKIE_VALUE.size;
/** the bit of the TCP header's byte 12 the program sets on a checked ACK (core/syn-proxy.ts reads it) */
export const TCP_VALIDATED_BIT = TCP_VALIDATED.TCP_VALIDATED_BIT;
const IPPROTO_TCP = 6;

/** Write the key of VIP `addr` (uint32 or int32) and `port` (host order), TCP, at b[off]. */
export function writeSyncookieKey(b: Buffer, off: number, addr: number, port: number): void {
  b.fill(0, off, off + SYNCOOKIE_KEY_SIZE);
  b.writeUInt32BE(addr >>> 0, off + SYNCOOKIE_KEY.off.addr);
  b.writeUInt16BE(port, off + SYNCOOKIE_KEY.off.port);
  b.writeUInt8(IPPROTO_TCP, off + SYNCOOKIE_KEY.off.proto);
}

/** A service as the map holds it. */
export interface CookieService {
  addr: number;
  port: number;
}

/**
 * Make the map hold exactly `want`: entries added first, then the ones no longer wanted
 * deleted (a service in both lists is never absent). Returns the counts.
 */
export function syncSyncookieMap(fd: number, want: readonly CookieService[]): { added: number; removed: number } {
  const m = new MapOps(fd);
  const key = Buffer.alloc(SYNCOOKIE_KEY_SIZE);
  const val = Buffer.alloc(SYNCOOKIE_VALUE_SIZE);
  val.writeUInt32LE(1, SYNCOOKIE_VALUE.off.on);
  const wanted = new Set<string>();
  let added = 0;
  for (const s of want) {
    writeSyncookieKey(key, 0, s.addr, s.port);
    wanted.add(key.toString('hex'));
    const had = Buffer.alloc(SYNCOOKIE_VALUE_SIZE);
    if (!m.lookup(key, had)) added++;
    m.update(key, val);
  }
  const stale: Buffer[] = [];
  const cur = Buffer.alloc(SYNCOOKIE_KEY_SIZE);
  for (let prev: Buffer | null = null; m.nextKey(prev, cur); prev = Buffer.from(cur)) if (!wanted.has(cur.toString('hex'))) stale.push(Buffer.from(cur));
  let removed = 0;
  for (const k of stale) if (m.delete(k)) removed++;
  return { added, removed };
}

/** The fast path program's SYN-cookie counters (its ulvs_fast_stats array, enum fast_counter),
 *  by the names the data path's counters use; the map found through the program's map ids. */
export class SyncookieCounters {
  #stats: MapOps | null = null;
  constructor(readonly progFd: number) {}

  read(): Record<string, number> {
    if (this.#stats === null) {
      const fd = progMapsByName(this.progFd, ['ulvs_fast_stats']).get('ulvs_fast_stats');
      if (fd === undefined) return {};
      this.#stats = new MapOps(fd);
    }
    const out: Record<string, number> = {};
    const k = Buffer.alloc(4), v = Buffer.alloc(8);
    for (const [name, idx] of COUNTERS) {
      k.writeUInt32LE(idx);
      out[name] = this.#stats.lookup(k, v) ? Number(v.readBigUInt64LE(0)) : 0;
    }
    return out;
  }
}

const COUNTERS: [string, number][] = [
  ['syncookie_sent', FAST_COUNTER.FAST_SYNCOOKIE_SENT],
  ['syncookie_valid', FAST_COUNTER.FAST_SYNCOOKIE_VALID],
  ['syncookie_invalid', FAST_COUNTER.FAST_SYNCOOKIE_INVALID],
  ['syncookie_refused', FAST_COUNTER.FAST_SYNCOOKIE_REFUSED],
  ['tcp_validated_bit_cleared', FAST_COUNTER.FAST_TCP_RES_CLEARED],
];
