/**
 * The connection table from one ulvsd process to the next (README "Restarts and upgrades").
 *
 *   save(path, batches)  a hand-over stop: the workers' records in one state file
 *                        (conn-state-file.ts, atomic)
 *   load(...)            a start: the state file if there is one (taken: removed once read);
 *                        else, when the fast path's maps were taken over (the previous process
 *                        was killed), the connections rebuilt from the flow map: every offloaded
 *                        connection (ESTABLISHED TCP, or UDP) and every direct-routing one the
 *                        way out knew; then the flow entries no record claims are deleted (a
 *                        connection of a server deleted meanwhile must not go on in the kernel),
 *                        and the records are split among the workers by the steering function
 *                        (steering.ts queueOf), so each lands where its packets arrive, whatever
 *                        the worker count was before.
 *
 * What is lost on `kill -9` (no file): connections that were not offloaded, i.e. NAT connections
 * that had not yet forwarded --fast-path-after packets in ESTABLISHED (or were in another state),
 * and every persistence template; their next packets find no entry and are dropped as stray
 * TCP (a NAT client then times out, as with IPVS after a failover without sync).
 */
import { ConnFlag, FWD_SHIFT } from '../core/conn-table.js';
import { HANDOVER_RECORD_SIZE, REC, type ImportResult } from '../core/conn/handover.js';
import { Fwd } from '../core/service.js';
import { TcpState } from '../core/tcp-states.js';
import type { Rules } from '../control/rules.js';
import { deleteFlows, readFlows, readSlotCounts, type FlowEntry } from '../datapath/tun/flow-dump.js';
import { FLOW_DIR, FLOW_KEY } from '../datapath/tun/layouts.gen.js';
import { writeKey } from '../datapath/tun/flow-entry.js';
import { queueOf, steeringSpec } from '../datapath/tun/steering.js';
import type { HandoverBatch } from '../datapath/tun/worker-protocol.js';
import { concatBatches, splitRecords, takeStateFile, writeStateFile, type RecordBatch } from './conn-state-file.js';
import type { DaemonLog } from './log.js';

/** Timers given to connections rebuilt from the flow map (IPVS's defaults: TCP ESTABLISHED 900 s,
 *  UDP 300 s); the first harvest restarts them from the kernel's last packet. */
const REBUILT_TCP_MS = 900_000;
const REBUILT_UDP_MS = 300_000;

/** Counters of what a start found (reported among the data-path counters as handover_*). */
export interface HandoverCounters {
  handover_records_read: number;
  handover_files_refused: number;
  handover_rebuilt_from_kernel: number;
  handover_flows_deleted: number;
  handover_records_written: number;
  /** kept-state records left by another network namespace with our inode number (kept-state.ts) */
  handover_stale_records: number;
}

export const newHandoverCounters = (): HandoverCounters => ({ handover_records_read: 0, handover_files_refused: 0, handover_rebuilt_from_kernel: 0, handover_flows_deleted: 0, handover_records_written: 0, handover_stale_records: 0 });

/** Write the workers' records (a hand-over stop) and log it; never throws. */
export function saveHandover(path: string, batches: readonly HandoverBatch[], dev: string, counters: HandoverCounters, log: DaemonLog): void {
  try {
    const all = concatBatches(batches.map((b) => ({ buf: Buffer.from(b.buf.buffer, b.buf.byteOffset, b.buf.byteLength), count: b.count })));
    writeStateFile(path, all);
    counters.handover_records_written += all.count;
    log.info(`stopped for a restart: ${all.count} entries written to ${path}; ${dev}, routing, capture and the fast path left for the next start`);
  } catch (e) {
    log.warn(`stopped for a restart, but the connections could not be written (the next start rebuilds the offloaded ones from the kernel): ${(e as Error).message}`);
  }
}

/** The log line for what the workers imported (null when nothing was handed over). */
export function importSummary(imported: readonly (ImportResult | undefined)[]): string | null {
  const imp = imported.filter((x): x is ImportResult => x !== undefined);
  if (imp.length === 0) return null;
  const n = (k: keyof ImportResult) => imp.reduce((a, x) => a + x[k], 0);
  return `hand-over: ${n('imported')} entries taken over (${n('adopted')} still in the kernel fast path); not taken: ${n('noDest')} whose service or real server is gone, ${n('duplicate')} duplicates, ${n('tableFull')} over the table's size`;
}

/** Records for every connection the flow map shows (the previous process was killed). */
export function flowsToRecords(entries: readonly FlowEntry[], slotsFd: number): RecordBatch {
  const own = entries.filter((e) => e.dir !== FLOW_DIR.FLOW_REPLY);
  const buf = Buffer.alloc(own.length * HANDOVER_RECORD_SIZE);
  own.forEach((e, i) => {
    const o = i * HANDOVER_RECORD_SIZE;
    const nat = e.dir === FLOW_DIR.FLOW_REQUEST;
    const tun = e.dir === FLOW_DIR.FLOW_TUN || e.dir === FLOW_DIR.FLOW_TUN_ROUTE;
    const offloaded = nat || e.dir === FLOW_DIR.FLOW_DR || e.dir === FLOW_DIR.FLOW_TUN;
    buf[o + REC.proto] = e.proto;
    buf[o + REC.state] = e.proto === 6 ? TcpState.ESTABLISHED : 0;
    const fwd = nat ? Fwd.MASQ : tun ? Fwd.TUNNEL : Fwd.DROUTE;
    buf.writeUInt16LE((fwd << FWD_SHIFT) | (nat ? 0 : ConnFlag.NOOUTPUT) | (e.proto === 6 ? 0 : ConnFlag.INACTIVE), o + REC.flags);
    buf.writeUInt32LE(e.saddr, o + REC.caddr);
    buf.writeUInt32LE(e.daddr, o + REC.vaddr);
    buf.writeUInt32LE(e.addr, o + REC.daddr);
    buf.writeUInt16LE(e.sport, o + REC.cport);
    buf.writeUInt16LE(e.dport, o + REC.vport);
    buf.writeUInt16LE(nat ? e.port : e.dport, o + REC.dport); // DR and TUN keep the port
    buf.writeUInt32LE(e.proto === 6 ? REBUILT_TCP_MS : REBUILT_UDP_MS, o + REC.remaining);
    buf.writeInt32LE(-1, o + REC.template);
    buf.writeInt32LE(offloaded ? e.slot : -1, o + REC.slot);
    buf.writeInt32LE(nat && e.proto === 6 ? e.seqDelta : 0, o + REC.seqDelta); // a SYN-cookie connection's
    const counts = offloaded ? readSlotCounts(slotsFd, e.slot) : new Float64Array(4);
    for (let k = 0; k < 4; k++) buf.writeDoubleLE(counts[k]!, o + REC.reported + 8 * k);
  });
  return { buf, count: own.length };
}

/** Whether the rules still have the service and server of the record at byte `o`. */
function servedBy(r: Rules, b: Buffer, o: number): boolean {
  const proto = b[o + REC.proto]!;
  const vaddr = b.readUInt32LE(o + REC.vaddr);
  const vport = b.readUInt16LE(o + REC.vport);
  const daddr = b.readUInt32LE(o + REC.daddr);
  const dport = b.readUInt16LE(o + REC.dport);
  return r.dests.some((x) => x.service.proto === proto && x.service.addr >>> 0 === vaddr && (x.service.port === vport || x.service.port === 0) && x.dest.addr >>> 0 === daddr && (x.dest.port === dport || x.dest.port === 0));
}

/** Delete the flow entries that no record served by the rules claims; returns how many. */
function sweepFlows(flowsFd: number, entries: readonly FlowEntry[], all: RecordBatch, r: Rules): number {
  const claimed = new Set<string>();
  const k = Buffer.alloc(FLOW_KEY.size);
  const claim = (saddr: number, daddr: number, sport: number, dport: number, proto: number) => {
    writeKey(k, 0, saddr, daddr, sport, dport, proto);
    claimed.add(k.toString('hex'));
  };
  for (let i = 0; i < all.count; i++) {
    const o = i * HANDOVER_RECORD_SIZE;
    const b = all.buf;
    if ((b.readUInt16LE(o + REC.flags) & ConnFlag.TEMPLATE) !== 0 || !servedBy(r, b, o)) continue;
    const proto = b[o + REC.proto]!;
    const caddr = b.readUInt32LE(o + REC.caddr);
    const cport = b.readUInt16LE(o + REC.cport);
    claim(caddr, b.readUInt32LE(o + REC.vaddr), cport, b.readUInt16LE(o + REC.vport), proto);
    if ((b.readUInt16LE(o + REC.flags) & ConnFlag.FWD_MASK) === 0) claim(b.readUInt32LE(o + REC.daddr), caddr, b.readUInt16LE(o + REC.dport), cport, proto);
  }
  const stale = entries.filter((e) => !claimed.has(e.key.toString('hex'))).map((e) => e.key);
  return stale.length ? deleteFlows(flowsFd, stale) : 0;
}

export interface LoadInput {
  connsPath: string;
  rules: Rules;
  workers: number;
  /** the fast path's maps when they were taken over from the previous process, else null */
  adoptedMaps: { flowsFd: number; slotsFd: number } | null;
  counters: HandoverCounters;
  log: DaemonLog;
}

/** The records for each worker (null: nothing to hand over). Never throws. */
export function loadHandover(x: LoadInput): RecordBatch[] | null {
  const { log, counters } = x;
  const taken = takeStateFile(x.connsPath);
  let all: RecordBatch | null = null;
  if (taken.kind === 'records') {
    all = taken;
    counters.handover_records_read += taken.count;
    log.info(`hand-over: ${taken.count} entries from ${x.connsPath}, written ${Math.max(0, Date.now() - taken.writtenAtMs)} ms ago`);
  } else if (taken.kind === 'refused') {
    counters.handover_files_refused++;
    log.warn(`hand-over: ${x.connsPath} refused, starting with an empty connection table: ${taken.reason}`);
  }
  if (x.adoptedMaps !== null) {
    try {
      const entries = readFlows(x.adoptedMaps.flowsFd);
      if (all === null) {
        all = flowsToRecords(entries, x.adoptedMaps.slotsFd);
        counters.handover_rebuilt_from_kernel += all.count;
        log.info(`hand-over: no state file; ${all.count} connections rebuilt from the fast path's flow map (the previous process did not stop cleanly: connections it had not offloaded are lost)`);
      }
      const n = sweepFlows(x.adoptedMaps.flowsFd, entries, all, x.rules);
      counters.handover_flows_deleted += n;
      if (n > 0) log.info(`hand-over: ${n} flow entries of connections that are not taken over deleted`);
    } catch (e) {
      log.warn(`hand-over: cannot read the fast path's flow map: ${(e as Error).message}`);
    }
  }
  if (all === null || all.count === 0) return null;
  const spec = steeringSpec(x.rules.services, x.rules.dests);
  return splitRecords(all, x.workers, (b, o) => queueOf(spec, x.workers, b[o + REC.proto]!, b.readUInt32LE(o + REC.caddr), b.readUInt16LE(o + REC.cport), b.readUInt32LE(o + REC.vaddr), b.readUInt16LE(o + REC.vport), b.readUInt32LE(o + REC.fwmark)));
}
