/**
 * The kernel set-up tables' publisher (docs/kernel-setup.md "Tables and atomic changes"): makes
 * ulvs_ksvcs (struct ksvc_key -> struct ksvc_value) and ulvs_ktab (array of struct kdest, two
 * regions of KTAB_REGION elements per service number) match a list of services.
 *
 *   sync(services, steer, enabled) -> { retryInMs }   never throws
 *
 * For each service (sched/kernel-table.ts decides eligibility and builds the table):
 *   - a service number (0..ksvcMax-1), stable while the service stays eligible; a number given
 *     back is not reused for GRACE_MS (a program run that read the old value may still index it);
 *   - an unchanged table and steering mask: nothing written (`unchanged`);
 *   - a changed one: the whole table into the region NOT in use (one BPF_MAP_UPDATE_BATCH), then
 *     one update of the ksvcs value (base, size): a SYN sees the old table or the new one. A
 *     region flipped less than GRACE_MS ago is not rewritten: the change waits (`deferred`) and
 *     retryInMs says when to call sync again;
 *   - gone, ineligible or `enabled` false: the ksvcs entry deleted first, then the number is free.
 * Deletions are made before writes. A kernel error (a failed batch or update) is counted, the
 * service's entry deleted and its number given back: it stays on the user-space path until a
 * later change publishes it again.
 *
 * Counters (counters()): ksetup_published, ksetup_unchanged, ksetup_deferred, ksetup_deleted,
 * ksetup_errors, ksetup_no_number (more eligible services than numbers): events since start;
 * ksetup_services (services in the kernel now) and ksetup_ineligible_<reason> (services of the
 * last sync that keep the user-space path, by reason; `off` when kernel_setup is 0): gauges.
 */
import type { VirtualService } from '../../core/service.js';
import { INELIGIBLE_REASONS, kernelTable, KTAB_REGION, sameTable, tableInputs, type IneligibleReason, type KernelTable } from '../../sched/kernel-table.js';
import { fdById, mapInfo, MapOps, progInfo } from './bpf.js';
import { sys } from './sys.js';
import { KDEST_LAYOUT, KSVC_KEY_LAYOUT, KSVC_VALUE_LAYOUT, writeKdest, writeKsvcKey, writeKsvcValue } from './ksetup-layout.js';
import type { SteeringSpec } from './steering.js';

/** ms after a flip (or a deletion) before the region (or the number) is written again */
export const GRACE_MS = 50;

/** What the publisher needs of the two maps (MapOps; a fake in tests). */
export interface KernelTableMaps {
  ksvcs: Pick<MapOps, 'update' | 'delete' | 'nextKey'>;
  ktab: Pick<MapOps, 'updateBatch'>;
}

interface Published {
  key: Buffer;
  number: number;
  /** the region (0, 1) the ksvcs value points at */
  half: number;
  flippedAt: number;
  table: KernelTable;
  steerMask: number;
}

const svcId = (s: { proto: number; addr: number; port: number }) => `${s.proto}/${s.addr >>> 0}/${s.port}`;

/** The steering mask of a service as steer.bpf.c keys it: the masked endpoint of its exact port,
 *  else of port 0 on its VIP; 0 (caddr ^ cport) when none. null: masked under 0.0.0.0, which the
 *  value cannot say (0 means unmasked). */
export function steerMaskOf(spec: SteeringSpec | null, s: { proto: number; addr: number; port: number }): number | null {
  if (spec === null) return 0;
  const find = (port: number) => spec.inbound.find((e) => e.proto === s.proto && e.addr >>> 0 === s.addr >>> 0 && e.port === port);
  const m = find(s.port) ?? (s.port !== 0 ? find(0) : undefined);
  if (m === undefined) return 0;
  return m.mask >>> 0 === 0 ? null : m.mask >>> 0;
}

export class KernelTables {
  readonly #maps: KernelTableMaps;
  readonly #max: number;
  readonly #now: () => number;
  readonly #live = new Map<string, Published>();
  /** numbers given back: when (ms); reusable GRACE_MS later */
  readonly #freedAt = new Map<number, number>();
  /** numbers whose entry could not be deleted: never given out again (an entry may point there) */
  readonly #stuck = new Set<number>();
  readonly #keys = Buffer.alloc(KTAB_REGION * 4);
  readonly #values = Buffer.alloc(KTAB_REGION * KDEST_LAYOUT.size);
  readonly #value = Buffer.alloc(KSVC_VALUE_LAYOUT.size);
  readonly #c: Record<string, number> = { ksetup_published: 0, ksetup_unchanged: 0, ksetup_deferred: 0, ksetup_deleted: 0, ksetup_errors: 0, ksetup_no_number: 0 };
  #ineligible: Record<string, number> = {};
  /** the last table built per service, with its inputs (tableInputs): built again only when they change */
  #built = new Map<string, { inputs: string; t: KernelTable | { ineligible: IneligibleReason } }>();
  #lastError = '';

  /** `ksvcMax`: service numbers (ulvs_ktab has 2 * ksvcMax * KTAB_REGION elements); `now`: ms, monotonic */
  constructor(maps: KernelTableMaps, ksvcMax: number, now: () => number) {
    if (!Number.isInteger(ksvcMax) || ksvcMax < 1) throw new RangeError(`ksvcMax must be a positive integer, not ${ksvcMax}`);
    this.#maps = maps;
    this.#max = ksvcMax;
    this.#now = now;
  }

  /** See the file header. `steer`: the steering spec in force (null: one worker). */
  sync(services: readonly VirtualService[], steer: SteeringSpec | null, enabled: boolean): { retryInMs: number | null } {
    const now = this.#now();
    const ineligible: Record<string, number> = {};
    const want = new Map<string, { svc: VirtualService; table: KernelTable; steerMask: number }>();
    const built = new Map<string, { inputs: string; t: KernelTable | { ineligible: IneligibleReason } }>();
    for (const svc of services) {
      const inputs = tableInputs(svc);
      const before = this.#built.get(svcId(svc));
      const b = before?.inputs === inputs ? before : { inputs, t: kernelTable(svc) };
      built.set(svcId(svc), b);
      const t = enabled ? b.t : { ineligible: 'off' as const };
      const mask = steerMaskOf(steer, svc);
      const why = 'ineligible' in t ? t.ineligible : mask === null ? 'steering' : null;
      if (why !== null) ineligible[why] = (ineligible[why] ?? 0) + 1;
      else want.set(svcId(svc), { svc, table: t as KernelTable, steerMask: mask! });
    }
    this.#ineligible = ineligible;
    this.#built = built;
    for (const [id, p] of this.#live) if (!want.has(id)) this.#withdraw(id, p, now, 'ksetup_deleted');
    let retry: number | null = null;
    for (const [id, w] of want) {
      const p = this.#live.get(id);
      if (p !== undefined && sameTable(p.table, w.table) && p.steerMask === w.steerMask) {
        this.#c['ksetup_unchanged']!++;
        continue;
      }
      if (p !== undefined && now - p.flippedAt < GRACE_MS) {
        this.#c['ksetup_deferred']!++;
        const wait = p.flippedAt + GRACE_MS - now;
        retry = retry === null ? wait : Math.min(retry, wait);
        continue;
      }
      const number = p?.number ?? this.#freeNumber(now);
      if (number === null) {
        this.#c['ksetup_no_number']!++;
        const soonest = this.#soonestFree(now);
        if (soonest !== null) retry = retry === null ? soonest : Math.min(retry, soonest);
        continue;
      }
      this.#publish(id, w.svc, w.table, w.steerMask, number, p, now);
    }
    return { retryInMs: retry };
  }

  /**
   * Delete every ulvs_ksvcs entry (maps taken over from a previous process hold its services):
   * before the first sync. When there were any, every number then waits GRACE_MS before use. Returns how many were
   * deleted; never throws (an error is counted and the entries left are not this publisher's).
   */
  clear(): number {
    const now = this.#now();
    const keys: Buffer[] = [];
    let n = 0;
    try {
      const cur = Buffer.alloc(KSVC_KEY_LAYOUT.size);
      for (let prev: Buffer | null = null; this.#maps.ksvcs.nextKey(prev, cur); prev = keys[keys.length - 1]!) keys.push(Buffer.from(cur));
      for (const k of keys) if (this.#maps.ksvcs.delete(k)) n++;
    } catch (e) {
      this.#lastError = `clearing ulvs_ksvcs: ${(e as Error).message}`;
      this.#c['ksetup_errors']!++;
    }
    if (keys.length > 0) for (let i = 0; i < this.#max; i++) this.#freedAt.set(i, now); // a run may still read them
    return n;
  }

  /** The services in the kernel now, by "proto/addr/port": their number, size and region base. */
  published(): Map<string, { number: number; base: number; size: number }> {
    return new Map([...this.#live].map(([id, p]) => [id, { number: p.number, base: this.#base(p.number, p.half), size: p.table.size }]));
  }

  counters(): Record<string, number> {
    const out: Record<string, number> = { ...this.#c, ksetup_services: this.#live.size };
    for (const r of [...INELIGIBLE_REASONS, 'off', 'steering']) out[`ksetup_ineligible_${r}`] = this.#ineligible[r] ?? 0;
    return out;
  }

  /** The last kernel error's text ('' when none). */
  get lastError(): string {
    return this.#lastError;
  }

  #base(number: number, half: number): number {
    return (number * 2 + half) * KTAB_REGION;
  }

  #publish(id: string, svc: VirtualService, t: KernelTable, steerMask: number, number: number, p: Published | undefined, now: number): void {
    const half = p === undefined ? 0 : 1 - p.half;
    const base = this.#base(number, half);
    const key = p?.key ?? Buffer.alloc(KSVC_KEY_LAYOUT.size);
    if (p === undefined) writeKsvcKey(key, svc.addr, svc.port, svc.proto);
    try {
      for (let i = 0; i < t.size; i++) {
        this.#keys.writeUInt32LE(base + i, i * 4);
        writeKdest(this.#values, i * KDEST_LAYOUT.size, t.elements[i]!);
      }
      const r = t.size === 0 ? { done: 0, errno: 0 } : this.#maps.ktab.updateBatch(this.#keys, this.#values, t.size);
      if (r.errno !== 0 || r.done !== t.size) throw new Error(`BPF_MAP_UPDATE_BATCH of ulvs_ktab wrote ${r.done} of ${t.size} elements (errno ${r.errno})`);
      writeKsvcValue(this.#value, { base, size: t.size, region: number, steerMask, sched: t.sched, flags: t.flags });
      this.#maps.ksvcs.update(key, this.#value);
    } catch (e) {
      this.#lastError = `${id}: ${(e as Error).message}`;
      this.#c['ksetup_errors']!++;
      if (p !== undefined) this.#withdraw(id, p, now, null);
      else this.#freedAt.set(number, now); // nothing points at it; its half may be partly written
      return;
    }
    this.#c['ksetup_published']!++;
    this.#live.set(id, { key, number, half, flippedAt: now, table: t, steerMask });
  }

  /** Delete the entry (first), then give the number back (kept out of use when the delete
   *  failed); `counter`: the event to count. */
  #withdraw(id: string, p: Published, now: number, counter: string | null): void {
    this.#live.delete(id);
    try {
      this.#maps.ksvcs.delete(p.key);
      if (counter !== null) this.#c[counter]!++;
      this.#freedAt.set(p.number, now);
    } catch (e) {
      this.#lastError = `${id}: ${(e as Error).message}`;
      this.#c['ksetup_errors']!++;
      this.#stuck.add(p.number);
    }
  }

  #freeNumber(now: number): number | null {
    const used = new Set([...this.#live.values()].map((p) => p.number).concat([...this.#stuck]));
    for (let n = 0; n < this.#max; n++) {
      if (used.has(n)) continue;
      const freed = this.#freedAt.get(n);
      if (freed === undefined || now - freed >= GRACE_MS) return n;
    }
    return null;
  }

  /** ms until a number in its grace period becomes free, null when none is waiting */
  #soonestFree(now: number): number | null {
    const used = new Set([...this.#live.values()].map((p) => p.number));
    let best: number | null = null;
    for (const [n, at] of this.#freedAt) if (!used.has(n) && now - at < GRACE_MS) best = Math.min(best ?? Infinity, at + GRACE_MS - now);
    return best;
  }
}

/** The two maps of a loaded fast path program, found by name among its maps (ulvs_ksvcs,
 *  ulvs_ktab), with their sizes checked; `close` releases the fds opened here. */
export interface KernelTableFds {
  maps: KernelTableMaps;
  ksvcMax: number;
  close(): void;
}

/**
 * Open ulvs_ksvcs and ulvs_ktab of program `progFd` (the fast path's); null with the reason when
 * the program has no such maps (a fast path without kernel set-up) or their shapes differ from
 * bpf/ulvs_maps.h. Never throws.
 */
export function openKernelTableMaps(progFd: number): KernelTableFds | { missing: string } {
  const opened: number[] = [];
  const closeAll = () => opened.forEach((fd) => sys.close(fd));
  try {
    let ksvcs = -1, ktab = -1;
    for (const id of progInfo(progFd).mapIds) {
      const fd = fdById('map', id);
      if (fd === null) continue;
      opened.push(fd);
      const name = mapInfo(fd).name;
      if (name === 'ulvs_ksvcs') ksvcs = fd;
      else if (name === 'ulvs_ktab') ktab = fd;
    }
    for (const fd of opened) if (fd !== ksvcs && fd !== ktab) sys.close(fd);
    opened.splice(0, opened.length, ...[ksvcs, ktab].filter((fd) => fd >= 0));
    if (ksvcs < 0 || ktab < 0) {
      closeAll();
      return { missing: 'the fast path program has no ulvs_ksvcs/ulvs_ktab maps' };
    }
    const si = mapInfo(ksvcs), ti = mapInfo(ktab);
    const want = 2 * si.maxEntries * KTAB_REGION;
    if (si.valueSize !== KSVC_VALUE_LAYOUT.size || ti.valueSize !== KDEST_LAYOUT.size || ti.maxEntries < want) {
      closeAll();
      return { missing: `map shapes differ from ulvs_maps.h (ulvs_ksvcs value ${si.valueSize} B, ulvs_ktab value ${ti.valueSize} B and ${ti.maxEntries} elements; want ${KSVC_VALUE_LAYOUT.size}, ${KDEST_LAYOUT.size}, >= ${want})` };
    }
    return { maps: { ksvcs: new MapOps(ksvcs), ktab: new MapOps(ktab) }, ksvcMax: si.maxEntries, close: closeAll };
  } catch (e) {
    closeAll();
    return { missing: (e as Error).message };
  }
}
