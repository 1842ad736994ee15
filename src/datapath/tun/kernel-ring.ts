/**
 * A worker's reader of its kernel set-up ring (ulvs_kreports[worker], a BPF_MAP_TYPE_RINGBUF;
 * docs/kernel-setup.md), mmap'd: no system call per read. The kernel's layout
 * (kernel/bpf/ringbuf.c, struct bpf_ringbuf; include/uapi/linux/bpf.h BPF_RINGBUF_*):
 *
 *   offset 0 of the map            consumer page: consumer_pos (u64), the reader's, mapped rw
 *   offset PAGE                    producer page: producer_pos (u64), mapped read-only
 *   offset 2 * PAGE                the data, `bytes` long, mapped twice in a row (read-only), so
 *                                  a record that wraps round the end is contiguous
 *
 * A record is an 8-byte header (u32 len with BPF_RINGBUF_BUSY_BIT (1 << 31) while the program
 * writes it and BPF_RINGBUF_DISCARD_BIT (1 << 30) when it discarded it; u32 page offset), then
 * len bytes, the whole rounded up to 8. Positions grow without wrapping (u64); the data offset
 * of a position is position & (bytes - 1). Records are committed in order of reservation, so
 * the reader stops at the first busy one.
 *
 * Also here: the decoding of struct kreport (bpf/ulvs_maps.h) into a caller's KReport
 * (kernel-reports.ts: addresses as int32 host values, as the packet parser reads them (readInt32BE), ports host numbers; ns as a number,
 * exact below 2^53 ns, about 104 days of uptime, within a few ns after).
 */
import { mapShared, munmap, type Mapping } from './sys.js';
import { KREPORT } from './layouts.gen.js';
import type { KReport } from './kernel-reports.js';

const PAGE = 4096;
const BUSY = 0x80000000;
const DISCARD = 0x40000000;
const HDR = 8;

/** Called per committed record: `buf` holds it at byte `off` (its header before it). */
export type RecordFn = (buf: Buffer, off: number, len: number) => void;

export class KernelRing {
  readonly #consumer: Mapping;
  readonly #producer: Mapping;
  readonly #consPos: BigUint64Array;
  readonly #prodPos: BigUint64Array;
  readonly #hdr: Uint32Array;
  readonly #mask: number;
  /** the consumer position as a number (exact below 2^53 bytes) */
  #cons: number;

  /** Map ring `fd` of `bytes` (its max_entries: a power of two, at least a page). Throws on failure (nothing mapped then). */
  constructor(fd: number, readonly bytes: number) {
    if (bytes < PAGE || (bytes & (bytes - 1)) !== 0) throw new Error(`kernel ring: ${bytes} bytes is no power of two of at least a page`);
    this.#consumer = mapShared(PAGE, fd, 0, true);
    try {
      this.#producer = mapShared(PAGE + 2 * bytes, fd, PAGE, false);
    } catch (e) {
      munmap(this.#consumer.ptr, PAGE);
      throw e;
    }
    this.#consPos = new BigUint64Array(this.#consumer.buf.buffer, this.#consumer.buf.byteOffset, 1);
    this.#prodPos = new BigUint64Array(this.#producer.buf.buffer, this.#producer.buf.byteOffset, 1);
    this.#hdr = new Uint32Array(this.#producer.buf.buffer, this.#producer.buf.byteOffset, (PAGE + 2 * bytes) / 4);
    this.#mask = bytes - 1;
    this.#cons = Number(Atomics.load(this.#consPos, 0));
  }

  /** The low 32 bits of pending() (0: nothing waiting), without a BigInt: the positions'
   *  low words (little-endian u64s) differ exactly when bytes are waiting (the ring is far
   *  smaller than 2^32). */
  pendingLow(): number {
    return (Atomics.load(this.#hdr, 0) - (this.#cons % 0x100000000)) >>> 0;
  }

  /** Bytes written and not yet consumed (committed or not). */
  pending(): number {
    return Number(Atomics.load(this.#prodPos, 0)) - this.#cons;
  }

  /**
   * Hand every committed record to `fn` in order (discarded ones skipped), stopping at one the
   * program is still writing or after `max` records; then the consumer position is published
   * (the kernel may reuse the space). Returns the records handed over. Allocates nothing per
   * record (two BigInts per call: the positions).
   */
  drain(fn: RecordFn, max = Infinity): number {
    const prod = Number(Atomics.load(this.#prodPos, 0));
    const buf = this.#producer.buf;
    let cons = this.#cons;
    let n = 0;
    try {
      while (cons < prod && n < max) {
        const at = PAGE + (cons & this.#mask);
        const len = Atomics.load(this.#hdr, at >>> 2);
        if ((len & BUSY) !== 0) break;
        const size = ((len & ~(BUSY | DISCARD)) >>> 0) + HDR;
        if ((len & DISCARD) === 0) {
          n++;
          cons += (size + 7) & ~7; // moved past before fn: a throwing fn does not see it again
          fn(buf, at + HDR, (len & ~(BUSY | DISCARD)) >>> 0);
        } else {
          cons += (size + 7) & ~7;
        }
      }
    } finally {
      if (cons !== this.#cons) {
        this.#cons = cons;
        Atomics.store(this.#consPos, 0, BigInt(cons));
      }
    }
    return n;
  }

  close(): void {
    munmap(this.#producer.ptr, this.#producer.len);
    munmap(this.#consumer.ptr, this.#consumer.len);
  }
}

/** A KReport (kernel-reports.ts, which applies it) to decode into, reused record after record. */
export const newKReport = (): KReport => ({ kind: 0, caddr: 0, vaddr: 0, raddr: 0, cport: 0, vport: 0, rport: 0, proto: 0, tcp_flags: 0, reply: 0, dir: 0, slot: 0, ip_len: 0, gso_segs: 0, ns: 0 });

/** Decode the struct kreport at byte `o` of `b` into `r` (no allocation); false when `len` is too short for one. */
export function readKReport(b: Buffer, o: number, len: number, r: KReport): boolean {
  if (len < KREPORT.size) return false;
  const f = KREPORT.off;
  r.caddr = b.readInt32BE(o + f.caddr); // int32, as the engine keeps addresses (core/packet-meta.ts)
  r.vaddr = b.readInt32BE(o + f.vaddr);
  r.raddr = b.readInt32BE(o + f.raddr);
  r.cport = b.readUInt16BE(o + f.cport);
  r.vport = b.readUInt16BE(o + f.vport);
  r.rport = b.readUInt16BE(o + f.rport);
  r.proto = b[o + f.proto]!;
  r.kind = b[o + f.kind]!;
  r.tcp_flags = b[o + f.tcp_flags]!;
  r.reply = b[o + f.reply]!;
  r.dir = b[o + f.dir]!;
  r.slot = b.readUInt32LE(o + f.slot);
  r.ip_len = b.readUInt32LE(o + f.ip_len);
  r.gso_segs = b.readUInt32LE(o + f.gso_segs);
  r.ns = b.readUInt32LE(o + f.ns) + b.readUInt32LE(o + f.ns + 4) * 0x100000000;
  return true;
}
