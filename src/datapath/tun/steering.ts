/**
 * Queue steering for a multi-queue TUN (TUNSETSTEERINGEBPF): which data-path worker gets a
 * packet. The kernel's default hashes the packet's own 5-tuple, but VS/NAT changes the tuple
 * between a request (client -> VIP) and its reply (RIP -> client), so the two directions of a
 * connection would reach different workers. This eBPF program keys on the *client address*,
 * which both directions carry:
 *
 *   destination is a VIP         -> key = source address (the client)
 *     ... ICMP to a VIP          -> key = the quoted packet's destination (the client)
 *   anything else (replies from real servers, ICMP from them or from this host)
 *                                -> key = destination address (the client)
 *   queue = ((key & mask) * 0x9E3779B1) >> 16, modulo the number of queues (done by the kernel)
 *
 * `mask` is the coarsest persistence netmask in use, so every client network that must stick
 * to one real server is handled by one worker (persistence templates stay exact). Each worker
 * keeps its own connection table: nothing is shared, nothing is locked.
 *
 * The program is a handful of classic LD_ABS/LD_IND loads (socket-filter type), assembled here
 * by hand because the project has no BPF compiler; the verifier's log is reported on failure.
 */
import koffi from 'koffi';
import { sys, SysError } from './sys.js';

const libc = koffi.load('libc.so.6');
const syscall3 = libc.func('long syscall(long number, ...)') as (n: number, ...args: unknown[]) => number;
const SYS_bpf = 321; // x86-64
const BPF_PROG_LOAD = 5;
const BPF_PROG_TYPE_SOCKET_FILTER = 1;
export const TUNSETSTEERINGEBPF = 0x800454e0;

/** One eBPF instruction: opcode, dst and src registers, offset, immediate. */
interface Insn {
  code: number;
  dst: number;
  src: number;
  off: number | string; // a label for jumps
  imm: number;
}
const I = (code: number, dst = 0, src = 0, off: number | string = 0, imm = 0): Insn => ({ code, dst, src, off, imm });

// Opcode parts (include/uapi/linux/bpf.h, bpf_common.h)
const LD = 0x00, ALU = 0x04, JMP = 0x05, JMP32 = 0x06, ALU64 = 0x07;
const W = 0x00, B = 0x10, ABS = 0x20, IND = 0x40;
const H = 0x08;
const MOV = 0xb0, AND = 0x50, LSH = 0x60, RSH = 0x70, MUL = 0x20, ADD = 0x00, XOR = 0xa0;
const K = 0x00, X = 0x08;
const JA = 0x00, JEQ = 0x10, EXIT = 0x90;

/** Assemble: resolve labels (strings in `off`) to relative jumps; `labels` maps name -> index. */
function assemble(prog: (Insn | string)[]): Buffer {
  const labels = new Map<string, number>();
  const insns: Insn[] = [];
  for (const x of prog) {
    if (typeof x === 'string') labels.set(x, insns.length);
    else insns.push(x);
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

/** r0 = IP header length in bytes (from the version/IHL byte at `at` + register `base`, or absolute). */
const ihl = (at: number, base?: number): Insn[] => [
  base === undefined ? I(LD | ABS | B, 0, 0, 0, at) : I(LD | IND | B, 0, base, 0, at),
  I(ALU | AND | K, 0, 0, 0, 0x0f),
  I(ALU | LSH | K, 0, 0, 0, 2),
];

/**
 * The steering program for these VIPs (uint32). `mask` (the coarsest persistence netmask) keys
 * on the client address; `flow` (allowed only when no service is persistent) keys on the client
 * address XOR the client port, so one client's connections spread over the workers while both
 * directions of each, and ICMP errors about it, still meet in one worker:
 *   to a VIP, TCP/UDP      source address ^ source port
 *   to a VIP, ICMP         quoted packet (a reply): destination address ^ destination port
 *   other, TCP/UDP         destination address ^ destination port (a reply to the client)
 *   other, ICMP            quoted packet (client -> real server): source address ^ source port
 */
export function steeringProgram(vips: readonly number[], mask: number, flow = false): Buffer {
  const p: (Insn | string)[] = [
    I(ALU64 | MOV | X, 6, 1), //                     r6 = ctx (LD_ABS needs it in r6)
    I(LD | ABS | W, 0, 0, 0, 16), //                 r0 = destination address
    I(ALU | MOV | X, 7, 0), //                       r7 = r0
  ];
  for (const v of vips) p.push(I(JMP32 | JEQ | K, 7, 0, 'inbound', v | 0)); // dst is a VIP?
  if (!flow) p.push(I(ALU | MOV | X, 0, 7)); //      outbound: key = destination (the client)
  else
    p.push(
      I(LD | ABS | B, 0, 0, 0, 9), //                r0 = protocol
      I(JMP | JEQ | K, 0, 0, 'out_icmp', 1),
      ...ihl(0),
      I(ALU64 | MOV | X, 8, 0), //                   r8 = IP header length
      I(LD | IND | H, 0, 8, 0, 2), //                r0 = destination port
      I(ALU | XOR | X, 0, 7), //                     ^ destination address
      I(JMP | JA, 0, 0, 'key'),
      'out_icmp',
      ...ihl(0),
      I(ALU64 | MOV | X, 8, 0), //                   r8 = outer header length
      ...ihl(8, 8), //                               r0 = quoted header length
      I(ALU64 | ADD | X, 0, 8),
      I(ALU64 | MOV | X, 9, 0), //                   r9 = offset of the quoted L4 header - 8
      I(LD | IND | W, 0, 8, 0, 8 + 12), //           quoted source address (the client)
      I(ALU | MOV | X, 7, 0),
      I(LD | IND | H, 0, 9, 0, 8), //                quoted source port
      I(ALU | XOR | X, 0, 7),
    );
  // Without VIPs the inbound part would be unreachable, which the verifier refuses.
  if (vips.length > 0) {
    p.push(
      I(JMP | JA, 0, 0, 'key'),
      'inbound',
      I(LD | ABS | B, 0, 0, 0, 9), //                r0 = protocol
      I(JMP | JEQ | K, 0, 0, 'icmp', 1),
    );
    if (!flow) p.push(I(LD | ABS | W, 0, 0, 0, 12)); // key = source (the client)
    else
      p.push(
        ...ihl(0),
        I(ALU64 | MOV | X, 8, 0),
        I(LD | ABS | W, 0, 0, 0, 12), //             source address (the client)
        I(ALU | MOV | X, 7, 0),
        I(LD | IND | H, 0, 8, 0, 0), //              source port
        I(ALU | XOR | X, 0, 7),
      );
    p.push(I(JMP | JA, 0, 0, 'key'), 'icmp', ...ihl(0), I(ALU64 | MOV | X, 8, 0)); // r8 = IP header length
    if (!flow) p.push(I(LD | IND | W, 0, 8, 0, 8 + 16)); // key = quoted packet's destination (the client)
    else
      p.push(
        ...ihl(8, 8),
        I(ALU64 | ADD | X, 0, 8),
        I(ALU64 | MOV | X, 9, 0),
        I(LD | IND | W, 0, 8, 0, 8 + 16), //         quoted destination address (the client)
        I(ALU | MOV | X, 7, 0),
        I(LD | IND | H, 0, 9, 0, 8 + 2), //          quoted destination port
        I(ALU | XOR | X, 0, 7),
      );
  }
  p.push(
    'key',
    I(ALU | AND | K, 0, 0, 0, mask | 0),
    I(ALU | MUL | K, 0, 0, 0, 0x9e3779b1 | 0),
    I(ALU | RSH | K, 0, 0, 0, 16),
    I(JMP | EXIT),
  );
  return assemble(p);
}

/** Load a socket-filter program; returns its fd. Throws with the verifier log on failure. */
export function loadSocketFilter(code: Buffer): number {
  const license = Buffer.from('GPL\0');
  const log = Buffer.alloc(64 * 1024);
  const attr = Buffer.alloc(128);
  attr.writeUInt32LE(BPF_PROG_TYPE_SOCKET_FILTER, 0);
  attr.writeUInt32LE(code.length / 8, 4);
  attr.writeBigUInt64LE(BigInt(koffi.address(code) as bigint), 8);
  attr.writeBigUInt64LE(BigInt(koffi.address(license) as bigint), 16);
  attr.writeUInt32LE(1, 24); // log level
  attr.writeUInt32LE(log.length, 28);
  attr.writeBigUInt64LE(BigInt(koffi.address(log) as bigint), 32);
  attr.write('ulvs_steer', 48);
  const fd = syscall3(SYS_bpf, 'int', BPF_PROG_LOAD, 'void *', attr, 'unsigned int', attr.length);
  if (fd < 0) {
    const e = sys.errno();
    const text = log.toString('utf8', 0, log.indexOf(0) >= 0 ? log.indexOf(0) : log.length).trim();
    throw new Error(`bpf(BPF_PROG_LOAD): ${sys.strerror(e)}${text ? `\n${text}` : ''}`);
  }
  return fd;
}

/** Attach (or replace) the steering program of the TUN that `tunFd` is a queue of. */
export function attachSteering(tunFd: number, progFd: number): void {
  const arg = Buffer.alloc(4);
  arg.writeInt32LE(progFd, 0);
  if (sys.ioctlPtr(tunFd, TUNSETSTEERINGEBPF, arg) < 0) throw new SysError('TUNSETSTEERINGEBPF', sys.errno());
}
