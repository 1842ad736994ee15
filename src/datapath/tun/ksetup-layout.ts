/**
 * The bytes of the kernel set-up maps' elements (bpf/ulvs_maps.h struct ksvc_key, struct
 * ksvc_value, struct kdest): what kernel-tables.ts writes into ulvs_ksvcs and ulvs_ktab.
 *
 * The offsets are written out here because no compiled object carries these structs in its BTF
 * yet (layouts.gen.ts is generated from BTF); ksetup-layout.test.ts compares them with
 * layouts.gen.ts as soon as the generator has KSVC_KEY, KSVC_VALUE and KDEST. Byte order as the
 * header says: addresses and ports network order, the other u32 fields host order (x86-64 and
 * arm64: little-endian, as flow-entry.ts writes a slot).
 */
import type { KDest } from '../../sched/kernel-table.js';

export const KSVC_KEY_LAYOUT = { size: 8, off: { addr: 0, port: 4, proto: 6, pad: 7 } } as const;
export const KSVC_VALUE_LAYOUT = { size: 20, off: { base: 0, size: 4, region: 8, steer_mask: 12, sched: 16, flags: 17, pad: 18 } } as const;
export const KDEST_LAYOUT = { size: 12, off: { addr: 0, port: 4, dir: 6, tun_type: 7, rport: 8, pad: 10 } } as const;

/** struct ksvc_key at b[0]: VIP `addr` (int32 or uint32 host value), `port` and `proto` host numbers. */
export function writeKsvcKey(b: Buffer, addr: number, port: number, proto: number): void {
  const f = KSVC_KEY_LAYOUT.off;
  b.fill(0, 0, KSVC_KEY_LAYOUT.size);
  b.writeUInt32BE(addr >>> 0, f.addr);
  b.writeUInt16BE(port, f.port);
  b[f.proto] = proto;
}

/** The fields of struct ksvc_value (host numbers). */
export interface KsvcValue {
  base: number;
  size: number;
  region: number;
  steerMask: number;
  sched: number;
  flags: number;
}

/** struct ksvc_value at b[0]. */
export function writeKsvcValue(b: Buffer, v: KsvcValue): void {
  const f = KSVC_VALUE_LAYOUT.off;
  b.fill(0, 0, KSVC_VALUE_LAYOUT.size);
  b.writeUInt32LE(v.base >>> 0, f.base);
  b.writeUInt32LE(v.size >>> 0, f.size);
  b.writeUInt32LE(v.region >>> 0, f.region);
  b.writeUInt32LE(v.steerMask >>> 0, f.steer_mask);
  b[f.sched] = v.sched;
  b[f.flags] = v.flags;
}

/** struct kdest at b[o]. */
export function writeKdest(b: Buffer, o: number, e: KDest): void {
  const f = KDEST_LAYOUT.off;
  b.writeUInt32BE(e.addr >>> 0, o + f.addr);
  b.writeUInt16BE(e.port, o + f.port);
  b[o + f.dir] = e.dir;
  b[o + f.tun_type] = e.tunType;
  b.writeUInt16BE(e.rport, o + f.rport);
  b.writeUInt16LE(0, o + f.pad);
}
