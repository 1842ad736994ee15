/**
 * The real server's own tunnel decapsulation (bpf/rs_decap.bpf.c, what it accepts is described
 * there): load it with its VIPs, GUE port and whether it takes GRE, attach it at the tcx ingress of interfaces, find
 * it again from a later command, read its counters, detach it.
 *
 * Persistence: the program is attached without a link (BPF_PROG_ATTACH on tcx), so the device
 * keeps it after `ulvs rs-setup` exits; nothing is pinned. A link pinned in a bpffs would die
 * with that bpffs, and `ip netns exec` gives each command a private mount namespace with a
 * fresh /sys (a bpffs mounted there vanishes when the command ends), so pins are not a way to
 * outlive the command in a namespace. A later command finds the program by querying the
 * interface (BPF_PROG_QUERY) and checking the program's name, and reaches its maps through the
 * program's map ids. The maps live as long as the program; detaching the last attachment
 * frees both.
 */
import { closeFd } from '../datapath/tun/fastpath.js';
import { fdById, MapOps, mapInfo, progAttachTcxIngress, progDetachTcxIngress, progInfo, tcxIngressProgIds } from '../datapath/tun/bpf.js';
import { loadObject } from '../datapath/tun/libbpf.js';
import { RS_CONFIG, RS_COUNTER } from '../datapath/tun/layouts.gen.js';

export const DECAP_OBJECT = 'rs_decap.bpf.o';
/** the program's name as the kernel reports it (bpf_prog_info.name) */
export const DECAP_PROG = 'ulvs_rs_decap';
/** map names as the kernel reports them (libbpf truncates to 15 bytes) */
const MAP_VIPS = 'ulvs_rs_vips', MAP_CONFIG = 'ulvs_rs_config', MAP_COUNTERS = 'ulvs_rs_counter';

export interface DecapCounters {
  decapsulated: number;
  malformed: number;
  notVip: number;
  /** GUE or GRE variants it does not decapsulate (checksums, keys, options, IPv6 inside) */
  unhandled: number;
}

/** VIP 'a.b.c.d' -> 4 bytes in network order */
const vipKey = (vip: string): Buffer => Buffer.from(vip.split('.').map(Number));

/**
 * Load the program with `vips` in its VIP map, `guePort` (0: GUE off) and `gre` (GRE on) in its
 * config. Returns the program's fd and id; the caller attaches it and closes the fd.
 */
export function loadDecap(vips: readonly string[], guePort: number, gre = false): { progFd: number; progId: number } {
  const l = loadObject(DECAP_OBJECT, DECAP_PROG, ['ulvs_rs_vips', 'ulvs_rs_config']);
  try {
    const set = new MapOps(l.maps['ulvs_rs_vips']!);
    for (const v of vips) set.update(vipKey(v), Buffer.of(1));
    const cfg = Buffer.alloc(RS_CONFIG.size);
    cfg.writeUInt16BE(guePort, RS_CONFIG.off.gue_port); // network order
    cfg[RS_CONFIG.off.gre] = gre ? 1 : 0;
    new MapOps(l.maps['ulvs_rs_config']!).update(Buffer.alloc(4), cfg);
    return { progFd: l.progFd, progId: progInfo(l.progFd).id };
  } catch (e) {
    closeFd(l.progFd);
    throw e;
  } finally {
    for (const fd of Object.values(l.maps)) closeFd(fd);
  }
}

export function attachDecap(progFd: number, ifindex: number): void {
  progAttachTcxIngress(progFd, ifindex);
}

/** The ids of ulvs's decapsulation programs at the tcx ingress of an interface. */
export function findDecap(ifindex: number): number[] {
  const out: number[] = [];
  for (const id of tcxIngressProgIds(ifindex)) {
    const fd = fdById('prog', id);
    if (fd === null) continue;
    try {
      if (progInfo(fd).name === DECAP_PROG) out.push(id);
    } finally {
      closeFd(fd);
    }
  }
  return out;
}

/** Detach program `progId` from an interface; false when it is not there (any more). */
export function detachDecap(progId: number, ifindex: number): boolean {
  const fd = fdById('prog', progId);
  if (fd === null) return false;
  try {
    if (!tcxIngressProgIds(ifindex).includes(progId)) return false;
    progDetachTcxIngress(fd, ifindex);
    return true;
  } finally {
    closeFd(fd);
  }
}

/** The program's counters, VIPs and tunnels, or null when the program no longer exists. */
export function readDecap(progId: number): { counters: DecapCounters; vips: string[]; guePort: number; gre: boolean } | null {
  const fd = fdById('prog', progId);
  if (fd === null) return null;
  const maps: Record<string, number> = {};
  try {
    for (const id of progInfo(fd).mapIds) {
      const m = fdById('map', id);
      if (m !== null) maps[mapInfo(m).name] = m;
    }
    const counters = maps[MAP_COUNTERS], vipsFd = maps[MAP_VIPS], cfgFd = maps[MAP_CONFIG];
    if (counters === undefined || vipsFd === undefined || cfgFd === undefined) return null;
    const ops = new MapOps(counters);
    const value = Buffer.alloc(8);
    const at = (i: number) => {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(i);
      return ops.lookup(k, value) ? Number(value.readBigUInt64LE(0)) : 0;
    };
    const cfg = Buffer.alloc(RS_CONFIG.size);
    new MapOps(cfgFd).lookup(Buffer.alloc(4), cfg);
    return {
      counters: { decapsulated: at(RS_COUNTER.RS_DECAP), malformed: at(RS_COUNTER.RS_MALFORMED), notVip: at(RS_COUNTER.RS_NOT_VIP), unhandled: at(RS_COUNTER.RS_UNHANDLED) },
      vips: mapKeys(vipsFd).map((k) => [...k].join('.')),
      guePort: cfg.readUInt16BE(RS_CONFIG.off.gue_port),
      gre: cfg[RS_CONFIG.off.gre] === 1,
    };
  } finally {
    closeFd(fd);
    for (const m of Object.values(maps)) closeFd(m);
  }
}

/** The keys (4 bytes each) of a hash map, by BPF_MAP_GET_NEXT_KEY through MapOps' neighbour call. */
function mapKeys(fd: number): Buffer[] {
  const ops = new MapOps(fd);
  const keys: Buffer[] = [];
  let prev: Buffer | null = null;
  for (;;) {
    const next = Buffer.alloc(4);
    if (!ops.nextKey(prev, next)) return keys;
    keys.push(next);
    prev = next;
  }
}
