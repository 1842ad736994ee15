/**
 * Fast paths an earlier ulvsd left attached without a record here. The fast path is attached
 * link-less (fastpath.ts): it stays on the interfaces after its process is gone, and the next
 * start finds it through the kept-state record (daemon/kept-state.ts). A start that has no
 * record (ulvsd started with another --state-dir, or the directory was emptied) would attach a
 * second program beside it: the old one would go on forwarding its offloaded connections
 * unseen, unaccounted and never expiring, for as long as the interface exists.
 *
 * leftFastPaths(devices) lists the programs named ulvs_fastpath* at the tcx ingress of
 * `devices`, each with its maps (by id, with the slot map's size) and the interfaces it is on,
 * and whether a live process other than this one holds an fd to it (a ulvsd running now with
 * another --dev: not ours to touch). A process holds a program when one of its fds is a bpf-prog
 * whose /proc/PID/fdinfo says `prog_id: N` (fs/proc, kernel/bpf/syscall.c bpf_prog_show_fdinfo).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { fdById, mapInfo, progInfo, tcxIngressProgIds } from './bpf.js';
import { closeFd, ifindexOf, type PriorFastPath } from './fastpath.js';

export interface LeftFastPath extends PriorFastPath {
  /** the pid of a live process that holds it, or null */
  heldBy: number | null;
}

/** The pid of a process other than this one holding an fd of program `progId`, or null. */
export function progHolder(progId: number): number | null {
  const want = new RegExp(`^prog_id:\\s+${progId}$`, 'm');
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid) || Number(pid) === process.pid) continue;
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      try {
        if (readlinkSync(`/proc/${pid}/fd/${fd}`) === 'anon_inode:bpf-prog' && want.test(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'))) return Number(pid);
      } catch {
        /* closed meanwhile */
      }
    }
  }
  return null;
}

/** The ulvs fast path programs attached on `devices` (see the header); never throws. */
export function leftFastPaths(devices: readonly string[]): LeftFastPath[] {
  const found = new Map<number, LeftFastPath>();
  for (const dev of devices) {
    let ifindex: number;
    let ids: number[];
    try {
      ifindex = ifindexOf(dev);
      ids = tcxIngressProgIds(ifindex);
    } catch {
      continue;
    }
    for (const progId of ids) {
      const seen = found.get(progId);
      if (seen) {
        seen.attached.push({ dev, ifindex });
        continue;
      }
      let fd: number | null = null;
      try {
        fd = fdById('prog', progId);
        if (fd === null) continue;
        const info = progInfo(fd);
        if (!info.name.startsWith('ulvs_fastpath')) continue;
        const maps = info.mapIds.map((id) => {
          const m = fdById('map', id);
          if (m === null) return null;
          try {
            return mapInfo(m);
          } finally {
            closeFd(m);
          }
        });
        const flows = maps.find((m) => m?.name === 'ulvs_flows');
        const slots = maps.find((m) => m?.name === 'ulvs_slots');
        if (!flows || !slots) continue;
        // the slot array holds the workers' slots and, after them, kernel set-up's range (the
        // size of its free queue): the workers' count is what a start compares with its own
        const kernel = maps.find((m) => m?.name === 'ulvs_kslot_free')?.maxEntries ?? 0;
        const workerSlots = kernel > 0 && kernel < slots.maxEntries ? slots.maxEntries - kernel : slots.maxEntries;
        found.set(progId, { progId, flowsId: flows.id, slotsId: slots.id, slots: workerSlots, attached: [{ dev, ifindex }], heldBy: progHolder(progId) });
      } catch {
        /* gone meanwhile */
      } finally {
        if (fd !== null) closeFd(fd);
      }
    }
  }
  return [...found.values()];
}
