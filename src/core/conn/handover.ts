/**
 * Connections handed from one ulvsd process to the next (a restart or an in-place upgrade):
 * the engine writes its table as fixed-size records, the next engine reads them back. The
 * record is the unit of the state file (daemon/conn-state-file.ts adds the header and the
 * checksum); the same bytes cross the worker boundary, so nothing is allocated per connection.
 *
 * Record layout, HANDOVER_RECORD_SIZE bytes, little-endian, addresses as uint32 host values:
 *
 *   off size  field
 *     0  1    proto          6 TCP, 17 UDP; 0 (IP) for a fwmark service's template
 *     1  1    state          TcpState (TCP) or the UDP state, as the table holds it
 *     2  2    flags          ConnFlag bits (LIVE and OFFLOADED cleared: they describe this process;
 *                            SYNPROXY* cleared: seq_delta says it, syn-proxy.ts restore)
 *     4  4    caddr          client address (a template: the masked client network)
 *     8  4    vaddr          virtual address
 *    12  4    daddr          real server address
 *    16  2    cport          client port (a template: 0)
 *    18  2    vport
 *    20  2    dport
 *    22  2    reserved       0
 *    24  4    remaining      ms until the entry's timer runs out (>= 0)
 *    28  4    template       index of the controlling template's record in the same batch, -1 none
 *    32  4    slot           kernel fast path slot (whole slot array), -1 when not offloaded
 *    36  4    fwmark         the mark of the entry's fwmark service, 0 for an address service
 *    40  4    seq_delta      int32: a SYN-cookie connection's sequence delta (cookie - server
 *                            ISN, syn-proxy.ts); 0 for every other (TCP only, never a template).
 *                            One still awaiting its server's SYN-ACK is not written: its client's
 *                            next ACK, whose cookie the kernel checks again, opens it anew
 *    44  4    (reserved)     0
 *    48  8x4  reported       float64: the slot's packets in, bytes in, packets out, bytes out
 *                            already counted by the engine (the next one counts from there)
 *
 * Records of LEGACY_RECORD_SIZE (72) bytes, written before fwmark and seq_delta, have
 * `reported` at 40 and nothing at 36-40 but zeros; `widenLegacyRecords` turns them into this
 * layout (conn-state-file.ts reads both sizes).
 *
 * Templates come before the connections they control, so `template` always points backwards.
 * An imported entry is bound to the server of the current rules with the same service and
 * address:port; when there is none (the service or the server was deleted meanwhile) the entry
 * is not imported: its next packet finds no connection and is dropped as stray TCP, which is
 * what IPVS does to a connection whose server is gone (expire_nodest_conn=0 drops its packets
 * until it expires; =1 expires it at its next packet) — counted as `noDest`.
 */
import { ConnFlag, TICK_MS } from '../conn-table.js';
import type { EngineState } from '../engine-state.js';
import type { SeqDeltaSource } from '../offload.js';
import type { OffloadPolicy } from '../offload-policy.js';
import { FWMARK_PROTO, type RealServer, type VirtualService } from '../service.js';
import { fwmarkOf } from './fwmark-of.js';
import { TCP_STATE_COUNT } from '../tcp-states.js';
import { checkOverload } from './lifecycle.js';

export const HANDOVER_RECORD_SIZE = 80;
export const REC = { proto: 0, state: 1, flags: 2, caddr: 4, vaddr: 8, daddr: 12, cport: 16, vport: 18, dport: 20, remaining: 24, template: 28, slot: 32, fwmark: 36, seqDelta: 40, reported: 48 } as const;
/** the record size before fwmark and seq_delta (reported at 40) */
export const LEGACY_RECORD_SIZE = 72;

/** Records of LEGACY_RECORD_SIZE bytes (`count` of them in `legacy`) in this layout: the first 36
 *  bytes as they are, `reported` moved from 40 to 48, fwmark and seq_delta 0 (never written). */
export function widenLegacyRecords(legacy: Buffer, count: number): Buffer {
  const out = Buffer.alloc(count * HANDOVER_RECORD_SIZE);
  for (let i = 0; i < count; i++) {
    const from = i * LEGACY_RECORD_SIZE;
    const to = i * HANDOVER_RECORD_SIZE;
    legacy.copy(out, to, from, from + 36);
    legacy.copy(out, to + REC.reported, from + 40, from + LEGACY_RECORD_SIZE);
  }
  return out;
}

/** Flags a record keeps: the ones that describe the connection, not this process's handling of it. */
const KEPT_FLAGS = 0xffff & ~(ConnFlag.LIVE | ConnFlag.OFFLOADED | ConnFlag.SYNPROXY | ConnFlag.SYNPROXY_WAIT);

/** Where an offloaded connection's kernel state is (the data path's port; offloader.ts). */
export interface SlotSource {
  /** entry c's slot (whole slot array), -1 when none; `reported` gets the counts already reported */
  slotOf(c: number, reported: Float64Array): number;
}

/** What importConns did, record by record summed up. */
export interface ImportResult {
  imported: number;
  /** records whose service or real server is not in the current rules (not imported) */
  noDest: number;
  /** records refused because the table is full */
  tableFull: number;
  /** records whose tuple is already in the table (not imported twice) */
  duplicate: number;
  /** imported records whose fast path slot was taken over (the rest go back to the engine) */
  adopted: number;
}

/** The services as the engine holds them (service-table.ts). */
export type ServiceLookup = (proto: number, addr: number, port: number) => VirtualService | null;

/**
 * Write every live entry of the table as records (templates first) into a new buffer;
 * `slots` gives each offloaded entry's slot, `deltas` each SYN-cookie connection's sequence
 * delta. `nowMs`: the engine's clock.
 */
export function exportConns(s: EngineState, nowMs: number, slots: SlotSource | null, deltas: SeqDeltaSource | null = null): { buf: Buffer; count: number } {
  const t = s.conns;
  const buf = Buffer.alloc(t.count * HANDOVER_RECORD_SIZE);
  const recOf = new Int32Array(t.capacity).fill(-1);
  const reported = new Float64Array(4);
  let n = 0;
  const nowTick = Math.floor(nowMs / TICK_MS);
  const put = (c: number): void => {
    const o = n * HANDOVER_RECORD_SIZE;
    const f = t.flags(c);
    buf[o + REC.proto] = t.proto(c);
    buf[o + REC.state] = t.state(c);
    buf.writeUInt16LE(f & KEPT_FLAGS, o + REC.flags);
    buf.writeUInt32LE(t.caddr(c) >>> 0, o + REC.caddr);
    buf.writeUInt32LE(t.vaddr(c) >>> 0, o + REC.vaddr);
    buf.writeUInt32LE(t.daddr(c) >>> 0, o + REC.daddr);
    buf.writeUInt16LE(t.cport(c), o + REC.cport);
    buf.writeUInt16LE(t.vport(c), o + REC.vport);
    buf.writeUInt16LE(t.dport(c), o + REC.dport);
    buf.writeUInt32LE(Math.max(0, t.expires(c) - nowTick) * TICK_MS, o + REC.remaining);
    const tp = (f & ConnFlag.TEMPLATE) === 0 ? t.ctl[c]! : -1;
    buf.writeInt32LE(tp >= 0 ? recOf[tp]! : -1, o + REC.template);
    reported.fill(0);
    const slot = slots !== null && (f & ConnFlag.OFFLOADED) !== 0 ? slots.slotOf(c, reported) : -1;
    buf.writeInt32LE(slot, o + REC.slot);
    buf.writeUInt32LE(fwmarkOf(s, c), o + REC.fwmark);
    for (let k = 0; k < 4; k++) buf.writeDoubleLE(slot >= 0 ? reported[k]! : 0, o + REC.reported + 8 * k);
    buf.writeInt32LE((f & ConnFlag.SYNPROXY) !== 0 && deltas !== null ? deltas.seqDelta(c) : 0, o + REC.seqDelta);
    recOf[c] = n++;
  };
  t.forEach((c) => {
    if (t.flags(c) & ConnFlag.TEMPLATE) put(c);
  });
  t.forEach((c) => {
    if ((t.flags(c) & (ConnFlag.TEMPLATE | ConnFlag.SYNPROXY_WAIT)) === 0) put(c);
  });
  return { buf: buf.subarray(0, n * HANDOVER_RECORD_SIZE), count: n };
}

/** The server of the current rules for a record, or null (service or server gone). */
function destOf(services: ServiceLookup, proto: number, vaddr: number, vport: number, daddr: number, dport: number, template: boolean, fwmark: number): RealServer | null {
  // a template of a port-0 (all ports) persistent service keeps vport 0 and dport 0 too; an
  // entry of a fwmark service belongs to the service of its mark, whatever its address
  const v = fwmark !== 0 ? services(FWMARK_PROTO, fwmark, 0) : (services(proto, vaddr, vport) ?? (template ? null : services(proto, vaddr, 0)));
  if (v === null) return null;
  for (const d of v.dests) if (d.addr >>> 0 === daddr >>> 0 && (d.port === dport || d.port === 0)) return d;
  return null;
}

/**
 * Insert `count` records of `buf` into the engine's table, each bound to its server in the
 * current rules (ip_vs_bind_dest's accounting), with its timer, its template link, and, where the
 * port takes it back, its fast path slot (`port.adopt`). Never throws on a record's content:
 * a record that cannot be placed is counted and skipped. Returns the counts; `out[i]` gets record
 * i's entry, or -1.
 */
export function importConns(s: EngineState, offload: OffloadPolicy, services: ServiceLookup, buf: Buffer, count: number, nowMs: number, out?: Int32Array): ImportResult {
  const r: ImportResult = { imported: 0, noDest: 0, tableFull: 0, duplicate: 0, adopted: 0 };
  const t = s.conns;
  s.setNow(nowMs);
  const entry = out ?? new Int32Array(count);
  const reported = new Float64Array(4);
  for (let i = 0; i < count; i++) {
    entry[i] = -1;
    const o = i * HANDOVER_RECORD_SIZE;
    const proto = buf[o + REC.proto]!;
    const flags = buf.readUInt16LE(o + REC.flags) & KEPT_FLAGS;
    const template = (flags & ConnFlag.TEMPLATE) !== 0;
    const caddr = buf.readUInt32LE(o + REC.caddr);
    const vaddr = buf.readUInt32LE(o + REC.vaddr);
    const daddr = buf.readUInt32LE(o + REC.daddr);
    const cport = buf.readUInt16LE(o + REC.cport);
    const vport = buf.readUInt16LE(o + REC.vport);
    const dport = buf.readUInt16LE(o + REC.dport);
    const d = destOf(services, proto, vaddr, vport, daddr, dport, template, buf.readUInt32LE(o + REC.fwmark));
    if (d === null || !d.available) {
      r.noDest++;
      continue;
    }
    const dup = template ? t.findTemplate(proto, caddr, vaddr, vport) : t.findIn(proto, caddr, cport, vaddr, vport);
    if (dup >= 0) {
      r.duplicate++;
      continue;
    }
    const expires = s.nowTick + Math.ceil(buf.readUInt32LE(o + REC.remaining) / TICK_MS);
    const c = t.insert(proto, caddr, cport, vaddr, vport, daddr, dport, d.id, flags, expires, s.nowTick);
    if (c < 0) {
      r.tableFull++;
      continue;
    }
    t.setState(c, buf[o + REC.state]!);
    if (template) d.persistConns++;
    else if (flags & ConnFlag.INACTIVE) d.inactConns++;
    else d.activeConns++;
    checkOverload(d); // not counted as a new connection: this process did not schedule it
    const tp = buf.readInt32LE(o + REC.template);
    if (!template && tp >= 0 && tp < i && entry[tp]! >= 0) {
      t.ctl[c] = entry[tp]!;
      t.ctl[entry[tp]!]!++;
    }
    entry[i] = c;
    r.imported++;
    if (template) continue;
    offload.seqDeltas?.restore(c, buf.readInt32LE(o + REC.seqDelta)); // before adopt: its entries carry it
    offload.created(c); // a direct-routing entry's way out (route) is written again
    const slot = buf.readInt32LE(o + REC.slot);
    if (slot >= 0) {
      for (let k = 0; k < 4; k++) reported[k] = buf.readDoubleLE(o + REC.reported + 8 * k);
      if (offload.adopt(c, slot, reported)) r.adopted++;
    }
  }
  return r;
}

/**
 * Check `count` records of `buf` before any is imported (a file is taken whole or not at all):
 * the first record that cannot be a table entry, with why, or null. Protocol TCP or UDP (IP for
 * a fwmark template), a TCP
 * state the table knows (UDP: 0), the LIVE bit clear as written, a template link pointing at an
 * earlier template record, a slot of -1 or more, finite non-negative reported counts.
 */
export function checkRecords(buf: Buffer, count: number): { index: number; reason: string } | null {
  if (buf.length < count * HANDOVER_RECORD_SIZE) return { index: Math.floor(buf.length / HANDOVER_RECORD_SIZE), reason: 'truncated' };
  for (let i = 0; i < count; i++) {
    const o = i * HANDOVER_RECORD_SIZE;
    const proto = buf[o + REC.proto]!;
    const bad = (reason: string) => ({ index: i, reason });
    const flags = buf.readUInt16LE(o + REC.flags);
    const fwmarkTemplate = proto === FWMARK_PROTO && (flags & ConnFlag.TEMPLATE) !== 0 && buf.readUInt32LE(o + REC.fwmark) !== 0;
    if (proto !== 6 && proto !== 17 && !fwmarkTemplate) return bad(`protocol ${proto}`);
    if (buf[o + REC.state]! >= (proto === 6 ? TCP_STATE_COUNT : 1)) return bad(`state ${buf[o + REC.state]}`);
    if ((flags & ~KEPT_FLAGS) !== 0) return bad(`flags 0x${flags.toString(16)}`);
    const tp = buf.readInt32LE(o + REC.template);
    if (tp < -1 || tp >= i || (tp >= 0 && (buf.readUInt16LE(tp * HANDOVER_RECORD_SIZE + REC.flags) & ConnFlag.TEMPLATE) === 0)) return bad(`template link ${tp}`);
    if (buf.readInt32LE(o + REC.slot) < -1) return bad('slot');
    if (buf.readInt32LE(o + REC.seqDelta) !== 0 && (proto !== 6 || (flags & (ConnFlag.TEMPLATE | ConnFlag.FWD_MASK)) !== 0)) return bad('sequence delta on a record that is not a NAT TCP connection');
    for (let k = 0; k < 4; k++) {
      const v = buf.readDoubleLE(o + REC.reported + 8 * k);
      if (!(Number.isFinite(v) && v >= 0)) return bad('reported counts');
    }
  }
  return null;
}
