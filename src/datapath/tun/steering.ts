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
 * The program is fixed (bpf/steer.bpf.c, loaded once); the spec lives in its hash map
 * (struct steer_key -> struct steer_value, bpf/ulvs_maps.h): the VIPs, and the endpoints that
 * key on the masked client address. A rule change writes the difference into the map
 * (SteeringMap.prepare, then apply): the program is never regenerated nor reloaded. An endpoint
 * with its exact port wins over a port-0 (every port) entry of the same address, as in IPVS's
 * service lookup.
 */
import { isFwmarkKey } from '../../core/service.js';
import { BpfError, MapOps } from './bpf.js';
import { loadObject } from './libbpf.js';
import { STEER_KEY, STEER_SIDE, STEER_VALUE } from './layouts.gen.js';
import { sys, SysError } from './sys.js';

export const TUNSETSTEERINGEBPF = 0x800454e0;

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
  /** fwmark services (absent: none): a packet with the mark is a request; `masked` (persistent):
   *  keyed on the client address under `mask`, else on the client address and port */
  marks?: { mark: number; mask: number; masked: boolean }[];
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
  const marks: NonNullable<SteeringSpec['marks']> = [];
  for (const x of services) {
    const m = maskOf(sk(x));
    // every fwmark service has its entry: its requests are known by the mark, not by a VIP
    if (isFwmarkKey(x)) marks.push({ mark: x.addr >>> 0, mask: m ?? 0, masked: m !== undefined });
    else if (m !== undefined) inbound.push({ proto: x.proto, addr: x.addr >>> 0, port: x.port, mask: m });
  }
  const outbound = new Map<string, MaskedEndpoint>();
  for (const { service, dest } of dests) {
    const m = parent.has(sk(service)) ? maskOf(sk(service)) : undefined;
    if (m === undefined) continue;
    // a fwmark service's server answers in whichever protocol the mark took
    for (const proto of isFwmarkKey(service) ? [6, 17] : [service.proto]) outbound.set(sk({ proto, addr: dest.addr, port: dest.port }), { proto, addr: dest.addr >>> 0, port: dest.port, mask: m });
  }
  const vips = [...new Set(services.filter((x) => !isFwmarkKey(x)).map((x) => x.addr >>> 0))].sort((a, b) => a - b);
  return { vips, inbound: inbound.sort(byKey), outbound: [...outbound.values()].sort(byKey), ...(marks.length && { marks: marks.sort((a, b) => a.mark - b.mark) }) };
}

/** Entries the map can hold: VIPs plus masked service and real-server endpoints. */
export const STEER_MAX_ENTRIES = 65536;

/** A struct steer_key (bpf/ulvs_maps.h): address and port in network order. */
export function steerKey(side: number, proto: number, addr: number, port: number): Buffer {
  const k = Buffer.alloc(STEER_KEY.size);
  k.writeUInt32BE(addr >>> 0, STEER_KEY.off.addr);
  k.writeUInt16BE(port, STEER_KEY.off.port);
  k[STEER_KEY.off.proto] = proto;
  k[STEER_KEY.off.side] = side;
  return k;
}

/** A struct steer_value: the netmask in host order; `masked` (STEER_MARK entries): key on it. */
export function steerValue(mask: number, masked = false): Buffer {
  const v = Buffer.alloc(STEER_VALUE.size);
  v.writeUInt32LE(mask >>> 0, STEER_VALUE.off.mask);
  v.writeUInt32LE(masked ? 1 : 0, STEER_VALUE.off.pad);
  return v;
}

/** The map contents a spec asks for: key bytes (hex) -> [key, value]. */
export function steeringEntries(spec: SteeringSpec): Map<string, [Buffer, Buffer]> {
  const out = new Map<string, [Buffer, Buffer]>();
  const put = (k: Buffer, v: Buffer) => out.set(k.toString('hex'), [k, v]);
  for (const vip of spec.vips) put(steerKey(STEER_SIDE.STEER_VIP, 0, vip, 0), steerValue(0));
  for (const e of spec.inbound) put(steerKey(STEER_SIDE.STEER_SERVICE, e.proto, e.addr, e.port), steerValue(e.mask));
  for (const e of spec.outbound) put(steerKey(STEER_SIDE.STEER_REAL, e.proto, e.addr, e.port), steerValue(e.mask));
  for (const e of spec.marks ?? []) put(steerKey(STEER_SIDE.STEER_MARK, 0, e.mark, 0), steerValue(e.mask, e.masked));
  return out;
}

/** What one rule change writes into the map (SteeringMap.prepare). */
export interface SteeringPlan {
  spec: SteeringSpec;
  /** entries to write (new, or with another mask), then keys to delete */
  updates: number;
  deletes: number;
  keys: Buffer;
  values: Buffer;
  deleteKeys: Buffer;
  entries: Map<string, [Buffer, Buffer]>;
}

/**
 * The steering program and its map, loaded on the first prepare(). A rule change is two steps,
 * as the control plane needs them: prepare(spec) computes the difference to the map's contents
 * (throws, changing nothing, when the map cannot hold the spec), apply(plan) writes it (new and
 * changed entries first, then deletions; one bpf(2) batch call each).
 */
export class SteeringMap {
  progFd = -1;
  mapFd = -1;
  /** instructions of the loaded program */
  instructions = 0;
  /** the spec the map holds now; null before the first apply */
  spec: SteeringSpec | null = null;
  #entries = new Map<string, [Buffer, Buffer]>();
  #ops: MapOps | null = null;

  /** entries in the map */
  get size(): number {
    return this.#entries.size;
  }

  /** The difference from the map's contents to `spec`, or null when there is none. */
  prepare(spec: SteeringSpec): SteeringPlan | null {
    const next = steeringEntries(spec);
    if (next.size > STEER_MAX_ENTRIES) throw new Error(`steering: ${next.size} entries (VIPs and endpoints keyed by client network) exceed the map's ${STEER_MAX_ENTRIES}`);
    this.#load();
    const upd: [Buffer, Buffer][] = [];
    for (const [h, kv] of next) if (!this.#entries.get(h)?.[1].equals(kv[1])) upd.push(kv);
    const del = [...this.#entries].filter(([h]) => !next.has(h)).map(([, kv]) => kv[0]);
    if (upd.length === 0 && del.length === 0 && this.spec !== null) return null;
    return { spec, updates: upd.length, deletes: del.length, keys: Buffer.concat(upd.map((x) => x[0])), values: Buffer.concat(upd.map((x) => x[1])), deleteKeys: Buffer.concat(del), entries: next };
  }

  /** Write a prepared difference. Throws if the kernel refuses an update (the map is then partly written). */
  apply(plan: SteeringPlan): void {
    const ops = this.#ops!;
    const r = ops.updateBatch(plan.keys, plan.values, plan.updates);
    if (r.done < plan.updates) throw new BpfError('BPF_MAP_UPDATE_BATCH steering', r.errno);
    ops.deleteBatch(plan.deleteKeys, plan.deletes, STEER_KEY.size);
    this.#entries = plan.entries;
    this.spec = plan.spec;
  }

  #load(): void {
    if (this.#ops) return;
    const o = loadObject('steer.bpf.o', 'ulvs_steer', ['ulvs_steer_map'], { maxEntries: { ulvs_steer_map: STEER_MAX_ENTRIES } });
    this.progFd = o.progFd;
    this.mapFd = o.maps.ulvs_steer_map!;
    this.instructions = o.insns;
    this.#ops = new MapOps(this.mapFd);
  }

  close(): void {
    for (const fd of [this.progFd, this.mapFd]) if (fd >= 0) sys.close(fd);
    this.progFd = this.mapFd = -1;
    this.#ops = null;
    this.#entries = new Map();
    this.spec = null;
  }
}

/** Attach (or replace) the steering program of the TUN that `tunFd` is a queue of. */
export function attachSteering(tunFd: number, progFd: number): void {
  const arg = Buffer.alloc(4);
  arg.writeInt32LE(progFd, 0);
  if (sys.ioctlPtr(tunFd, TUNSETSTEERINGEBPF, arg) < 0) throw new SysError('TUNSETSTEERINGEBPF', sys.errno());
}

/**
 * The queue (worker) the steering program sends a connection's packets to, computed as the
 * program does (bpf/steer.bpf.c, then the TUN's `% numqueues`): the key is the client address
 * under the netmask of a masked service endpoint (exact port, else port 0), else the client
 * address ^ client port; a connection of a fwmark service (`fwmark`) as its mark's entry says. Used to place connections handed over by a previous process.
 */
export function queueOf(spec: SteeringSpec, queues: number, proto: number, caddr: number, cport: number, vaddr: number, vport: number, fwmark = 0): number {
  if (queues <= 1) return 0;
  // a fwmark service's connection: its packets carry the mark (steer.bpf.c STEER_MARK first)
  const mk = fwmark !== 0 ? spec.marks?.find((e) => e.mark === fwmark >>> 0) : undefined;
  if (mk) return ((Math.imul(mk.masked ? (caddr & mk.mask) >>> 0 : (caddr ^ cport) >>> 0, 0x9e3779b1) >>> 0) >>> 16) % queues;
  const find = (port: number) => spec.inbound.find((e) => e.proto === proto && e.addr === vaddr >>> 0 && e.port === port);
  const m = find(vport) ?? (vport !== 0 ? find(0) : undefined);
  const key = m ? (caddr & m.mask) >>> 0 : ((caddr ^ cport) >>> 0);
  return ((Math.imul(key, 0x9e3779b1) >>> 0) >>> 16) % queues;
}
