/**
 * The engine's view of the firewall marks the TUN's egress program noted (bpf/tun_mark.bpf.c,
 * layout bpf/ulvs_maps.h struct mark_note): a MarkSource (core/mark-source.ts) over the map
 * ulvs_marks, mmap'd (no system call per packet). A note is taken when its tuple is the
 * packet's and its check matches (a note being rewritten by another CPU, or a tuple that has
 * since taken the slot, gives 0: the packet is not balanced by a fwmark service, its sender
 * retransmits). A note read is cleared, so a later unmarked packet with the same tuple is not
 * taken for a marked one. Nothing is allocated per call.
 */
import type { MarkSource } from '../../core/mark-source.js';
import { MARK_NOTE, MARK_NOTES } from './layouts.gen.js';

export const MARK_NOTE_COUNT = MARK_NOTES.MARK_NOTES;
export const MARK_NOTE_SIZE = MARK_NOTE.size;
const GOLDEN = 0x9e3779b1 | 0;

/** ulvs_maps.h mark_note_index: the slot of a tuple (addresses and ports host order, u32). */
export function markNoteIndex(saddr: number, daddr: number, sport: number, dport: number, proto: number): number {
  const h = Math.imul(saddr ^ Math.imul(daddr, GOLDEN) ^ ((sport << 16) | dport) ^ proto, GOLDEN) >>> 0;
  return (h ^ (h >>> 16)) & (MARK_NOTE_COUNT - 1);
}

/** ulvs_maps.h mark_note_check: the check word of a note (never 0). */
export function markNoteCheck(saddr: number, daddr: number, sport: number, dport: number, proto: number, mark: number): number {
  let h = Math.imul(Math.imul(saddr, 0x85ebca6b | 0) ^ daddr ^ (sport << 16) ^ dport ^ (proto << 8) ^ mark, GOLDEN) >>> 0;
  h = (h ^ (h >>> 15)) >>> 0;
  return (h | 1) >>> 0;
}

export class MarkNotes implements MarkSource {
  readonly #view: DataView;
  /** notes found and taken, notes absent or not matching (the worker's counters) */
  taken = 0;
  missed = 0;

  /** `mem`: the MARK_NOTE_COUNT notes (the mmap'd map, or a test's buffer). */
  constructor(mem: Uint8Array) {
    if (mem.byteLength < MARK_NOTE_COUNT * MARK_NOTE_SIZE) throw new Error(`mark notes: ${mem.byteLength} bytes, need ${MARK_NOTE_COUNT * MARK_NOTE_SIZE}`);
    this.#view = new DataView(mem.buffer, mem.byteOffset, MARK_NOTE_COUNT * MARK_NOTE_SIZE);
  }

  markOf(proto: number, saddr: number, sport: number, daddr: number, dport: number): number {
    const v = this.#view;
    const o = markNoteIndex(saddr, daddr, sport, dport, proto) * MARK_NOTE_SIZE;
    const off = MARK_NOTE.off;
    const check = v.getUint32(o + off.check, true); // host order (little-endian hosts only, as the objects)
    if (check === 0) return this.#miss();
    const mark = v.getUint32(o + off.mark, true);
    if (
      v.getInt32(o + off.saddr, false) !== (saddr | 0) ||
      v.getInt32(o + off.daddr, false) !== (daddr | 0) ||
      v.getUint16(o + off.sport, false) !== sport ||
      v.getUint16(o + off.dport, false) !== dport ||
      v.getUint8(o + off.proto) !== proto ||
      markNoteCheck(saddr, daddr, sport, dport, proto, mark) !== check
    )
      return this.#miss();
    v.setUint32(o + off.check, 0, true); // taken: the next packet with this tuple needs its own note
    this.taken++;
    return mark;
  }

  #miss(): number {
    this.missed++;
    return 0;
  }

  /** Write a note as the program does (tests). */
  static write(mem: Uint8Array, proto: number, saddr: number, sport: number, daddr: number, dport: number, mark: number): void {
    const v = new DataView(mem.buffer, mem.byteOffset, mem.byteLength);
    const o = markNoteIndex(saddr, daddr, sport, dport, proto) * MARK_NOTE_SIZE;
    const off = MARK_NOTE.off;
    v.setInt32(o + off.saddr, saddr | 0, false);
    v.setInt32(o + off.daddr, daddr | 0, false);
    v.setUint16(o + off.sport, sport, false);
    v.setUint16(o + off.dport, dport, false);
    v.setUint8(o + off.proto, proto);
    v.setUint32(o + off.mark, mark >>> 0, true);
    v.setUint32(o + off.check, markNoteCheck(saddr, daddr, sport, dport, proto, mark >>> 0), true);
  }
}
