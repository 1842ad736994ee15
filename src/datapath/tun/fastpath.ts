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
 *     (offloader.ts), so `ipvsadm -L --stats` and the timeouts see every packet.
 * A miss returns TCX_NEXT: the packet goes on to the tc capture (capture.ts) and the TUN.
 *
 * What the program does to a hit (the same rewrite as core/nat.ts, with the kernel's checksum
 * helpers, which handle CHECKSUM_PARTIAL and GSO packets):
 *   request (client -> VIP:vport): destination := RIP:rport     reply (RIP:rport -> client):
 *   source := VIP:vport; TTL - 1 (as the forwarding path would); Ethernet addresses from
 *   bpf_fib_lookup (the host's routing, policy rules included); bpf_redirect to the egress
 *   interface.
 *
 * The programs are C (bpf/fastpath.bpf.c, bpf/tun_out.bpf.c), compiled by `npm run bpf` into the
 * committed objects and loaded with libbpf (libbpf.ts). Also here: the set-up of both
 * (installFastPath, followFastPath, removeFastPath, installTunOut).
 * The fast path is attached link-less (it outlives ulvsd: a restart or a crash does not stop the
 * offloaded connections, and the next start takes it over, adoptFastPath); the TUN's way-out
 * program with a link (it goes with the process, and the TUN has no traffic without one).
 *
 * Maps (created from the object's definitions by ulvsd, shared by the workers; layouts in
 * bpf/ulvs_maps.h, seen from TypeScript through layouts.gen.ts):
 *   ulvs_flows  hash, struct flow_key -> struct flow_value: two entries per NAT connection, one
 *               per DR connection (also read by the TUN's way out: tun_out.bpf.c)
 *   ulvs_slots  array, mmap-able, struct slot per connection: packets and bytes by direction,
 *               time of the last packet
 *   ulvs_ks*, ulvs_kreports  kernel connection set-up (kernel-setup-maps.ts, bpf/ulvs_ksetup.h):
 *               services and tables, cursors, settings, free kernel slots (a range after the
 *               workers' slots), one report ring per worker, counters; fresh at a restart
 * and the program's own, which a restart does not take over (a new program starts them afresh):
 *   ulvs_fast_stats   array of __u64 by enum fast_counter: the relay of routers' ICMP errors
 *                     about the director's tunnel packets (bpf/ulvs_tun_icmp.h)
 *   ulvs_tun_scratch  per-CPU: that relay's ICMP budget
 *   ulvs_verdicts     per-CPU array by ingress ifindex of struct fast_verdicts: every frame the
 *                     program saw, by what it returned (fast-verdicts.ts reads it)
 */
import { existsSync, readFileSync } from 'node:fs';
import { sys } from './sys.js';
import { attachTcxIngress, fdById, mapInfo, progAttachTcxIngress, progDetachTcxIngress, progInfo } from './bpf.js';
import { loadObject } from './libbpf.js';
import { FLOW_KEY, FLOW_VALUE, SLOT } from './layouts.gen.js';
import { closeKernelSetup, fillKernelSetup, KERNEL_SETUP_MAP_NAMES, kernelSetupMaxEntries, kernelSetupSizes, kernelSlotsInUse, type KernelSetupMaps, type KernelSetupOptions } from './kernel-setup-maps.js';

export const FLOW_KEY_SIZE = FLOW_KEY.size;
export const FLOW_VALUE_SIZE = FLOW_VALUE.size;
export const SLOT_SIZE = SLOT.size;
/** byte offsets in a slot: packets[2], bytes[2] (u64 by direction), last packet (u64 ns) */
export const SLOT_PKTS = SLOT.off.packets, SLOT_BYTES = SLOT.off.bytes, SLOT_LAST_NS = SLOT.off.last_ns;

/**
 * Load the TUN's way-out program (bpf/tun_out.bpf.c) with the fast path's flow map (its
 * FLOW_DR* entries say where direct-routing packets go); returns its fd. Without that map
 * (flowsFd < 0) the program gets an empty map of its own: it routes every packet.
 */
export function loadTunOut(flowsFd: number): number {
  return loadObject('tun_out.bpf.o', 'ulvs_tun_out', [], flowsFd >= 0 ? { reuse: { ulvs_flows: flowsFd } } : {}).progFd;
}

export interface FastPathMaps {
  flowsFd: number;
  slotsFd: number;
  /** ulvs_syncookie_svcs: the services whose SYNs the program answers with cookies (the
   *  program's own: a restart's new program starts it empty, ulvsd fills it; -1 when unknown) */
  syncookieFd: number;
  /** connections that can be offloaded at once (slots; the flow map holds two entries each) */
  slots: number;
  /** kernel connection set-up (kernel-setup-maps.ts): its maps, rings and slot range (after `slots`) */
  kernel: KernelSetupMaps;
}

/**
 * Load the fast-path program (bpf/fastpath.bpf.c) with its maps sized for `slots` connections
 * of the workers and kernel set-up's (`kernel`: its slot range after the workers', one ring per
 * worker); the flow map, shared by both, `flowsAsked` entries (default two per slot of both); returns the fds (throws with libbpf's messages
 * and the verifier log; nothing left open then).
 */
export function loadFastPath(slots: number, flowsAsked?: number, kernel: KernelSetupOptions = {}): { maps: FastPathMaps; progFd: number; insns: number } {
  const k = kernelSetupSizes(slots, kernel);
  const flows = flowsAsked ?? (slots + k.kernelSlots) * 2;
  const o = loadObject('fastpath.bpf.o', 'ulvs_fastpath', ['ulvs_flows', 'ulvs_slots', 'ulvs_syncookie_svcs', ...KERNEL_SETUP_MAP_NAMES], {
    maxEntries: { ulvs_flows: flows, // the engine's offers and the kernel's set-ups share it: `flows` as asked (the default has room for both ranges)
      ulvs_slots: slots + k.kernelSlots, ...kernelSetupMaxEntries(k) },
  });
  try {
    const ks = fillKernelSetup(o.maps, k, slots);
    return { maps: { flowsFd: o.maps.ulvs_flows!, slotsFd: o.maps.ulvs_slots!, syncookieFd: o.maps.ulvs_syncookie_svcs!, slots, kernel: ks }, progFd: o.progFd, insns: o.insns };
  } catch (e) {
    for (const fd of [o.progFd, ...Object.values(o.maps)]) closeFd(fd);
    throw e;
  }
}

/** Every fd of the maps (kernel set-up's included). */
export function fastPathMapFds(m: FastPathMaps): number[] {
  return [m.flowsFd, m.slotsFd, m.syncookieFd];
}

function closeMaps(m: FastPathMaps): void {
  for (const fd of fastPathMapFds(m)) closeFd(fd);
  closeKernelSetup(m.kernel);
}

/**
 * Attach a program at the tcx ingress of each device with a link per device (the TUN's way-out
 * program: closing a link's fd detaches it, and the kernel closes them when ulvsd exits).
 * All or nothing: on a failure the links made so far are closed and the error is thrown.
 */
export function attachLinked(progFd: number, devices: readonly string[]): { dev: string; fd: number }[] {
  const links: { dev: string; fd: number }[] = [];
  try {
    for (const dev of devices) links.push({ dev, fd: attachTcxIngress(progFd, ifindexOf(dev)) });
    return links;
  } catch (e) {
    for (const l of links) closeFd(l.fd);
    throw e;
  }
}

export const ifindexOf = (dev: string): number => Number(readFileSync(`/sys/class/net/${dev}/ifindex`, 'utf8'));

export function closeFd(fd: number): void {
  if (fd >= 0) sys.close(fd);
}

/** An interface the fast path is attached on (link-less: the interface holds the program). */
export interface Attached {
  dev: string;
  ifindex: number;
}

/**
 * The fast path as installed: its maps, its program, and the interfaces it is attached on. The
 * attachment is link-less (BPF_PROG_ATTACH): it outlives ulvsd, so offloaded connections keep
 * flowing while ulvsd restarts or after it was killed; the next start takes the program's maps
 * over (adoptFastPath) and a final stop detaches it (removeFastPath).
 */
export interface FastPathState {
  maps: FastPathMaps;
  progFd: number;
  attached: Attached[];
}

/** Attach on each device, all or nothing (throws after detaching what it attached). */
function attachKept(progFd: number, devices: readonly string[]): Attached[] {
  const done: Attached[] = [];
  try {
    for (const dev of devices) {
      const ifindex = ifindexOf(dev);
      progAttachTcxIngress(progFd, ifindex);
      done.push({ dev, ifindex });
    }
    return done;
  } catch (e) {
    detachAll(progFd, done);
    throw e;
  }
}

/** Detach progFd from the interfaces that still exist; never throws. */
function detachAll(progFd: number, at: readonly Attached[]): void {
  for (const a of at) {
    try {
      progDetachTcxIngress(progFd, a.ifindex);
    } catch {
      /* the interface went away, and the program with it */
    }
  }
}

/** Create the maps for `slots` connections (`flows` flow entries) and kernel set-up's
 *  (`kernel`, see loadFastPath), load the program, attach it on `devices`. All or nothing (throws). */
export function installFastPath(slots: number, devices: readonly string[], flows?: number, kernel: KernelSetupOptions = {}): FastPathState {
  const { maps, progFd } = loadFastPath(slots, flows, kernel);
  try {
    return { maps, progFd, attached: attachKept(progFd, devices) };
  } catch (e) {
    closeFd(progFd);
    closeMaps(maps);
    throw e;
  }
}

/** What a previous ulvsd left attached (daemon/kept-state.ts records it at start). */
export interface PriorFastPath {
  progId: number;
  flowsId: number;
  slotsId: number;
  slots: number;
  attached: Attached[];
}

/**
 * Take over a previous process's fast path: its maps (by id), a newly loaded program (this
 * binary's) attached on `devices` after the old one, then the old one detached, so every packet
 * meets one of the two. Returns null (nothing changed) when the maps are gone or of another size
 * (`slots`) or of another element layout: the caller then removes the prior one (dropPriorFastPath) and installs anew.
 */
export function adoptFastPath(prior: PriorFastPath, slots: number, devices: readonly string[], kernel: KernelSetupOptions = {}): FastPathState | null {
  if (prior.slots !== slots) return null;
  const k = kernelSetupSizes(slots, kernel);
  const flowsFd = fdById('map', prior.flowsId);
  const slotsFd = fdById('map', prior.slotsId);
  // a flow map of an older layout (16-byte values before kernel set-up's kflags) is not adopted;
  // nor a slot array without this kernel range after the workers' slots
  const ok = flowsFd !== null && slotsFd !== null && mapInfo(flowsFd).name === 'ulvs_flows' && mapInfo(flowsFd).valueSize === FLOW_VALUE_SIZE && mapInfo(slotsFd).name === 'ulvs_slots' && mapInfo(slotsFd).maxEntries === slots + k.kernelSlots;
  if (!ok) {
    for (const fd of [flowsFd, slotsFd]) if (fd !== null) closeFd(fd);
    return null;
  }
  let progFd = -1;
  let owned: number[] = [];
  let ks: KernelSetupMaps | undefined;
  try {
    // kernel set-up's maps are fresh; the kernel slots that the previous process's entries
    // still name are not free
    const o = loadObject('fastpath.bpf.o', 'ulvs_fastpath', ['ulvs_syncookie_svcs', ...KERNEL_SETUP_MAP_NAMES], { reuse: { ulvs_flows: flowsFd, ulvs_slots: slotsFd }, maxEntries: kernelSetupMaxEntries(k) });
    progFd = o.progFd;
    owned = Object.values(o.maps);
    ks = fillKernelSetup(o.maps, k, slots, kernelSlotsInUse(flowsFd, slots, k.kernelSlots));
    const attached = attachKept(progFd, devices);
    dropPriorFastPath(prior);
    return { maps: { flowsFd, slotsFd, syncookieFd: o.maps.ulvs_syncookie_svcs!, slots, kernel: ks }, progFd, attached };
  } catch (e) {
    for (const fd of [progFd, flowsFd, slotsFd, ...owned, ...(ks?.rings.map((r) => r.fd) ?? [])]) closeFd(fd);
    throw e;
  }
}

/** Detach a previous process's program (by id) from where it was attached; never throws. */
export function dropPriorFastPath(prior: Pick<PriorFastPath, 'progId' | 'attached'>): void {
  const fd = fdById('prog', prior.progId);
  if (fd === null) return;
  if (progInfo(fd).name.startsWith('ulvs_fastpath')) detachAll(fd, prior.attached);
  closeFd(fd);
}

/** Attach on the `devices` that lack the program, forget interfaces that are gone.
 *  Returns the interfaces attached now; throws when attaching fails (nothing changed then). */
export function followFastPath(st: FastPathState, devices: readonly string[]): string[] {
  st.attached = st.attached.filter((a) => existsSync(`/sys/class/net/${a.dev}`)); // the kernel detached it with its interface
  const missing = devices.filter((d) => !st.attached.some((a) => a.dev === d));
  if (missing.length > 0) st.attached.push(...attachKept(st.progFd, missing));
  return missing;
}

/** Close the fds; unless `keep`, detach the program first (a final stop), which frees it and its maps. */
export function removeFastPath(st: FastPathState, keep = false): void {
  if (!keep) detachAll(st.progFd, st.attached);
  closeFd(st.progFd);
  closeMaps(st.maps);
  st.attached = [];
}

/** The program's id, its maps' ids (recorded so the next start can find them). */
export function fastPathIds(st: FastPathState): { progId: number; flowsId: number; slotsId: number } {
  return { progId: progInfo(st.progFd).id, flowsId: mapInfo(st.maps.flowsFd).id, slotsId: mapInfo(st.maps.slotsFd).id };
}

/** Load the TUN's way-out program (see loadTunOut) and attach it on the TUN; throws (nothing left behind). */
export function installTunOut(tun: string, flowsFd: number): { progFd: number; link: number } {
  const progFd = loadTunOut(flowsFd);
  try {
    return { progFd, link: attachLinked(progFd, [tun])[0]!.fd };
  } catch (e) {
    closeFd(progFd);
    throw e;
  }
}
