/**
 * A namespace for running the fast-path program's kernel set-up (bpf/ulvs_ksetup.h) by
 * BPF_PROG_TEST_RUN, and the map operations its tests need: services and tables written as
 * the engine's publisher would (ksvc_value, kdest), flow entries read back, per-CPU counters
 * summed, the free-slot queue popped, the rings drained. Test-only.
 *
 * Layout: namespace `<prefix><pid>`, veth <prefix>a (clients, 198.51.100.1/24, the VIP side)
 * and <prefix>b (real servers, 192.0.2.1/24), permanent neighbours for the clients and RIPs
 * 192.0.2.11..14 (192.0.2.99 deliberately without one), forwarding on. The test process
 * enters the namespace (the program's route lookups happen there) and is pinned to one CPU
 * (KSCHED_SEQ cursors are per CPU); leave() undoes both and deletes the namespace.
 */
import assert from 'node:assert/strict';
import { closeSync, openSync, readFileSync } from 'node:fs';
import koffi from 'koffi';
import { BPF_CMD, bpfCall, MapOps } from '../../src/datapath/tun/bpf.js';
import { closeFd, installFastPath, loadFastPath, removeFastPath, type FastPathMaps, type FastPathState } from '../../src/datapath/tun/fastpath.js';
import { closeKernelSetup } from '../../src/datapath/tun/kernel-setup-maps.js';
import { KernelRing, newKReport, readKReport } from '../../src/datapath/tun/kernel-ring.js';
import type { KReport } from '../../src/datapath/tun/kernel-reports.js';
import { writeKey } from '../../src/datapath/tun/flow-entry.js';
import { FLOW_KEY, FLOW_VALUE, KCONF, KDEST, KSETUP_COUNTER, KSVC_KEY, KSVC_VALUE, SLOT } from '../../src/datapath/tun/layouts.gen.js';
import { libc } from '../../src/datapath/tun/syscalls.js';
import { run } from '../../src/lab/shell.js';
import { parseIPv4 } from '../../src/wire/addr.js';

const setns = libc.func('int setns(int fd, int nstype)') as (fd: number, type: number) => number;
const setAffinity = libc.func('int sched_setaffinity(int pid, unsigned long size, void *mask)') as (pid: number, n: number, m: Buffer) => number;
const getAffinity = libc.func('int sched_getaffinity(int pid, unsigned long size, void *mask)') as (pid: number, n: number, m: Buffer) => number;
const CLONE_NEWNET = 0x40000000;

export const CLIENT_MAC = '02:00:00:00:00:02', IN_MAC = '02:00:00:00:01:01';
export const RIPS = ['192.0.2.11', '192.0.2.12', '192.0.2.13', '192.0.2.14'];
export const ripMac = (i: number) => `02:00:00:00:00:${(0x11 + i).toString(16)}`;
export const mac = (s: string) => Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
export const ip4 = (s: string) => parseIPv4(s) >>> 0;

/** A kernel set-up service as the publisher writes it. */
export interface KSvc { vip: string; port: number; base: number; size: number; region: number; sched: number; flags?: number; steerMask?: number }
/** A table element: RIP, its port in the entry, the request entry's dir, tunnel type, the engine's rport. */
export interface KDest { rip: string; port: number; dir: number; tunType?: number; rport?: number }

export class KsetupBed {
  readonly ns: string;
  readonly ifindex: Record<string, number> = {};
  readonly macOf: Record<string, Buffer> = {};
  maps!: FastPathMaps;
  prog = -1;
  /** instructions of the program as loaded */
  insns = 0;
  rings: KernelRing[] = [];
  flows!: MapOps;
  #home = -1;
  #affinity = Buffer.alloc(128);
  readonly cpus = (() => {
    const m = /^0-(\d+)$/.exec(readFileSync('/sys/devices/system/cpu/possible', 'utf8').trim());
    return m ? Number(m[1]) + 1 : 1;
  })();

  constructor(readonly prefix: string) {
    this.ns = `${prefix}${process.pid}`;
  }

  /** Build the namespace, enter it, pin to CPU 0, load the program with kernel set-up on. */
  /** the installed fast path (enter with attach: installFastPath, on no interface); leave() removes it */
  state: FastPathState | null = null;

  /** `aliveMs`: ulvs_kconf.alive_ms (default 0 here: these beds have no worker beating; beat() for the check) */
  enter(o: { slots: number; kernelSlots: number; workers: number; ringBytes: number; install?: boolean; aliveMs?: number }): void {
    const a = `${this.prefix}a`, b = `${this.prefix}b`;
    run(['ip', 'netns', 'add', this.ns]);
    const ip = (...x: string[]) => run(['ip', '-n', this.ns, ...x]);
    ip('link', 'add', a, 'type', 'veth', 'peer', 'name', b);
    ip('link', 'set', a, 'address', IN_MAC);
    ip('addr', 'add', '198.51.100.1/24', 'dev', a);
    ip('addr', 'add', '192.0.2.1/24', 'dev', b);
    for (const d of ['lo', a, b]) ip('link', 'set', d, 'up');
    run(['ip', 'netns', 'exec', this.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    RIPS.forEach((r, i) => ip('neigh', 'replace', r, 'lladdr', ripMac(i), 'dev', b, 'nud', 'permanent'));
    for (let c = 2; c < 250; c++) ip('neigh', 'replace', `198.51.100.${c}`, 'lladdr', CLIENT_MAC, 'dev', a, 'nud', 'permanent');
    this.#home = openSync('/proc/self/ns/net', 'r');
    const target = openSync(`/run/netns/${this.ns}`, 'r');
    try {
      assert.equal(setns(target, CLONE_NEWNET), 0, 'setns into the test namespace');
    } finally {
      closeSync(target);
    }
    for (const d of [a, b]) {
      const j = JSON.parse(run(['ip', '-n', this.ns, '-j', 'link', 'show', d])) as { ifindex: number; address: string }[];
      this.ifindex[d] = j[0]!.ifindex;
      this.macOf[d] = mac(j[0]!.address);
    }
    assert.equal(getAffinity(0, this.#affinity.length, this.#affinity), 0);
    const one = Buffer.alloc(128);
    one[0] = 1;
    assert.equal(setAffinity(0, one.length, one), 0, 'pin to CPU 0');
    const k = { kernelSlots: o.kernelSlots, workers: o.workers, ringBytes: o.ringBytes, aliveMs: o.aliveMs ?? 0 };
    if (o.install) this.use(installFastPath(o.slots, [], undefined, k)); // attached nowhere: /sys is not this namespace's; the flow map: room for both slot ranges
    else ({ maps: this.maps, progFd: this.prog, insns: this.insns } = loadFastPath(o.slots, undefined, k));
    this.flows = new MapOps(this.maps.flowsFd);
    this.rings = this.maps.kernel.rings.map((r) => new KernelRing(r.fd, r.bytes));
  }

  /** Work on fast path `st` from now on (an adopted one: the previous state's fds are the caller's). */
  use(st: FastPathState): void {
    for (const r of this.rings) r.close();
    this.state = st;
    this.maps = st.maps;
    this.prog = st.progFd;
    this.flows = new MapOps(st.maps.flowsFd);
    this.rings = st.maps.kernel.rings.map((r) => new KernelRing(r.fd, r.bytes));
  }

  leave(): void {
    for (const r of this.rings) r.close();
    if (this.state) removeFastPath(this.state);
    else if (this.prog >= 0) closeFd(this.prog);
    if (this.maps && !this.state) {
      for (const fd of [this.maps.flowsFd, this.maps.slotsFd, this.maps.syncookieFd]) closeFd(fd);
      closeKernelSetup(this.maps.kernel);
    }
    if (this.#home >= 0) {
      setAffinity(0, this.#affinity.length, this.#affinity);
      setns(this.#home, CLONE_NEWNET);
      closeSync(this.#home);
    }
    run(['ip', 'netns', 'del', this.ns]);
  }

  putService(s: KSvc): void {
    const k = Buffer.alloc(KSVC_KEY.size), v = Buffer.alloc(KSVC_VALUE.size);
    k.writeUInt32BE(ip4(s.vip), KSVC_KEY.off.addr);
    k.writeUInt16BE(s.port, KSVC_KEY.off.port);
    k[KSVC_KEY.off.proto] = 6;
    v.writeUInt32LE(s.base, KSVC_VALUE.off.base);
    v.writeUInt32LE(s.size, KSVC_VALUE.off.size);
    v.writeUInt32LE(s.region, KSVC_VALUE.off.region);
    v.writeUInt32LE((s.steerMask ?? 0) >>> 0, KSVC_VALUE.off.steer_mask);
    v[KSVC_VALUE.off.sched] = s.sched;
    v[KSVC_VALUE.off.flags] = s.flags ?? 0;
    new MapOps(this.maps.kernel.ksvcsFd).update(k, v);
  }

  /** Write table elements base.. (one bpf call per element: test-time only). */
  putTable(base: number, dests: readonly KDest[]): void {
    const ops = new MapOps(this.maps.kernel.ktabFd);
    const k = Buffer.alloc(4), v = Buffer.alloc(KDEST.size);
    dests.forEach((d, i) => {
      k.writeUInt32LE(base + i);
      v.fill(0);
      v.writeUInt32BE(ip4(d.rip), KDEST.off.addr);
      v.writeUInt16BE(d.port, KDEST.off.port);
      v[KDEST.off.dir] = d.dir;
      v[KDEST.off.tun_type] = d.tunType ?? 0;
      v.writeUInt16BE(d.rport ?? d.port, KDEST.off.rport);
      ops.update(k, v);
    });
  }

  /** The flow entry of a tuple, or null: { addr, port, dir, tunType, slot, seqDelta, kflags }. */
  entry(saddr: string, daddr: string, sport: number, dport: number): { addr: string; port: number; dir: number; tunType: number; slot: number; seqDelta: number; kflags: number } | null {
    const k = Buffer.alloc(FLOW_KEY.size), v = Buffer.alloc(FLOW_VALUE.size);
    writeKey(k, 0, ip4(saddr), ip4(daddr), sport, dport, 6);
    if (!this.flows.lookup(k, v)) return null;
    const f = FLOW_VALUE.off;
    return { addr: [...v.subarray(f.addr, f.addr + 4)].join('.'), port: v.readUInt16BE(f.port), dir: v[f.dir]!, tunType: v[f.tun_type]!, slot: v.readUInt32LE(f.slot), seqDelta: v.readUInt32LE(f.seq_delta), kflags: v.readUInt32LE(f.kflags) };
  }

  deleteEntry(saddr: string, daddr: string, sport: number, dport: number): void {
    const k = Buffer.alloc(FLOW_KEY.size);
    writeKey(k, 0, ip4(saddr), ip4(daddr), sport, dport, 6);
    this.flows.delete(k);
  }

  /** ulvs_kconf.workers := n (the rest kept). */
  setWorkers(n: number): void {
    this.#setKconf('workers', n);
  }

  /** ulvs_kconf.alive_ms := ms (0: not checked; the rest kept). */
  setAliveMs(ms: number): void {
    this.#setKconf('alive_ms', ms);
  }

  #setKconf(field: 'workers' | 'alive_ms', value: number): void {
    const ops = new MapOps(this.maps.kernel.kconfFd);
    const k = Buffer.alloc(4), v = Buffer.alloc(KCONF.size);
    ops.lookup(k, v);
    v.writeUInt32LE(value, KCONF.off[field]);
    ops.update(k, v);
  }

  /** ulvs_kalive[worker] := `ns` (CLOCK_MONOTONIC; default now), as a worker's beat writes it. */
  beat(worker: number, ns = process.hrtime.bigint()): void {
    const k = Buffer.alloc(4), v = Buffer.alloc(8);
    k.writeUInt32LE(worker);
    v.writeBigUInt64LE(ns);
    new MapOps(this.maps.kernel.kaliveFd).update(k, v);
  }

  /** ulvs_kstats summed over the CPUs. */
  stats(): number[] {
    const ops = new MapOps(this.maps.kernel.kstatsFd);
    const k = Buffer.alloc(4), v = Buffer.alloc(8 * this.cpus);
    const out: number[] = [];
    for (let i = 0; i < KSETUP_COUNTER.KS_COUNTERS; i++) {
      k.writeUInt32LE(i);
      ops.lookup(k, v);
      let n = 0;
      for (let c = 0; c < this.cpus; c++) n += Number(v.readBigUInt64LE(8 * c));
      out.push(n);
    }
    return out;
  }

  /** Pop one free slot (BPF_MAP_LOOKUP_AND_DELETE_ELEM on the queue); null when empty. */
  popSlot(): number | null {
    const v = Buffer.alloc(4), attr = Buffer.alloc(32);
    attr.writeUInt32LE(this.maps.kernel.kslotFreeFd, 0);
    attr.writeBigUInt64LE(BigInt(koffi.address(v) as bigint), 16);
    try {
      bpfCall(BPF_CMD.MAP_LOOKUP_AND_DELETE_ELEM, attr, 'pop');
    } catch {
      return null;
    }
    return v.readUInt32LE(0);
  }

  pushSlot(slot: number): void {
    const v = Buffer.alloc(4);
    v.writeUInt32LE(slot);
    assert.equal(new MapOps(this.maps.kernel.kslotFreeFd).push(v), 0, 'pushed');
  }

  /** A slot's counters: [packets0, packets1, bytes0, bytes1, last_ns]. */
  slot(i: number): number[] {
    const k = Buffer.alloc(4), v = Buffer.alloc(SLOT.size);
    k.writeUInt32LE(i);
    new MapOps(this.maps.slotsFd).lookup(k, v);
    return [0, 8, 16, 24, 32].map((o) => Number(v.readBigUInt64LE(o)));
  }

  setSlot(i: number, vals: number[]): void {
    const k = Buffer.alloc(4), v = Buffer.alloc(SLOT.size);
    k.writeUInt32LE(i);
    vals.forEach((x, j) => v.writeBigUInt64LE(BigInt(x), 8 * j));
    new MapOps(this.maps.slotsFd).update(k, v);
  }

  /** The records of ring `w` now, decoded (each a fresh object: test-time). */
  drain(w: number): KReport[] {
    const out: KReport[] = [];
    this.rings[w]!.drain((b, o, len) => {
      const r = newKReport();
      assert.ok(readKReport(b, o, len, r), 'a whole struct kreport');
      out.push(r);
    });
    return out;
  }
}
