/**
 * eBPF without a compiler: an assembler for the instruction set (labels resolved to relative
 * jumps, map references as BPF_PSEUDO_MAP_FD loads) and the bpf(2) commands ulvs uses, reached
 * through koffi. The programs themselves (steering.ts, fastpath.ts) are written with these
 * helpers; every number here comes from include/uapi/linux/bpf.h and bpf_common.h.
 *
 * Why not clang + libbpf: the project builds with `npm ci` alone on a machine without a BPF
 * toolchain, the programs are small (tens of instructions), and writing them out keeps every
 * instruction reviewable next to the packet layout it relies on. The kernel's verifier checks
 * them at load time; its log is reported on failure.
 */
import koffi from 'koffi';
import { sys } from './sys.js';
import { ENOENT, syscall as syscall3, syscalls } from './syscalls.js';

/** bpf(2) commands */
export const BPF_CMD = {
  MAP_CREATE: 0,
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  PROG_LOAD: 5,
  PROG_TEST_RUN: 10,
  MAP_UPDATE_BATCH: 26,
  MAP_DELETE_BATCH: 27,
  LINK_CREATE: 28,
} as const;

export const BPF_PROG_TYPE = { SOCKET_FILTER: 1, SCHED_CLS: 3 } as const;
export const BPF_MAP_TYPE = { HASH: 1, ARRAY: 2 } as const;
/** map_flags */
export const BPF_F_MMAPABLE = 1 << 10;
/** attach types */
export const BPF_TCX_INGRESS = 46;

/** One instruction: opcode, dst and src registers, offset (or a label for jumps), immediate. */
export interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number | string;
  imm: number;
}
export type Asm = (Insn | string)[];
export const I = (code: number, dst = 0, src = 0, off: number | string = 0, imm = 0): Insn => ({ code, dst, src, off, imm });

// Opcode parts
export const LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU = 0x04, JMP = 0x05, JMP32 = 0x06, ALU64 = 0x07;
export const W = 0x00, H = 0x08, B = 0x10, DW = 0x18;
export const IMM = 0x00, ABS = 0x20, IND = 0x40, MEM = 0x60, ATOMIC = 0xc0;
export const ADD = 0x00, SUB = 0x10, MUL = 0x20, OR = 0x40, AND = 0x50, LSH = 0x60, RSH = 0x70, XOR = 0xa0, MOV = 0xb0, END = 0xd0;
export const K = 0x00, X = 0x08;
export const JA = 0x00, JEQ = 0x10, JGT = 0x20, JGE = 0x30, JSET = 0x40, JNE = 0x50, JLT = 0xa0, JLE = 0xb0, CALL = 0x80, EXIT = 0x90;
/** byte-swap to big-endian (with END; imm = 16 / 32 / 64) */
export const TO_BE = 0x08;

/** dst = *(size *)(src + off) */
export const ldx = (size: number, dst: number, src: number, off: number): Insn => I(LDX | MEM | size, dst, src, off);
/** *(size *)(dst + off) = src */
export const stx = (size: number, dst: number, off: number, src: number): Insn => I(STX | MEM | size, dst, src, off);
/** *(size *)(dst + off) = imm */
export const st = (size: number, dst: number, off: number, imm: number): Insn => I(ST | MEM | size, dst, 0, off, imm);
/** atomically *(u64 *)(dst + off) += src */
export const xadd64 = (dst: number, off: number, src: number): Insn => I(STX | ATOMIC | DW, dst, src, off, ADD);
/** call a kernel helper by number */
export const call = (helper: number): Insn => I(JMP | CALL, 0, 0, 0, helper);
export const exit = (): Insn => I(JMP | EXIT);
/** dst = map (a 16-byte BPF_PSEUDO_MAP_FD load: two instruction slots) */
export const ldMap = (dst: number, mapFd: number): Insn[] => [I(LD | IMM | DW, dst, 1, 0, mapFd), I(0, 0, 0, 0, 0)];

/** Assemble: labels (strings) name the next instruction; string `off`s become relative jumps. */
export function assemble(prog: Asm): Buffer {
  const labels = new Map<string, number>();
  const insns: Insn[] = [];
  for (const x of prog) {
    if (typeof x === 'string') {
      if (labels.has(x)) throw new Error(`bpf: label ${x} defined twice`);
      labels.set(x, insns.length);
    } else insns.push(x);
  }
  const out = Buffer.alloc(insns.length * 8);
  insns.forEach((x, i) => {
    let off = x.off;
    if (typeof off === 'string') {
      const target = labels.get(off);
      if (target === undefined) throw new Error(`bpf: unknown label ${off}`);
      off = target - i - 1;
    }
    out[i * 8] = x.code;
    out[i * 8 + 1] = ((x.src & 15) << 4) | (x.dst & 15);
    out.writeInt16LE(off, i * 8 + 2);
    out.writeInt32LE(x.imm | 0, i * 8 + 4);
  });
  return out;
}

const addr = (b: Buffer): bigint => BigInt(koffi.address(b) as bigint);

/** bpf(cmd, attr); returns the result (fd or 0) or throws with errno's text. */
export function bpfCall(cmd: number, attr: Buffer, what: string): number {
  const r = syscall3(syscalls().bpf, 'int', cmd, 'void *', attr, 'unsigned int', attr.length);
  if (r < 0) throw new BpfError(what, sys.errno());
  return r;
}

export class BpfError extends Error {
  constructor(
    readonly call: string,
    readonly errno: number,
    detail = '',
  ) {
    super(`bpf(${call}): ${sys.strerror(errno)} (errno ${errno})${detail ? `\n${detail}` : ''}`);
  }
}

/** Load a program; returns its fd. Throws with the verifier's log on failure. */
export function loadProgram(type: number, code: Buffer, name: string): number {
  // The fast path calls bpf_fib_lookup, which the kernel offers only to GPL-compatible programs;
  // the programs are the project's own code (MIT), offered under GPL too for that purpose.
  const license = Buffer.from('Dual MIT/GPL\0');
  const log = Buffer.alloc(256 * 1024);
  const attr = Buffer.alloc(128);
  attr.writeUInt32LE(type, 0);
  attr.writeUInt32LE(code.length / 8, 4);
  attr.writeBigUInt64LE(addr(code), 8);
  attr.writeBigUInt64LE(addr(license), 16);
  attr.writeUInt32LE(1, 24); // log level
  attr.writeUInt32LE(log.length, 28);
  attr.writeBigUInt64LE(addr(log), 32);
  attr.write(name.slice(0, 15), 48);
  const fd = syscall3(syscalls().bpf, 'int', BPF_CMD.PROG_LOAD, 'void *', attr, 'unsigned int', attr.length);
  if (fd < 0) {
    const e = sys.errno();
    const end = log.indexOf(0);
    const text = log.toString('utf8', 0, end >= 0 ? end : log.length).trim();
    // the tail of the log holds the reason
    throw new BpfError('BPF_PROG_LOAD', e, text.length > 4000 ? `...${text.slice(-4000)}` : text);
  }
  return fd;
}

/** Create a map; returns its fd. */
export function createMap(type: number, keySize: number, valueSize: number, maxEntries: number, name: string, flags = 0): number {
  const attr = Buffer.alloc(72);
  attr.writeUInt32LE(type, 0);
  attr.writeUInt32LE(keySize, 4);
  attr.writeUInt32LE(valueSize, 8);
  attr.writeUInt32LE(maxEntries, 12);
  attr.writeUInt32LE(flags, 16);
  attr.write(name.slice(0, 15), 28);
  return bpfCall(BPF_CMD.MAP_CREATE, attr, `BPF_MAP_CREATE ${name}`);
}

/** Element operations on one map with buffers reused across calls (no allocation per call). */
export class MapOps {
  readonly #elem = Buffer.alloc(32);
  readonly #batch = Buffer.alloc(56);
  constructor(readonly fd: number) {}

  /** lookup into `value`; false when the key is absent */
  lookup(key: Buffer, value: Buffer): boolean {
    return this.#elemCall(BPF_CMD.MAP_LOOKUP_ELEM, key, value, 0, true);
  }
  update(key: Buffer, value: Buffer, flags = 0): void {
    this.#elemCall(BPF_CMD.MAP_UPDATE_ELEM, key, value, flags, false);
  }
  /** false when the key was absent */
  delete(key: Buffer): boolean {
    return this.#elemCall(BPF_CMD.MAP_DELETE_ELEM, key, null, 0, true);
  }

  #elemCall(cmd: number, key: Buffer, value: Buffer | null, flags: number, absentOk: boolean): boolean {
    const a = this.#elem;
    a.fill(0);
    a.writeUInt32LE(this.fd, 0);
    a.writeBigUInt64LE(addr(key), 8);
    if (value) a.writeBigUInt64LE(addr(value), 16);
    a.writeBigUInt64LE(BigInt(flags), 24);
    const r = syscall3(syscalls().bpf, 'int', cmd, 'void *', a, 'unsigned int', a.length);
    if (r >= 0) return true;
    const e = sys.errno();
    if (absentOk && e === ENOENT) return false;
    throw new BpfError(cmd === BPF_CMD.MAP_UPDATE_ELEM ? 'BPF_MAP_UPDATE_ELEM' : cmd === BPF_CMD.MAP_DELETE_ELEM ? 'BPF_MAP_DELETE_ELEM' : 'BPF_MAP_LOOKUP_ELEM', e);
  }

  /**
   * Update `count` elements at once (keys and values packed back to back). Returns how many were
   * written; stops at the first failure (E2BIG when the map is full), whose errno is returned too.
   */
  updateBatch(keys: Buffer, values: Buffer, count: number): { done: number; errno: number } {
    return this.#batchCall(BPF_CMD.MAP_UPDATE_BATCH, keys, values, count);
  }
  /** Delete `count` keys at once; absent keys end the batch with ENOENT (the rest are retried one by one). */
  deleteBatch(keys: Buffer, count: number, keySize: number): number {
    const r = this.#batchCall(BPF_CMD.MAP_DELETE_BATCH, keys, null, count);
    let done = r.done;
    // ENOENT stops the batch at the missing key: skip it and go on with the rest one by one.
    for (let i = r.done + (r.errno === 0 ? 0 : 1); i < count; i++) if (this.delete(keys.subarray(i * keySize, (i + 1) * keySize))) done++;
    return done;
  }

  #batchCall(cmd: number, keys: Buffer, values: Buffer | null, count: number): { done: number; errno: number } {
    if (count === 0) return { done: 0, errno: 0 };
    const a = this.#batch;
    a.fill(0);
    a.writeBigUInt64LE(addr(keys), 16);
    if (values) a.writeBigUInt64LE(addr(values), 24);
    a.writeUInt32LE(count, 32);
    a.writeUInt32LE(this.fd, 36);
    const r = syscall3(syscalls().bpf, 'int', cmd, 'void *', a, 'unsigned int', a.length);
    const done = a.readUInt32LE(32);
    if (r >= 0) return { done, errno: 0 };
    return { done, errno: sys.errno() };
  }
}

/** Attach a SCHED_CLS program at the tcx ingress hook of an interface; returns the link fd.
 *  The program stays attached until the link fd is closed (also when the process dies). */
export function attachTcxIngress(progFd: number, ifindex: number): number {
  const attr = Buffer.alloc(64);
  attr.writeUInt32LE(progFd, 0);
  attr.writeUInt32LE(ifindex, 4);
  attr.writeUInt32LE(BPF_TCX_INGRESS, 8);
  return bpfCall(BPF_CMD.LINK_CREATE, attr, `BPF_LINK_CREATE tcx ingress ifindex ${ifindex}`);
}

/**
 * Run a SCHED_CLS program once on `packet` (an Ethernet frame) in the kernel (BPF_PROG_TEST_RUN):
 * returns the program's return value and the packet as the program left it. `ctx` sets
 * __sk_buff fields the test needs (ingress_ifindex at 36, ifindex at 40).
 */
export function testRun(progFd: number, packet: Buffer, ctx?: Buffer): { retval: number; out: Buffer } {
  const out = Buffer.alloc(packet.length + 256);
  const attr = Buffer.alloc(80);
  attr.writeUInt32LE(progFd, 0);
  attr.writeUInt32LE(packet.length, 8); // data_size_in
  attr.writeUInt32LE(out.length, 12); // data_size_out
  attr.writeBigUInt64LE(addr(packet), 16);
  attr.writeBigUInt64LE(addr(out), 24);
  attr.writeUInt32LE(1, 32); // repeat
  if (ctx) {
    attr.writeUInt32LE(ctx.length, 40); // ctx_size_in
    attr.writeBigUInt64LE(addr(ctx), 48);
  }
  bpfCall(BPF_CMD.PROG_TEST_RUN, attr, 'BPF_PROG_TEST_RUN');
  return { retval: attr.readInt32LE(4), out: out.subarray(0, attr.readUInt32LE(12)) };
}
