/**
 * The bpf(2) commands ulvs makes itself, through koffi: map element operations for the
 * Offloader and the steering map (buffers reused, no allocation per call), the tcx link that
 * attaches a program (libbpf 1.1 has no call for it), and BPF_PROG_TEST_RUN for the tests.
 * Programs and maps are created by libbpf from the compiled objects (libbpf.ts). Every number
 * here comes from include/uapi/linux/bpf.h; the system call number from syscalls.ts.
 */
import koffi from 'koffi';
import { sys } from './sys.js';
import { ENOENT, syscall as syscall3, syscalls } from './syscalls.js';

/** bpf(2) commands */
export const BPF_CMD = {
  MAP_LOOKUP_ELEM: 1,
  MAP_UPDATE_ELEM: 2,
  MAP_DELETE_ELEM: 3,
  PROG_TEST_RUN: 10,
  MAP_UPDATE_BATCH: 26,
  MAP_DELETE_BATCH: 27,
  LINK_CREATE: 28,
} as const;

/** attach types */
export const BPF_TCX_INGRESS = 46;

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

/** Element operations on one map with buffers reused across calls (no allocation per call). */
export class MapOps {
  readonly #elem = Buffer.alloc(32);
  readonly #batch = Buffer.alloc(56);
  /** bpf(2)'s number on this architecture */
  readonly #nr = syscalls().bpf;
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
    const r = syscall3(this.#nr, 'int', cmd, 'void *', a, 'unsigned int', a.length);
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
    const r = syscall3(this.#nr, 'int', cmd, 'void *', a, 'unsigned int', a.length);
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
