/**
 * Loads the committed eBPF objects (bpf/*.bpf.o, built by `npm run bpf`) with libbpf, called
 * through koffi. libbpf parses the ELF, creates the maps from their BTF definitions, applies
 * the map relocations and loads the programs; the project then owns plain file descriptors
 * (duplicated, close-on-exec) and closes the libbpf object at once, so the rest of ulvs deals
 * only with fds (closeFd), as before. Map element operations stay on bpf(2) directly
 * (bpf.ts MapOps: no allocation per packet).
 *
 * libbpf.so.1 (Debian libbpf1, 1.1 or later, installed with iproute2) is loaded on first use;
 * the functions used exist since libbpf 1.0. Sources: libbpf's src/libbpf.h.
 */
import { readFileSync } from 'node:fs';
import koffi from 'koffi';
import { libc } from './syscalls.js';
import { sys } from './sys.js';

/** The directory of the compiled objects (from dist/src/datapath/tun/ or src/datapath/tun/). */
export const BPF_DIR = new URL('../../../../bpf/', import.meta.url);

interface Lib {
  openMem: (buf: Buffer, size: number, opts: Buffer) => unknown;
  load: (obj: unknown) => number;
  close: (obj: unknown) => void;
  findProg: (obj: unknown, name: string) => unknown;
  findMap: (obj: unknown, name: string) => unknown;
  progFd: (p: unknown) => number;
  insnCnt: (p: unknown) => number;
  setLogBuf: (p: unknown, buf: Buffer, size: number) => number;
  mapFd: (m: unknown) => number;
  setMaxEntries: (m: unknown, n: number) => number;
  reuseFd: (m: unknown, fd: number) => number;
  messages: string[];
}
let lib: Lib | null = null;
/** buffers whose address a call holds (the object name of bpf_object__open_mem), referenced from here during the call */
const held = new Set<Buffer>();
const fcntl = libc.func('int fcntl(int fd, int cmd, ...)') as (fd: number, cmd: number, ...args: unknown[]) => number;
const F_DUPFD_CLOEXEC = 1030; // include/uapi/linux/fcntl.h

function libbpf(): Lib {
  if (lib) return lib;
  let so: koffi.IKoffiLib;
  try {
    so = koffi.load('libbpf.so.1');
  } catch (e) {
    throw new Error(`libbpf.so.1 not found (Debian: apt-get install libbpf1, which iproute2 brings): ${(e as Error).message}`);
  }
  koffi.opaque('bpf_object');
  const l: Lib = {
    openMem: so.func('bpf_object *bpf_object__open_mem(const void *buf, size_t size, const void *opts)'),
    load: so.func('int bpf_object__load(bpf_object *obj)'),
    close: so.func('void bpf_object__close(bpf_object *obj)'),
    findProg: so.func('void *bpf_object__find_program_by_name(bpf_object *obj, const char *name)'),
    findMap: so.func('void *bpf_object__find_map_by_name(bpf_object *obj, const char *name)'),
    progFd: so.func('int bpf_program__fd(void *prog)'),
    insnCnt: so.func('size_t bpf_program__insn_cnt(void *prog)'),
    setLogBuf: so.func('int bpf_program__set_log_buf(void *prog, void *buf, size_t size)'),
    mapFd: so.func('int bpf_map__fd(void *map)'),
    setMaxEntries: so.func('int bpf_map__set_max_entries(void *map, uint32_t n)'),
    reuseFd: so.func('int bpf_map__reuse_fd(void *map, int fd)'),
    messages: [],
  };
  // libbpf's messages (warnings: why a load failed) go into `messages` instead of stderr;
  // the format is expanded by libc's vsnprintf (va_list is passed on as the pointer it is).
  const vsnprintf = libc.func('int vsnprintf(void *buf, size_t size, const char *fmt, void *ap)') as (b: Buffer, n: number, f: string, ap: unknown) => number;
  const text = Buffer.alloc(2048);
  const printFn = koffi.proto('int libbpf_print_fn_t(int level, const char *fmt, void *ap)');
  const cb = koffi.register((level: number, fmt: string, ap: unknown) => {
    if (level > 0) return 0; // LIBBPF_WARN = 0; INFO and DEBUG are dropped
    const n = vsnprintf(text, text.length, fmt, ap);
    l.messages.push(text.toString('utf8', 0, Math.max(0, Math.min(n, text.length - 1))).trimEnd());
    return 0;
  }, koffi.pointer(printFn));
  (so.func('void *libbpf_set_print(libbpf_print_fn_t *fn)') as (f: unknown) => unknown)(cb);
  lib = l;
  return l;
}

/** A program and maps loaded from one object; the fds are the caller's to close. */
export interface Loaded {
  progFd: number;
  /** instructions of the program as loaded (after libbpf's relocations) */
  insns: number;
  maps: Record<string, number>;
}

export interface LoadOptions {
  /** max_entries to set per map name before the load */
  maxEntries?: Record<string, number>;
  /** existing map fds to use instead of creating the map (bpf_map__reuse_fd) */
  reuse?: Record<string, number>;
}

/**
 * Load program `prog` of bpf/`file` and return its fd and the fds of `mapNames`. Throws with
 * libbpf's messages and the verifier's log on failure; leaves nothing open then.
 */
export function loadObject(file: string, prog: string, mapNames: readonly string[], o: LoadOptions = {}): Loaded {
  const l = libbpf();
  const elf = readFileSync(new URL(file, BPF_DIR));
  l.messages.length = 0;
  // struct bpf_object_open_opts up to object_name (sz, then the name; later fields are zero
  // for libbpf when sz ends before them): names the object in libbpf's messages
  const name = Buffer.from(`${file}\0`);
  held.add(name);
  const opts = Buffer.alloc(16);
  opts.writeBigUInt64LE(16n, 0);
  opts.writeBigUInt64LE(BigInt(koffi.address(name) as bigint), 8);
  const obj = l.openMem(elf, elf.length, opts);
  held.delete(name); // libbpf has copied it
  if (!obj) throw new Error(`libbpf: cannot open bpf/${file}: ${sys.strerror(sys.errno())}${l.messages.length ? `\n${l.messages.join('\n')}` : ''}`);
  const owned: number[] = [];
  try {
    const p = l.findProg(obj, prog);
    if (!p) throw new Error(`libbpf: no program ${prog} in bpf/${file}`);
    const log = Buffer.alloc(256 * 1024);
    l.setLogBuf(p, log, log.length); // log level 0: libbpf loads again with level 1 on a failure
    const map = (name: string) => {
      const m = l.findMap(obj, name);
      if (!m) throw new Error(`libbpf: no map ${name} in bpf/${file}`);
      return m;
    };
    for (const [name, n] of Object.entries(o.maxEntries ?? {})) check(l.setMaxEntries(map(name), n), `set max_entries of ${name}`);
    for (const [name, fd] of Object.entries(o.reuse ?? {})) check(l.reuseFd(map(name), fd), `reuse the fd of ${name}`);
    const r = l.load(obj);
    if (r < 0) {
      const end = log.indexOf(0);
      const verifier = log.toString('utf8', 0, end >= 0 ? end : log.length).trim();
      throw new Error(`libbpf: loading ${prog} failed: ${sys.strerror(-r)} (errno ${-r})\n${[...l.messages, verifier.length > 4000 ? `...${verifier.slice(-4000)}` : verifier].join('\n')}`.trim());
    }
    const progFd = dup(l.progFd(p));
    owned.push(progFd);
    const maps: Record<string, number> = {};
    for (const name of mapNames) owned.push((maps[name] = dup(l.mapFd(map(name)))));
    return { progFd, insns: Number(l.insnCnt(p)), maps };
  } catch (e) {
    for (const fd of owned) sys.close(fd);
    throw e;
  } finally {
    l.close(obj);
  }
}

function check(r: number, what: string): void {
  if (r < 0) throw new Error(`libbpf: ${what}: ${sys.strerror(-r)}`);
}

/** A close-on-exec duplicate of fd (the original belongs to the libbpf object). */
function dup(fd: number): number {
  if (fd < 0) throw new Error(`libbpf: no fd (${sys.strerror(-fd)})`);
  const r = fcntl(fd, F_DUPFD_CLOEXEC, 'int', 3);
  if (r < 0) throw new Error(`fcntl(F_DUPFD_CLOEXEC): ${sys.strerror(sys.errno())}`);
  return r;
}
