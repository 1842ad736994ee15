/**
 * The bpf(2) commands ulvs makes itself, through koffi: map element operations for the
 * Offloader and the steering map (buffers reused, no allocation per call), the tcx link that
 * attaches a program (libbpf 1.1 has no call for it), the link-less tcx attachment that outlives
 * the process (ulvs rs-setup) with its query and detach, and BPF_PROG_TEST_RUN for the tests.
 * Programs and maps are created by libbpf from the compiled objects (libbpf.ts). Every number
 * here comes from include/uapi/linux/bpf.h; the system call number from syscalls.ts.
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
  MAP_GET_NEXT_KEY: 4,
  PROG_ATTACH: 8,
  PROG_DETACH: 9,
  PROG_TEST_RUN: 10,
  PROG_GET_FD_BY_ID: 13,
  MAP_GET_FD_BY_ID: 14,
  OBJ_GET_INFO_BY_FD: 15,
  PROG_QUERY: 16,
  MAP_LOOKUP_AND_DELETE_ELEM: 21,
  MAP_UPDATE_BATCH: 26,
  MAP_DELETE_BATCH: 27,
  LINK_CREATE: 28,
} as const;

/** attach types */
export const BPF_TCX_INGRESS = 46;
export const BPF_TCX_EGRESS = 47;

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
  /** A QUEUE or STACK map: push `value` (BPF_MAP_UPDATE_ELEM with a NULL key, BPF_ANY).
   *  Returns 0, or the errno (E2BIG: the map is full); never throws, allocates nothing. */
  push(value: Buffer): number {
    const a = this.#elem;
    a.fill(0);
    a.writeUInt32LE(this.fd, 0);
    a.writeBigUInt64LE(addr(value), 16);
    const r = syscall3(this.#nr, 'int', BPF_CMD.MAP_UPDATE_ELEM, 'void *', a, 'unsigned int', a.length);
    return r >= 0 ? 0 : sys.errno();
  }
  /** false when the key was absent */
  delete(key: Buffer): boolean {
    return this.#elemCall(BPF_CMD.MAP_DELETE_ELEM, key, null, 0, true);
  }

  /** the key after `key` (the first key when null) into `next`; false at the end (not for the hot path) */
  nextKey(key: Buffer | null, next: Buffer): boolean {
    const a = Buffer.alloc(32);
    a.writeUInt32LE(this.fd, 0);
    if (key) a.writeBigUInt64LE(addr(key), 8);
    a.writeBigUInt64LE(addr(next), 16);
    const r = syscall3(this.#nr, 'int', BPF_CMD.MAP_GET_NEXT_KEY, 'void *', a, 'unsigned int', a.length);
    if (r >= 0) return true;
    const e = sys.errno();
    if (e === ENOENT) return false;
    throw new BpfError('BPF_MAP_GET_NEXT_KEY', e);
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
   * With `from`, the batch starts at element `from` (of keySize and valueSize bytes) of the buffers.
   */
  updateBatch(keys: Buffer, values: Buffer, count: number, from = 0, keySize = 0, valueSize = 0): { done: number; errno: number } {
    return this.#batchCall(BPF_CMD.MAP_UPDATE_BATCH, keys, values, count, from * keySize, from * valueSize);
  }
  /** Delete `count` keys at once; absent keys end the batch with ENOENT (the rest are retried one by one). */
  deleteBatch(keys: Buffer, count: number, keySize: number): number {
    const r = this.#batchCall(BPF_CMD.MAP_DELETE_BATCH, keys, null, count);
    let done = r.done;
    // ENOENT stops the batch at the missing key: skip it and go on with the rest one by one.
    for (let i = r.done + (r.errno === 0 ? 0 : 1); i < count; i++) if (this.delete(keys.subarray(i * keySize, (i + 1) * keySize))) done++;
    return done;
  }

  #batchCall(cmd: number, keys: Buffer, values: Buffer | null, count: number, keysAt = 0, valuesAt = 0): { done: number; errno: number } {
    if (count === 0) return { done: 0, errno: 0 };
    const a = this.#batch;
    a.fill(0);
    a.writeBigUInt64LE(addr(keys) + BigInt(keysAt), 16);
    if (values) a.writeBigUInt64LE(addr(values) + BigInt(valuesAt), 24);
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

/** Attach a SCHED_CLS program at the tcx egress hook of an interface; returns the link fd (the
 *  program goes with the fd, as attachTcxIngress). */
export function attachTcxEgress(progFd: number, ifindex: number): number {
  const attr = Buffer.alloc(64);
  attr.writeUInt32LE(progFd, 0);
  attr.writeUInt32LE(ifindex, 4);
  attr.writeUInt32LE(BPF_TCX_EGRESS, 8);
  return bpfCall(BPF_CMD.LINK_CREATE, attr, `BPF_LINK_CREATE tcx egress ifindex ${ifindex}`);
}

/**
 * Attach a SCHED_CLS program at the tcx ingress of an interface without a link (BPF_PROG_ATTACH,
 * tcx since Linux 6.6): the device holds the program until progDetachTcxIngress or until the
 * device goes away, whatever happens to this process and its mount namespace. Appended after
 * the programs already there (no ordering flags).
 */
export function progAttachTcxIngress(progFd: number, ifindex: number): void {
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(ifindex, 0); // target_ifindex
  attr.writeUInt32LE(progFd, 4); // attach_bpf_fd
  attr.writeUInt32LE(BPF_TCX_INGRESS, 8); // attach_type
  bpfCall(BPF_CMD.PROG_ATTACH, attr, `BPF_PROG_ATTACH tcx ingress ifindex ${ifindex}`);
}

/** Detach the program `progFd` from the tcx ingress of an interface (attached by progAttachTcxIngress). */
export function progDetachTcxIngress(progFd: number, ifindex: number): void {
  const attr = Buffer.alloc(32);
  attr.writeUInt32LE(ifindex, 0);
  attr.writeUInt32LE(progFd, 4);
  attr.writeUInt32LE(BPF_TCX_INGRESS, 8);
  bpfCall(BPF_CMD.PROG_DETACH, attr, `BPF_PROG_DETACH tcx ingress ifindex ${ifindex}`);
}

/** The ids of the programs at the tcx ingress of an interface, in the order they run (at most 64). */
export function tcxIngressProgIds(ifindex: number): number[] {
  const ids = Buffer.alloc(64 * 4);
  const attr = Buffer.alloc(64);
  attr.writeUInt32LE(ifindex, 0); // target_ifindex
  attr.writeUInt32LE(BPF_TCX_INGRESS, 4); // attach_type
  attr.writeBigUInt64LE(addr(ids), 16); // prog_ids
  attr.writeUInt32LE(64, 24); // count
  bpfCall(BPF_CMD.PROG_QUERY, attr, `BPF_PROG_QUERY tcx ingress ifindex ${ifindex}`);
  const n = Math.min(attr.readUInt32LE(24), 64);
  return Array.from({ length: n }, (_, i) => ids.readUInt32LE(i * 4));
}

/** An fd for the program (or map) with this id; null when no such object exists (any more). */
export function fdById(kind: 'prog' | 'map', id: number): number | null {
  const attr = Buffer.alloc(16);
  attr.writeUInt32LE(id, 0);
  const r = syscall3(syscalls().bpf, 'int', kind === 'prog' ? BPF_CMD.PROG_GET_FD_BY_ID : BPF_CMD.MAP_GET_FD_BY_ID, 'void *', attr, 'unsigned int', attr.length);
  if (r >= 0) return r;
  const e = sys.errno();
  if (e === ENOENT) return null;
  throw new BpfError(kind === 'prog' ? 'BPF_PROG_GET_FD_BY_ID' : 'BPF_MAP_GET_FD_BY_ID', e);
}

/** A program's id, name (as loaded: at most 15 bytes) and the ids of the maps it uses (struct bpf_prog_info). */
export function progInfo(progFd: number): { id: number; name: string; mapIds: number[] } {
  const mapIds = Buffer.alloc(64 * 4);
  const info = Buffer.alloc(228); // struct bpf_prog_info up to and including name (offset 64, 16 bytes) and beyond
  info.writeUInt32LE(64, 52); // nr_map_ids
  info.writeBigUInt64LE(addr(mapIds), 56); // map_ids
  const attr = Buffer.alloc(16);
  attr.writeUInt32LE(progFd, 0); // bpf_fd
  attr.writeUInt32LE(info.length, 4); // info_len
  attr.writeBigUInt64LE(addr(info), 8); // info
  bpfCall(BPF_CMD.OBJ_GET_INFO_BY_FD, attr, 'BPF_OBJ_GET_INFO_BY_FD');
  const name = info.subarray(64, 80);
  const n = Math.min(info.readUInt32LE(52), 64);
  return { id: info.readUInt32LE(4), name: name.toString('latin1', 0, name.indexOf(0) >= 0 ? name.indexOf(0) : 16), mapIds: Array.from({ length: n }, (_, i) => mapIds.readUInt32LE(i * 4)) };
}

/** Fds of the maps named `names` among those program `progFd` uses, by name (the first of each
 *  name; a name it has none of is absent); every other map fd it opened on the way is closed.
 *  The caller owns the returned fds. */
export function progMapsByName(progFd: number, names: readonly string[]): Map<string, number> {
  const found = new Map<string, number>();
  for (const id of progInfo(progFd).mapIds) {
    const fd = fdById('map', id);
    if (fd === null) continue;
    const name = mapInfo(fd).name;
    if (names.includes(name) && !found.has(name)) found.set(name, fd);
    else sys.close(fd);
  }
  return found;
}

/** A map's id, name and size (struct bpf_map_info: id at 4, max_entries at 16, name at 24, 16 bytes). */
export function mapInfo(mapFd: number): { id: number; name: string; maxEntries: number; valueSize: number } {
  const info = Buffer.alloc(88);
  const attr = Buffer.alloc(16);
  attr.writeUInt32LE(mapFd, 0);
  attr.writeUInt32LE(info.length, 4);
  attr.writeBigUInt64LE(addr(info), 8);
  bpfCall(BPF_CMD.OBJ_GET_INFO_BY_FD, attr, 'BPF_OBJ_GET_INFO_BY_FD');
  const name = info.subarray(24, 40);
  return { id: info.readUInt32LE(4), name: name.toString('latin1', 0, name.indexOf(0) >= 0 ? name.indexOf(0) : 16), maxEntries: info.readUInt32LE(16), valueSize: info.readUInt32LE(12) };
}

/**
 * Run a SCHED_CLS program once on `packet` (an Ethernet frame) in the kernel (BPF_PROG_TEST_RUN):
 * returns the program's return value and the packet as the program left it. `ctx` sets
 * __sk_buff fields the test needs (ingress_ifindex at 36, ifindex at 40). durationNs: the
 * kernel's own time for the run (bpf_test_run's duration).
 */
export function testRun(progFd: number, packet: Buffer, ctx?: Buffer): { retval: number; out: Buffer; durationNs: number } {
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
  return { retval: attr.readInt32LE(4), out: out.subarray(0, attr.readUInt32LE(12)), durationNs: attr.readUInt32LE(36) };
}
