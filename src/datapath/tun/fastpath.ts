/**
 * The kernel fast path for established flows (`ulvsd --fast-path tc`, the default where the
 * kernel allows it): a tc program at the tcx ingress hook of the director's interfaces rewrites
 * and forwards the packets of connections that ulvs has already scheduled, so a bulk transfer
 * stops crossing user space. ulvs stays in charge of every decision:
 *
 *   - a connection is *offered* by the engine (core/director.ts) after it has forwarded
 *     `offloadAfter` packets of it in an eligible state (TCP ESTABLISHED, or UDP), and
 *     *withdrawn* when its state changes, it expires, or the configuration changes;
 *   - the program handles only packets that cannot change IPVS's TCP state: SYN, FIN and RST
 *     always go up to the engine (in ESTABLISHED every other segment leaves the state as it is),
 *     and so do fragments, packets with IP options, TTL <= 1 and anything the kernel's route
 *     lookup cannot forward directly (unresolved neighbour, too big for the next hop, local);
 *   - per connection, the program counts packets and bytes by direction and the time of the
 *     last packet; the worker folds them into the IPVS counters and connection timers
 *     (offload.ts), so `ipvsadm -L --stats` and the timeouts see every packet.
 * A miss returns TCX_NEXT: the packet goes on to the tc capture (capture.ts) and the TUN.
 *
 * What the program does to a hit (the same rewrite as core/nat.ts, with the kernel's checksum
 * helpers, which handle CHECKSUM_PARTIAL and GSO packets):
 *   request (client -> VIP:vport): destination := RIP:rport     reply (RIP:rport -> client):
 *   source := VIP:vport; TTL - 1 (as the forwarding path would); Ethernet addresses from
 *   bpf_fib_lookup (the host's routing, policy rules included); bpf_redirect to the egress
 *   interface.
 *
 * Also here: the way out of the TUN (tunOutProgram, on the TUN's own tcx ingress), which sends
 * the packets ulvsd writes back without a second pass through the IP stack, and the set-up of
 * both (installFastPath, followFastPath, removeFastPath, installTunOut).
 *
 * Maps (created by ulvsd, shared by the workers):
 *   flows  hash, key 16 B  = saddr, daddr (network order), sport, dport (network order),
 *                            protocol (1 B), 3 zero bytes: the packet's tuple as it arrives
 *                  value 16 B = new address (network order), new port (network order),
 *                            direction (0 request, 1 reply), 1 zero byte, slot (u32), 4 zero bytes
 *   slots  array, mmap-able, 40 B per connection: packets[2], bytes[2] (u64 by direction),
 *                            last packet (u64, CLOCK_MONOTONIC ns); bytes are IP bytes
 */
import { existsSync, readFileSync } from 'node:fs';
import { sys } from './sys.js';
import { ADD, ALU64, AND, assemble, attachTcxIngress, B, BPF_F_MMAPABLE, BPF_MAP_TYPE, BPF_PROG_TYPE, call, createMap, DW, exit, H, I, JA, JEQ, JGT, JLE, JMP, JNE, JSET, K, ldMap, ldx, loadProgram, MOV, OR, st, stx, SUB, W, X, xadd64, type Asm } from './bpf.js';

export const FLOW_KEY_SIZE = 16;
export const FLOW_VALUE_SIZE = 16;
export const SLOT_SIZE = 40;
/** offsets in a slot */
export const SLOT_PKTS = 0, SLOT_BYTES = 16, SLOT_LAST_NS = 32;

// Helpers (include/uapi/linux/bpf.h, enum bpf_func_id)
const MAP_LOOKUP = 1, KTIME_GET_NS = 5, SKB_STORE_BYTES = 9, L3_CSUM_REPLACE = 10, L4_CSUM_REPLACE = 11, REDIRECT = 23, FIB_LOOKUP = 69, REDIRECT_NEIGH = 152, SKB_CHANGE_HEAD = 43;
const BPF_F_PSEUDO_HDR = 0x10, BPF_F_MARK_MANGLED_0 = 0x20;
const TCX_NEXT = -1;

// __sk_buff fields
const SKB_LEN = 0, SKB_INGRESS_IFINDEX = 36, SKB_DATA = 76, SKB_DATA_END = 80;

// IPv4 header fields, from the start of the header
const IPH = { TOS: 1, FRAG: 6, TTL: 8, PROTO: 9, CSUM: 10, SRC: 12, DST: 16, LEN: 20 } as const;
// Frame offsets (Ethernet + IPv4 without options)
const ETH = 14;
const IP_TOS = ETH + IPH.TOS, IP_FRAG = ETH + IPH.FRAG, IP_TTL = ETH + IPH.TTL, IP_PROTO = ETH + IPH.PROTO, IP_CSUM = ETH + IPH.CSUM, IP_SRC = ETH + IPH.SRC, IP_DST = ETH + IPH.DST;
const L4 = ETH + IPH.LEN;
const TCP_FLAGS = L4 + 13, TCP_CSUM = L4 + 16, UDP_CSUM = L4 + 6;

// Stack (r10 = frame pointer)
const KEY = -16; //         16 B flow key
const FIB = -80; //         64 B struct bpf_fib_lookup
const OLD_ADDR = -84; //    u32
const OLD_PORT = -88; //    u16 in a u32
const TTL_OLD = -92; //     TTL and protocol bytes as loaded (u16 in a u32)
const TTL_NEW = -96;
const SLOT_IDX = -100; //   u32
const CSUM_OFF = -104; //   u32: offset of the L4 checksum
const CSUM_FLAGS = -108; // u32: BPF_F_MARK_MANGLED_0 for UDP
// struct bpf_fib_lookup fields
const FIB_FAMILY = FIB, FIB_L4 = FIB + 1, FIB_SPORT = FIB + 2, FIB_DPORT = FIB + 4, FIB_IFINDEX = FIB + 8, FIB_TOS = FIB + 12, FIB_SRC = FIB + 16, FIB_DST = FIB + 32, FIB_SMAC = FIB + 52, FIB_DMAC = FIB + 58;

const mov = (dst: number, src: number) => I(ALU64 | MOV | X, dst, src);
const movi = (dst: number, imm: number) => I(ALU64 | MOV | K, dst, 0, 0, imm);
const addi = (dst: number, imm: number) => I(ALU64 | ADD | K, dst, 0, 0, imm);
/** r1 = ctx, r2 = offset, r3 = fp + from, r4 = len, r5 = 0; bpf_skb_store_bytes */
const storeFromStack = (offset: number, from: number, len: number): Asm => [mov(1, 6), movi(2, offset), mov(3, 10), addi(3, from), movi(4, len), movi(5, 0), call(SKB_STORE_BYTES)];
/** Both programs start alike: r6 = ctx, the FIB struct zeroed, r7 = packet data, r8 = its end. */
const PROLOGUE: Asm = [mov(6, 1), ...[0, 8, 16, 24, 32, 40, 48, 56].map((o) => st(DW, 10, FIB + o, 0)), ldx(W, 7, 6, SKB_DATA), ldx(W, 8, 6, SKB_DATA_END)];
/** TTL_OLD = the TTL and protocol bytes at `ttlAt` (as loaded: TTL is the low byte), TTL_NEW = that minus one */
const ttlMinusOne = (ttlAt: number): Asm => [ldx(H, 0, 7, ttlAt), stx(W, 10, TTL_OLD, 0), I(ALU64 | SUB | K, 0, 0, 0, 1), stx(W, 10, TTL_NEW, 0)];
/** bpf_fib_lookup(ctx, &fib, 64, 0); anything but BPF_FIB_LKUP_RET_SUCCESS -> 'next' (the stack's way) */
const FIB_LOOKUP_OR_NEXT: Asm = [mov(1, 6), mov(2, 10), addi(2, FIB), movi(3, 64), movi(4, 0), call(FIB_LOOKUP), I(JMP | JNE | K, 0, 0, 'next', 0)];
/** Write TTL_NEW at `ttlAt`, patching the IP checksum at `csumAt` */
const writeTtl = (ttlAt: number, csumAt: number): Asm => [mov(1, 6), movi(2, csumAt), ldx(W, 3, 10, TTL_OLD), ldx(W, 4, 10, TTL_NEW), movi(5, 2), call(L3_CSUM_REPLACE), ...storeFromStack(ttlAt, TTL_NEW, 2)];

/**
 * The rewrite and forward of one direction. Registers on entry: r6 ctx, r7 packet data (bounds
 * checked to the L4 ports), r8 the flow's map value, the key and the FIB struct (zeroed,
 * family, protocol, ifindex and TOS filled in) on the stack.
 */
function direction(dir: 0 | 1, slotsFd: number): Asm {
  const addrOff = dir === 0 ? IP_DST : IP_SRC; // the address this direction rewrites
  const portOff = dir === 0 ? L4 + 2 : L4;
  const p = `d${dir}_`;
  return [
    // the route after the rewrite: request client -> RIP:rport, reply VIP:vport -> client
    ldx(W, 1, 7, IP_SRC), stx(W, 10, FIB_SRC, 1),
    ldx(W, 1, 7, IP_DST), stx(W, 10, FIB_DST, 1),
    ldx(H, 1, 7, L4), stx(H, 10, FIB_SPORT, 1),
    ldx(H, 1, 7, L4 + 2), stx(H, 10, FIB_DPORT, 1),
    ldx(W, 1, 8, 0), stx(W, 10, dir === 0 ? FIB_DST : FIB_SRC, 1),
    ldx(H, 1, 8, 4), stx(H, 10, dir === 0 ? FIB_DPORT : FIB_SPORT, 1),
    ldx(W, 1, 7, addrOff), stx(W, 10, OLD_ADDR, 1),
    ldx(H, 1, 7, portOff), stx(W, 10, OLD_PORT, 1),
    ...FIB_LOOKUP_OR_NEXT,
    // count: slots[slot].packets[dir] += 1, bytes[dir] += len - 14, last = now
    ldx(W, 1, 8, 8), stx(W, 10, SLOT_IDX, 1),
    ...ldMap(1, slotsFd), mov(2, 10), addi(2, SLOT_IDX), call(MAP_LOOKUP),
    I(JMP | JEQ | K, 0, 0, `${p}rewrite`, 0),
    mov(9, 0),
    movi(1, 1), xadd64(9, SLOT_PKTS + 8 * dir, 1),
    ldx(W, 1, 6, SKB_LEN), addi(1, -ETH), xadd64(9, SLOT_BYTES + 8 * dir, 1),
    call(KTIME_GET_NS), stx(DW, 9, SLOT_LAST_NS, 0),
    `${p}rewrite`,
    // L4 checksum: the address (pseudo-header) and the port; then the IP checksum: address, TTL
    mov(1, 6), ldx(W, 2, 10, CSUM_OFF), ldx(W, 3, 10, OLD_ADDR), ldx(W, 4, 8, 0), ldx(W, 5, 10, CSUM_FLAGS), I(ALU64 | OR | K, 5, 0, 0, BPF_F_PSEUDO_HDR | 4), call(L4_CSUM_REPLACE),
    mov(1, 6), ldx(W, 2, 10, CSUM_OFF), ldx(W, 3, 10, OLD_PORT), ldx(H, 4, 8, 4), ldx(W, 5, 10, CSUM_FLAGS), I(ALU64 | OR | K, 5, 0, 0, 2), call(L4_CSUM_REPLACE),
    mov(1, 6), movi(2, IP_CSUM), ldx(W, 3, 10, OLD_ADDR), ldx(W, 4, 8, 0), movi(5, 4), call(L3_CSUM_REPLACE),
    // the new address and port (from the map value), TTL, Ethernet destination and source
    mov(1, 6), movi(2, addrOff), mov(3, 8), movi(4, 4), movi(5, 0), call(SKB_STORE_BYTES),
    mov(1, 6), movi(2, portOff), mov(3, 8), addi(3, 4), movi(4, 2), movi(5, 0), call(SKB_STORE_BYTES),
    ...writeTtl(IP_TTL, IP_CSUM),
    ...storeFromStack(0, FIB_DMAC, 6),
    ...storeFromStack(6, FIB_SMAC, 6),
    // out of the interface the route chose
    ldx(W, 1, 10, FIB_IFINDEX), movi(2, 0), call(REDIRECT),
    exit(),
  ];
}

/** The program, bound to the two maps. */
export function fastPathProgram(flowsFd: number, slotsFd: number): Buffer {
  const p: Asm = [
    ...PROLOGUE,
    mov(1, 7), addi(1, L4 + 8), I(JMP | JGT | X, 1, 8, 'next'), //        Ethernet + IP + 8 bytes of L4
    ldx(H, 0, 7, 12), I(JMP | JNE | K, 0, 0, 'next', 0x0008), //          EtherType IPv4 (big-endian 0x0800)
    ldx(B, 0, 7, ETH), I(JMP | JNE | K, 0, 0, 'next', 0x45), //            version 4, no options
    ldx(H, 0, 7, IP_FRAG), I(ALU64 | AND | K, 0, 0, 0, 0xff3f), I(JMP | JNE | K, 0, 0, 'next', 0), // MF or offset: a fragment
    ldx(B, 0, 7, IP_TTL), I(JMP | JLE | K, 0, 0, 'next', 1), //             TTL would expire here
    ldx(B, 9, 7, IP_PROTO),
    I(JMP | JEQ | K, 9, 0, 'udp', 17),
    I(JMP | JNE | K, 9, 0, 'next', 6),
    mov(1, 7), addi(1, L4 + 20), I(JMP | JGT | X, 1, 8, 'next'),
    ldx(B, 0, 7, TCP_FLAGS), I(JMP | JSET | K, 0, 0, 'next', 0x07), //     FIN, SYN or RST: the engine's
    st(W, 10, CSUM_OFF, TCP_CSUM), st(W, 10, CSUM_FLAGS, 0),
    I(JMP | JA, 0, 0, 'key'),
    'udp',
    st(W, 10, CSUM_OFF, UDP_CSUM), st(W, 10, CSUM_FLAGS, BPF_F_MARK_MANGLED_0), // checksum 0 stays 0
    'key',
    ldx(W, 0, 7, IP_SRC), stx(W, 10, KEY, 0),
    ldx(W, 0, 7, IP_DST), stx(W, 10, KEY + 4, 0),
    ldx(W, 0, 7, L4), stx(W, 10, KEY + 8, 0), //                          both ports
    stx(W, 10, KEY + 12, 9), //                                            protocol, 3 zero bytes
    ...ttlMinusOne(IP_TTL),
    ...ldMap(1, flowsFd), mov(2, 10), addi(2, KEY), call(MAP_LOOKUP),
    I(JMP | JEQ | K, 0, 0, 'next', 0),
    mov(8, 0),
    st(B, 10, FIB_FAMILY, 2), stx(B, 10, FIB_L4, 9),
    ldx(W, 1, 6, SKB_INGRESS_IFINDEX), stx(W, 10, FIB_IFINDEX, 1),
    ldx(B, 1, 7, IP_TOS), stx(B, 10, FIB_TOS, 1),
    ldx(B, 1, 8, 6), I(JMP | JEQ | K, 1, 0, 'reply', 1),
    ...direction(0, slotsFd),
    'reply',
    ...direction(1, slotsFd),
    'next',
    movi(0, TCX_NEXT),
    exit(),
  ];
  return assemble(p);
}

/**
 * The way out of the TUN (tcx ingress of the TUN itself): a packet ulvsd writes back is an IPv4
 * packet without a link-layer header that the kernel would receive, route (policy rules
 * included), pass through the forward hooks and send. This program sends it the way the route
 * says directly: bpf_fib_lookup (same routing, rules included), TTL - 1 (as forwarding would),
 * bpf_redirect_neigh to the route's interface and next hop (the neighbour layer adds the
 * Ethernet header and resolves the address if needed). Anything the lookup cannot forward
 * directly (local destinations, no route, too big for the next hop, TTL <= 1, IP options)
 * continues into the stack as before.
 */
export function tunOutProgram(): Buffer {
  const NH = -128; // struct bpf_redir_neigh: family (u32), IPv4 next hop
  const p: Asm = [
    ...PROLOGUE,
    mov(1, 7), addi(1, IPH.LEN + 4), I(JMP | JGT | X, 1, 8, 'next'), //   IP header + ports
    ldx(B, 0, 7, 0), I(JMP | JNE | K, 0, 0, 'next', 0x45),
    ldx(B, 0, 7, IPH.TTL), I(JMP | JLE | K, 0, 0, 'next', 1), //           TTL would expire here
    ldx(B, 9, 7, IPH.PROTO), stx(B, 10, FIB_L4, 9),
    I(JMP | JEQ | K, 9, 0, 'ports', 6),
    I(JMP | JNE | K, 9, 0, 'addrs', 17),
    'ports',
    ldx(H, 1, 7, IPH.LEN), stx(H, 10, FIB_SPORT, 1),
    ldx(H, 1, 7, IPH.LEN + 2), stx(H, 10, FIB_DPORT, 1),
    'addrs',
    st(B, 10, FIB_FAMILY, 2),
    ldx(B, 1, 7, IPH.TOS), stx(B, 10, FIB_TOS, 1),
    ldx(W, 1, 7, IPH.SRC), stx(W, 10, FIB_SRC, 1),
    ldx(W, 1, 7, IPH.DST), stx(W, 10, FIB_DST, 1),
    ldx(W, 1, 6, SKB_INGRESS_IFINDEX), stx(W, 10, FIB_IFINDEX, 1),
    ...ttlMinusOne(IPH.TTL),
    ...FIB_LOOKUP_OR_NEXT,
    ...writeTtl(IPH.TTL, IPH.CSUM),
    st(W, 10, NH, 2), ldx(W, 1, 10, FIB_DST), stx(W, 10, NH + 4, 1), //   the lookup left the next hop in ipv4_dst
    // bpf_redirect_neigh takes an Ethernet frame (it pulls the header and builds the real one):
    // give the L3 packet a zeroed one first (bpf_skb_change_head exists for this)
    mov(1, 6), movi(2, ETH), movi(3, 0), call(SKB_CHANGE_HEAD),
    I(JMP | JNE | K, 0, 0, 'drop', 0),
    ldx(W, 1, 10, FIB_IFINDEX), mov(2, 10), addi(2, NH), movi(3, 20), movi(4, 0), call(REDIRECT_NEIGH),
    exit(),
    'drop', // no room for a header (out of memory): the packet was already changed, so it cannot go on
    movi(0, 2),
    exit(),
    'next',
    movi(0, TCX_NEXT),
    exit(),
  ];
  return assemble(p);
}

/** Load the TUN's way-out program (tunOutProgram); returns its fd. */
export function loadTunOut(): number {
  return loadProgram(BPF_PROG_TYPE.SCHED_CLS, tunOutProgram(), 'ulvs_tun_out');
}

export interface FastPathMaps {
  flowsFd: number;
  slotsFd: number;
  /** connections that can be offloaded at once (slots; the flow map holds two entries each) */
  slots: number;
}

/** Create the two maps for `slots` connections. */
export function createFastPathMaps(slots: number): FastPathMaps {
  const flowsFd = createMap(BPF_MAP_TYPE.HASH, FLOW_KEY_SIZE, FLOW_VALUE_SIZE, slots * 2, 'ulvs_flows');
  let slotsFd = -1;
  try {
    slotsFd = createMap(BPF_MAP_TYPE.ARRAY, 4, SLOT_SIZE, slots, 'ulvs_slots', BPF_F_MMAPABLE);
  } catch (e) {
    closeFd(flowsFd);
    throw e;
  }
  return { flowsFd, slotsFd, slots };
}

/** Load the program for a pair of maps; returns its fd (throws with the verifier log). */
export function loadFastPath(m: FastPathMaps): number {
  return loadProgram(BPF_PROG_TYPE.SCHED_CLS, fastPathProgram(m.flowsFd, m.slotsFd), 'ulvs_fastpath');
}

/**
 * Attach the program at the tcx ingress of each device; returns the links (closing a link's fd
 * detaches it, and the kernel closes them if ulvsd dies, so nothing outlives the daemon).
 * All or nothing: on a failure the links made so far are closed and the error is thrown.
 */
export function attachFastPath(progFd: number, devices: readonly string[]): { dev: string; fd: number }[] {
  const links: { dev: string; fd: number }[] = [];
  try {
    for (const dev of devices) links.push({ dev, fd: attachTcxIngress(progFd, Number(readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8'))) });
    return links;
  } catch (e) {
    for (const l of links) closeFd(l.fd);
    throw e;
  }
}

export function closeFd(fd: number): void {
  if (fd >= 0) sys.close(fd);
}

/** The fast path as installed: its maps, its program, and a tcx link per interface. */
export interface FastPathState {
  maps: FastPathMaps;
  progFd: number;
  links: { dev: string; fd: number }[];
}

/** Create the maps for `slots` connections, load the program, attach it on `devices`. All or nothing (throws). */
export function installFastPath(slots: number, devices: readonly string[]): FastPathState {
  const maps = createFastPathMaps(slots);
  let progFd = -1;
  try {
    progFd = loadFastPath(maps);
    return { maps, progFd, links: attachFastPath(progFd, devices) };
  } catch (e) {
    for (const fd of [progFd, maps.flowsFd, maps.slotsFd]) closeFd(fd);
    throw e;
  }
}

/** Attach on the `devices` that lack the program, forget the links of interfaces that are gone.
 *  Returns the interfaces attached now; throws when attaching fails (nothing changed then). */
export function followFastPath(st: FastPathState, devices: readonly string[]): string[] {
  const gone = st.links.filter((l) => !existsSync(`/sys/class/net/${l.dev}`));
  for (const l of gone) closeFd(l.fd); // the kernel detached it with its interface
  st.links = st.links.filter((l) => !gone.includes(l));
  const missing = devices.filter((d) => !st.links.some((l) => l.dev === d));
  if (missing.length > 0) st.links.push(...attachFastPath(st.progFd, missing));
  return missing;
}

/** Detach and free everything. */
export function removeFastPath(st: FastPathState): void {
  for (const fd of [...st.links.map((l) => l.fd), st.progFd, st.maps.flowsFd, st.maps.slotsFd]) closeFd(fd);
  st.links = [];
}

/** Load the TUN's way-out program and attach it on the TUN; throws (nothing left behind). */
export function installTunOut(tun: string): { progFd: number; link: number } {
  const progFd = loadTunOut();
  try {
    return { progFd, link: attachFastPath(progFd, [tun])[0]!.fd };
  } catch (e) {
    closeFd(progFd);
    throw e;
  }
}
