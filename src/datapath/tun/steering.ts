/**
 * Queue steering for a multi-queue TUN (TUNSETSTEERINGEBPF): which data-path worker gets a
 * packet. The kernel's default hashes the packet's own 5-tuple, but VS/NAT changes the tuple
 * between a request (client -> VIP) and its reply (RIP -> client), so the two directions of a
 * connection would reach different workers. This eBPF program keys on the *client side*, which
 * both directions carry, and decides per packet, by the service the packet belongs to:
 *
 *   service not persistent   key = client address ^ client port  (one client's connections
 *                                                                  spread over the workers)
 *   persistent service       key = client address & its netmask  (a client network stays in
 *                                                                  one worker: templates exact)
 *   queue = (key * 0x9E3779B1) >> 16, modulo the number of queues (done by the kernel)
 *
 * Where the service side and the client side are in each kind of packet:
 *   to a VIP, TCP/UDP        service = destination (VIP:port)   client = source
 *   to a VIP, ICMP           quoted reply: service = quoted source, client = quoted destination
 *   other, TCP/UDP           service = source (RIP:port)         client = destination
 *   other, ICMP              quoted request: service = quoted destination, client = quoted source
 *
 * Because the choice is per service, adding or removing a persistent service does not move the
 * connections of the others. Services that share a real server endpoint (RIP:port) must key
 * alike (the reply carries only the RIP:port), so `steeringSpec` groups them: a group with a
 * persistent member keys every member on the address under the group's coarsest netmask.
 * Each worker keeps its own connection table: nothing is shared, nothing is locked.
 *
 * The program is classic LD_ABS/LD_IND loads and compares (socket-filter type), assembled here
 * with the assembler of bpf.ts; the verifier's log is reported on failure.
 */
import { ABS, ADD, ALU, ALU64, AND, assemble, B, BPF_PROG_TYPE, EXIT, H, I, IND, JA, JEQ, JMP, JMP32, JNE, K, LD, loadProgram, LSH, MOV, MUL, OR, RSH, W, X, XOR, type Asm, type Insn } from './bpf.js';
import { sys, SysError } from './sys.js';

export const TUNSETSTEERINGEBPF = 0x800454e0;

/** r0 = IP header length in bytes (from the version/IHL byte at `at` + register `base`, or absolute). */
const ihl = (at: number, base?: number): Insn[] => [
  base === undefined ? I(LD | ABS | B, 0, 0, 0, at) : I(LD | IND | B, 0, base, 0, at),
  I(ALU | AND | K, 0, 0, 0, 0x0f),
  I(ALU | LSH | K, 0, 0, 0, 2),
];

/** A service endpoint whose packets key on the masked client address. port 0 = every port. */
export interface MaskedEndpoint {
  proto: number;
  addr: number;
  port: number;
  mask: number;
}

export interface SteeringSpec {
  /** every VIP (int32 or uint32): packets to these are requests */
  vips: number[];
  /** services (VIP:port) that key on the masked client address */
  inbound: MaskedEndpoint[];
  /** real-server endpoints (RIP:port) that key on the masked client address */
  outbound: MaskedEndpoint[];
}

interface SpecService {
  proto: number;
  addr: number;
  port: number;
  persistent?: number;
  netmask?: number;
}

/**
 * Which services key on the masked client address: those in a group (services linked by a
 * shared real-server endpoint proto:RIP:port) with a persistent member, under the AND of the
 * members' persistence netmasks. Deterministic order, so an unchanged rule set gives an
 * identical spec.
 */
export function steeringSpec(services: readonly SpecService[], dests: readonly { service: { proto: number; addr: number; port: number }; dest: { addr: number; port: number } }[]): SteeringSpec {
  const sk = (x: { proto: number; addr: number; port: number }) => `${x.proto}/${x.addr >>> 0}/${x.port}`;
  const parent = new Map<string, string>(services.map((x) => [sk(x), sk(x)]));
  const find = (k: string): string => {
    let r = k;
    while (parent.get(r) !== r) r = parent.get(r)!;
    parent.set(k, r);
    return r;
  };
  const byEndpoint = new Map<string, string>(); // proto/RIP/port -> a service using it
  for (const { service, dest } of dests) {
    const e = sk({ proto: service.proto, addr: dest.addr, port: dest.port });
    const s = sk(service);
    if (!parent.has(s)) continue;
    const other = byEndpoint.get(e);
    if (other === undefined) byEndpoint.set(e, s);
    else parent.set(find(s), find(other));
  }
  const groupMask = new Map<string, number>();
  for (const x of services) {
    if (!x.persistent) continue;
    const g = find(sk(x));
    groupMask.set(g, ((groupMask.get(g) ?? 0xffffffff) & (x.netmask ?? 0xffffffff)) >>> 0);
  }
  const maskOf = (k: string) => groupMask.get(find(k));
  const byKey = (a: MaskedEndpoint, b: MaskedEndpoint) => a.proto - b.proto || (a.addr >>> 0) - (b.addr >>> 0) || a.port - b.port;
  const inbound: MaskedEndpoint[] = [];
  for (const x of services) {
    const m = maskOf(sk(x));
    if (m !== undefined) inbound.push({ proto: x.proto, addr: x.addr >>> 0, port: x.port, mask: m });
  }
  const outbound = new Map<string, MaskedEndpoint>();
  for (const { service, dest } of dests) {
    const m = parent.has(sk(service)) ? maskOf(sk(service)) : undefined;
    if (m !== undefined) outbound.set(sk({ proto: service.proto, addr: dest.addr, port: dest.port }), { proto: service.proto, addr: dest.addr >>> 0, port: dest.port, mask: m });
  }
  return { vips: [...new Set(services.map((x) => x.addr >>> 0))].sort((a, b) => a - b), inbound: inbound.sort(byKey), outbound: [...outbound.values()].sort(byKey) };
}

/**
 * Where one kind of packet carries its fields. `abs` offsets are from the IP header; `l4` from
 * the (outer or quoted) L4 header; `ip` offsets with `quoted` are inside the quoted IP header.
 * Registers: r6 = ctx (LD_ABS/LD_IND need it there), r8 = outer IP header length, r9 = offset of
 * the quoted L4 header minus 8 (ICMP only), r7 = the flow key.
 */
interface Layout {
  quoted: boolean;
  clientAddr: number; // IP header offset (12 source, 16 destination)
  clientPort: number; // L4 offset (0 source, 2 destination)
  serviceAddr: number;
  servicePort: number;
}

/** Load a field of the (outer or quoted) IP header into r0. */
const ipField = (q: boolean, off: number, size: number): Insn => (q ? I(LD | IND | size, 0, 8, 0, 8 + off) : I(LD | ABS | size, 0, 0, 0, off));
/** Load a port of the (outer or quoted) L4 header into r0. */
const l4Port = (q: boolean, off: number): Insn => (q ? I(LD | IND | H, 0, 9, 0, 8 + off) : I(LD | IND | H, 0, 8, 0, off));

/** One kind of packet: compute the flow key, then compare the service side with the masked endpoints. */
function classify(name: string, l: Layout, entries: readonly MaskedEndpoint[]): Asm {
  const p: Asm = [...ihl(0), I(ALU64 | MOV | X, 8, 0)]; //  r8 = IP header length
  if (l.quoted) p.push(...ihl(8, 8), I(ALU64 | ADD | X, 0, 8), I(ALU64 | MOV | X, 9, 0)); // r9 = quoted L4 - 8
  p.push(
    l4Port(l.quoted, l.clientPort), //                          flow key: client port
    I(ALU | MOV | X, 7, 0),
    ipField(l.quoted, l.clientAddr, W), //                       ^ client address
    I(ALU | XOR | X, 7, 0),
  );
  if (entries.length > 0) {
    p.push(
      l4Port(l.quoted, l.servicePort), //                        r9 = protocol << 16 | service port
      I(ALU | MOV | X, 9, 0),
      ipField(l.quoted, 9, B),
      I(ALU | LSH | K, 0, 0, 0, 16),
      I(ALU | OR | X, 9, 0),
      ipField(l.quoted, l.serviceAddr, W), //                    r0 = service address
    );
    entries.forEach((e, i) => {
      const next = `${name}_n${i}`;
      p.push(I(JMP32 | JNE | K, 0, 0, next, e.addr | 0));
      if (e.port !== 0) p.push(I(JMP32 | JEQ | K, 9, 0, `${name}_m${i}`, ((e.proto << 16) | e.port) | 0));
      else p.push(I(ALU | MOV | X, 1, 9), I(ALU | RSH | K, 1, 0, 0, 16), I(JMP32 | JEQ | K, 1, 0, `${name}_m${i}`, e.proto));
      p.push(next);
    });
  }
  p.push(I(ALU | MOV | X, 0, 7), I(JMP | JA, 0, 0, 'key')); //   no masked endpoint: the flow key
  entries.forEach((e, i) => p.push(`${name}_m${i}`, ipField(l.quoted, l.clientAddr, W), I(ALU | AND | K, 0, 0, 0, e.mask | 0), I(JMP | JA, 0, 0, 'key')));
  return p;
}

/** The steering program for a spec (see the top of this file). */
export function steeringProgram(spec: SteeringSpec): Buffer {
  const p: Asm = [
    I(ALU64 | MOV | X, 6, 1), //                     r6 = ctx
    I(LD | ABS | W, 0, 0, 0, 16), //                 r0 = destination address
  ];
  for (const v of spec.vips) p.push(I(JMP32 | JEQ | K, 0, 0, 'inbound', v | 0));
  p.push(
    I(LD | ABS | B, 0, 0, 0, 9),
    I(JMP | JEQ | K, 0, 0, 'out_icmp', 1),
    ...classify('out', { quoted: false, clientAddr: 16, clientPort: 2, serviceAddr: 12, servicePort: 0 }, spec.outbound),
    'out_icmp',
    ...classify('oicmp', { quoted: true, clientAddr: 12, clientPort: 0, serviceAddr: 16, servicePort: 2 }, spec.outbound),
  );
  // Without VIPs the inbound part would be unreachable, which the verifier refuses.
  if (spec.vips.length > 0)
    p.push(
      'inbound',
      I(LD | ABS | B, 0, 0, 0, 9),
      I(JMP | JEQ | K, 0, 0, 'in_icmp', 1),
      ...classify('in', { quoted: false, clientAddr: 12, clientPort: 0, serviceAddr: 16, servicePort: 2 }, spec.inbound),
      'in_icmp',
      ...classify('iicmp', { quoted: true, clientAddr: 16, clientPort: 2, serviceAddr: 12, servicePort: 0 }, spec.inbound),
    );
  p.push('key', I(ALU | MUL | K, 0, 0, 0, 0x9e3779b1 | 0), I(ALU | RSH | K, 0, 0, 0, 16), I(JMP | EXIT));
  return assemble(p);
}

/** Load a socket-filter program; returns its fd. Throws with the verifier log on failure. */
export function loadSocketFilter(code: Buffer): number {
  return loadProgram(BPF_PROG_TYPE.SOCKET_FILTER, code, 'ulvs_steer');
}

/** Attach (or replace) the steering program of the TUN that `tunFd` is a queue of. */
export function attachSteering(tunFd: number, progFd: number): void {
  const arg = Buffer.alloc(4);
  arg.writeInt32LE(progFd, 0);
  if (sys.ioctlPtr(tunFd, TUNSETSTEERINGEBPF, arg) < 0) throw new SysError('TUNSETSTEERINGEBPF', sys.errno());
}
