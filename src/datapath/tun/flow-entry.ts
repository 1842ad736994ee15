/**
 * The flow map's element encoding (struct flow_key, struct flow_value in bpf/ulvs_maps.h; field
 * offsets from layouts.gen.ts): what the offloader, the restart hand-over and the program
 * tests write. Addresses are int32 or uint32 host values, ports host numbers.
 */
import type { ConnTable } from '../../core/conn-table.js';
import { FLOW_KEY, FLOW_VALUE } from './layouts.gen.js';

/** A struct flow_key (bpf/ulvs_maps.h) at byte o of b: addresses are int32 or uint32 host
 *  values, written with the ports in network order; the padding is zeroed. */
export function writeKey(b: Buffer, o: number, saddr: number, daddr: number, sport: number, dport: number, proto: number): void {
  const f = FLOW_KEY.off;
  b.writeUInt32BE(saddr >>> 0, o + f.saddr);
  b.writeUInt32BE(daddr >>> 0, o + f.daddr);
  b.writeUInt16BE(sport, o + f.sport);
  b.writeUInt16BE(dport, o + f.dport);
  b[o + f.proto] = proto;
  b.fill(0, o + f.pad, o + f.pad + FLOW_KEY.width.pad);
}

/** A struct flow_value (bpf/ulvs_maps.h) at byte o of b: the new address and port (network
 *  order; a tunnel's: GUE's port), the direction (FLOW_DIR), the slot (host order), the
 *  tunnel type (TUN_TYPE, FLOW_TUN* only; 0 otherwise) and a SYN-cookie connection's sequence
 *  delta (seq_delta, host order, taken mod 2^32; 0: nothing translated). */
export function writeValue(b: Buffer, o: number, addr: number, port: number, dir: number, slot: number, tunType = 0, seqDelta = 0): void {
  const f = FLOW_VALUE.off;
  b.writeUInt32BE(addr >>> 0, o + f.addr);
  b.writeUInt16BE(port, o + f.port);
  b[o + f.dir] = dir;
  b[o + f.tun_type] = tunType;
  b.writeUInt32LE(slot, o + f.slot);
  b.writeUInt32LE(seqDelta >>> 0, o + f.seq_delta);
  b.writeUInt32LE(0, o + f.kflags); // ulvsd's own entries: no kernel set-up bits (ulvs_maps.h flow_kflags)
}

/** The request tuples (client -> VIP:vport) of connections `cs` of table t as consecutive
 *  flow keys, for one batch call (allocates: control-time use, Offloader.dropRoutes). */
export function requestKeys(t: ConnTable, cs: readonly number[]): Buffer {
  const b = Buffer.alloc(cs.length * FLOW_KEY.size);
  cs.forEach((c, i) => writeKey(b, i * FLOW_KEY.size, t.caddr(c), t.vaddr(c), t.cport(c), t.vport(c), t.proto(c)));
  return b;
}
