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
 *
 * Maps (created from the object's definitions by ulvsd, shared by the workers; layouts in
 * bpf/ulvs_maps.h, seen from TypeScript through layouts.gen.ts):
 *   ulvs_flows  hash, struct flow_key -> struct flow_value: two entries per NAT connection, one
 *               per DR connection (also read by the TUN's way out: tun_out.bpf.c)
 *   ulvs_slots  array, mmap-able, struct slot per connection: packets and bytes by direction,
 *               time of the last packet
 */
import { existsSync, readFileSync } from 'node:fs';
import { sys } from './sys.js';
import { attachTcxIngress } from './bpf.js';
import { loadObject } from './libbpf.js';
import { FLOW_KEY, FLOW_VALUE, SLOT } from './layouts.gen.js';

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
  /** connections that can be offloaded at once (slots; the flow map holds two entries each) */
  slots: number;
}

/**
 * Load the fast-path program (bpf/fastpath.bpf.c) with its two maps sized for `slots`
 * connections; returns the fds (throws with libbpf's messages and the verifier log).
 */
export function loadFastPath(slots: number): { maps: FastPathMaps; progFd: number; insns: number } {
  const o = loadObject('fastpath.bpf.o', 'ulvs_fastpath', ['ulvs_flows', 'ulvs_slots'], { maxEntries: { ulvs_flows: slots * 2, ulvs_slots: slots } });
  return { maps: { flowsFd: o.maps.ulvs_flows!, slotsFd: o.maps.ulvs_slots!, slots }, progFd: o.progFd, insns: o.insns };
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
  const { maps, progFd } = loadFastPath(slots);
  try {
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

/** Load the TUN's way-out program (see loadTunOut) and attach it on the TUN; throws (nothing left behind). */
export function installTunOut(tun: string, flowsFd: number): { progFd: number; link: number } {
  const progFd = loadTunOut(flowsFd);
  try {
    return { progFd, link: attachFastPath(progFd, [tun])[0]!.fd };
  } catch (e) {
    closeFd(progFd);
    throw e;
  }
}
