/**
 * Reading the fast path's flow map whole (a restart: daemon/handover.ts), never on the packet
 * path: every entry by BPF_MAP_GET_NEXT_KEY and a lookup, the deletion of a set of keys, and
 * a slot's counts by a lookup in the slot array.
 */
import { MapOps } from './bpf.js';
import { FLOW_KEY, FLOW_VALUE, SLOT } from './layouts.gen.js';

/** One entry of ulvs_flows, decoded (addresses uint32 host values, ports host order). */
export interface FlowEntry {
  key: Buffer;
  saddr: number;
  daddr: number;
  sport: number;
  dport: number;
  proto: number;
  /** the value: new address and port, FLOW_DIR, slot, a SYN-cookie connection's sequence
   *  delta (int32; 0 none) */
  addr: number;
  port: number;
  dir: number;
  slot: number;
  seqDelta: number;
}

/** Every entry of the flow map (a hash map: entries added meanwhile may or may not be seen). */
export function readFlows(flowsFd: number): FlowEntry[] {
  const ops = new MapOps(flowsFd);
  const out: FlowEntry[] = [];
  let prev: Buffer | null = null;
  for (;;) {
    const key = Buffer.alloc(FLOW_KEY.size);
    if (!ops.nextKey(prev, key)) break;
    prev = key;
    const v = Buffer.alloc(FLOW_VALUE.size);
    if (!ops.lookup(key, v)) continue; // deleted meanwhile
    const k = FLOW_KEY.off;
    const f = FLOW_VALUE.off;
    out.push({
      key,
      saddr: key.readUInt32BE(k.saddr),
      daddr: key.readUInt32BE(k.daddr),
      sport: key.readUInt16BE(k.sport),
      dport: key.readUInt16BE(k.dport),
      proto: key[k.proto]!,
      addr: v.readUInt32BE(f.addr),
      port: v.readUInt16BE(f.port),
      dir: v[f.dir]!,
      slot: v.readUInt32LE(f.slot),
      seqDelta: v.readInt32LE(f.seq_delta),
    });
  }
  return out;
}

/** Delete these keys; returns how many were there. */
export function deleteFlows(flowsFd: number, keys: readonly Buffer[]): number {
  const ops = new MapOps(flowsFd);
  let n = 0;
  for (const k of keys) if (ops.delete(k)) n++;
  return n;
}

/** Slot `slot`'s counts: packets in, bytes in, packets out, bytes out (zeros when out of range). */
export function readSlotCounts(slotsFd: number, slot: number): Float64Array {
  const key = Buffer.alloc(4);
  key.writeUInt32LE(slot, 0);
  const v = Buffer.alloc(SLOT.size);
  const out = new Float64Array(4);
  try {
    if (!new MapOps(slotsFd).lookup(key, v)) return out;
  } catch {
    return out;
  }
  const u64 = (o: number) => Number(v.readBigUInt64LE(o));
  out[0] = u64(SLOT.off.packets);
  out[1] = u64(SLOT.off.bytes);
  out[2] = u64(SLOT.off.packets + 8);
  out[3] = u64(SLOT.off.bytes + 8);
  return out;
}
