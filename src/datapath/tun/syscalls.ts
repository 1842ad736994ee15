/**
 * The C library (loaded once, through koffi) and the numbers the data path passes to the kernel
 * directly: system call numbers, which differ between architectures, and errno values, which do
 * not (between x86-64 and arm64).
 *
 * Sources: system call numbers from the kernel's arch/x86/entry/syscalls/syscall_64.tbl (x64)
 * and include/uapi/asm-generic/unistd.h (arm64 uses the generic table); errno values from
 * include/uapi/asm-generic/errno-base.h and errno.h (shared by both architectures).
 */
import koffi from 'koffi';

/** libc.so.6, loaded once for every caller in the project. */
export const libc = koffi.load('libc.so.6');

/** syscall(2) with variadic arguments: each call names its argument types ('int', 'void *', ...). */
export const syscall = libc.func('long syscall(long number, ...)') as (n: number, ...args: unknown[]) => number;

/** Every system call that ulvs makes by number (all others go through libc's wrappers). */
export const SYSCALL_TABLES = {
  x64: { bpf: 321, io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427 },
  arm64: { bpf: 280, io_uring_setup: 425, io_uring_enter: 426, io_uring_register: 427 },
} as const satisfies Record<string, Record<string, number>>;

export type SyscallName = keyof (typeof SYSCALL_TABLES)['x64'];
export type SyscallTable = Readonly<Record<SyscallName, number>>;

/** The table for a Node.js `process.arch` value; throws for an architecture without one. */
export function syscallTable(arch: string): SyscallTable {
  const t = (SYSCALL_TABLES as Record<string, SyscallTable>)[arch];
  if (!t) throw new Error(`ulvs: no system call numbers for architecture '${arch}' (known: ${Object.keys(SYSCALL_TABLES).join(', ')}); the TUN data path's eBPF and io_uring parts cannot run here`);
  return t;
}

let current: SyscallTable | null = null;
/** The table of this machine (process.arch); throws on first use on an unknown architecture,
 *  so that code paths without these calls still work there. */
export function syscalls(): SyscallTable {
  current ??= syscallTable(process.arch);
  return current;
}

/** errno values (asm-generic, identical on x64 and arm64). */
export const ENOENT = 2;
export const EINTR = 4;
export const E2BIG = 7;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EBUSY = 16;
export const EINVAL = 22;
export const ETIME = 62;
export const ENOBUFS = 105;

/** errno of the calling thread after the last koffi call. */
export const errno = (): number => koffi.errno();
