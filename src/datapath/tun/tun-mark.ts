/**
 * The TUN's egress program that notes packets' firewall marks (bpf/tun_mark.bpf.c) for the
 * fwmark services: loaded once per ulvsd with its map ulvs_marks, attached with a link at the
 * TUN's tcx egress (it goes with the process, as the way-out program). The workers mmap the map
 * (mark-notes.ts, `mapMarkNotes`).
 */
import { attachTcxEgress } from './bpf.js';
import { closeFd, ifindexOf } from './fastpath.js';
import { loadObject } from './libbpf.js';
import { MarkNotes, MARK_NOTE_COUNT, MARK_NOTE_SIZE } from './mark-notes.js';
import { mapMemory } from './sys.js';

export interface TunMark {
  progFd: number;
  marksFd: number;
  link: number;
}

/** Load and attach the program on `tun` (throws with libbpf's message; nothing stays open). */
export function installTunMark(tun: string): TunMark {
  const o = loadObject('tun_mark.bpf.o', 'ulvs_tun_mark', ['ulvs_marks']);
  const marksFd = o.maps.ulvs_marks!;
  try {
    return { progFd: o.progFd, marksFd, link: attachTcxEgress(o.progFd, ifindexOf(tun)) };
  } catch (e) {
    closeFd(o.progFd);
    closeFd(marksFd);
    throw e;
  }
}

export function removeTunMark(t: TunMark): void {
  for (const fd of [t.link, t.progFd, t.marksFd]) closeFd(fd);
}

/** A worker's reader of the notes behind `marksFd` (a shared mapping: the program's writes are
 *  seen as they happen). */
export function mapMarkNotes(marksFd: number): MarkNotes {
  const page = 4096;
  const m = mapMemory(Math.ceil((MARK_NOTE_COUNT * MARK_NOTE_SIZE) / page) * page, marksFd, 0);
  return new MarkNotes(m.buf);
}
