/**
 * The reader thread of test/integration/kernel-setup-atomic.test.ts (a worker_threads Worker):
 * runs the REAL fast path program with BPF_PROG_TEST_RUN on pure SYNs to one service, as fast
 * as it can, while the main thread publishes tables through KernelTables. Test-only.
 *
 * The fds (program, flow map, free-slot queue, ring 0) are the process's, shared with the main
 * thread. A thread has its own network namespace and CPU mask, so this one enters the test
 * namespace itself (bpf_fib_lookup runs in the caller's namespace) and pins itself to its own CPU
 * (KSCHED_SEQ cursors are per CPU).
 *
 * Generations (the Int32Array `gen` over a SharedArrayBuffer): gen[STARTED] is the generation the
 * main thread has begun to publish, gen[DONE] the last whose sync() returned, gen[STOP] non-zero
 * ends the run; the reader keeps gen[COUNT] (SYNs run) and gen[OVERLAP] (SYNs with lo < hi). Each SYN records lo = gen[DONE] read before the run and hi = gen[STARTED] read
 * after it: the ksvcs value the run read was of a generation in [lo, hi].
 *
 * Each SYN comes from client i (round robin over `clients`) with a fresh port; a redirected SYN's
 * entries are deleted and its slot pushed back (from its KREPORT_NEW record), so the flow map and
 * the kernel slots never run out. Posted at the end: per SYN client index, port, retval, raddr,
 * rport (0 when not redirected), lo, hi; and `bad` (a redirect without exactly one record).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { closeSync, openSync } from 'node:fs';
import { MapOps, testRun } from '../../src/datapath/tun/bpf.js';
import { KernelRing, newKReport, readKReport } from '../../src/datapath/tun/kernel-ring.js';
import { writeKey } from '../../src/datapath/tun/flow-entry.js';
import { FLOW_KEY } from '../../src/datapath/tun/layouts.gen.js';
import { libc } from '../../src/datapath/tun/syscalls.js';
import { ipv4 } from '../../src/wire/build.js';

export const STARTED = 0, DONE = 1, STOP = 2, COUNT = 3, OVERLAP = 4;
export const REDIRECT = 7;

export interface ReaderInput {
  nsPath: string;
  cpu: number;
  prog: number;
  ifindex: number;
  flowsFd: number;
  slotFreeFd: number;
  ringFd: number;
  ringBytes: number;
  /** dotted */
  vip: string;
  vport: number;
  clients: string[];
  inMac: string;
  clientMac: string;
  gen: SharedArrayBuffer;
  /** stop after this many SYNs even when not told to (the result arrays' size) */
  max: number;
}

export interface ReaderOutput {
  n: number;
  client: Uint16Array;
  cport: Uint16Array;
  retval: Int32Array;
  raddr: Uint32Array;
  rport: Uint16Array;
  lo: Int32Array;
  hi: Int32Array;
  bad: number;
}

function main(w: ReaderInput): void {
  const setns = libc.func('int setns(int fd, int nstype)') as (fd: number, type: number) => number;
  const setAffinity = libc.func('int sched_setaffinity(int pid, unsigned long size, void *mask)') as (pid: number, n: number, m: Buffer) => number;
  const fd = openSync(w.nsPath, 'r');
  try {
    if (setns(fd, 0x40000000) !== 0) throw new Error('reader: setns failed');
  } finally {
    closeSync(fd);
  }
  const mask = Buffer.alloc(128);
  mask[w.cpu >> 3] = 1 << (w.cpu & 7);
  if (setAffinity(0, mask.length, mask) !== 0) throw new Error(`reader: cannot pin to CPU ${w.cpu}`);

  const gen = new Int32Array(w.gen);
  const flows = new MapOps(w.flowsFd), slots = new MapOps(w.slotFreeFd);
  const ring = new KernelRing(w.ringFd, w.ringBytes);
  const o: ReaderOutput = {
    n: 0, bad: 0,
    client: new Uint16Array(w.max), cport: new Uint16Array(w.max), retval: new Int32Array(w.max), raddr: new Uint32Array(w.max),
    rport: new Uint16Array(w.max), lo: new Int32Array(w.max), hi: new Int32Array(w.max),
  };
  const eth = Buffer.concat([Buffer.from(w.inMac.split(':').map((x) => parseInt(x, 16))), Buffer.from(w.clientMac.split(':').map((x) => parseInt(x, 16))), Buffer.from([8, 0])]);
  const ctx = Buffer.alloc(44);
  ctx.writeUInt32LE(w.ifindex, 36);
  ctx.writeUInt32LE(w.ifindex, 40);
  const caddrs = w.clients.map((c) => c.split('.').reduce((a, x) => a * 256 + Number(x), 0));
  const vaddr = w.vip.split('.').reduce((a, x) => a * 256 + Number(x), 0);
  const key = Buffer.alloc(FLOW_KEY.size), slot = Buffer.alloc(4), rec = newKReport();
  let port = 1024, recs = 0;
  const onRecord = (b: Buffer, off: number, len: number) => {
    if (readKReport(b, off, len, rec)) recs++;
  };
  parentPort!.postMessage({ ready: true });
  while (Atomics.load(gen, STOP) === 0 && o.n < w.max) {
    const i = o.n % w.clients.length;
    port = port >= 65535 ? 1024 : port + 1;
    const pkt = Buffer.concat([eth, ipv4({ src: w.clients[i]!, dst: w.vip, ttl: 64, id: 1 }).tcp({ sport: port, dport: w.vport, flags: 'S', seq: 1, window: 64240 }).build()]);
    const lo = Atomics.load(gen, DONE);
    const r = testRun(w.prog, pkt, ctx);
    const hi = Atomics.load(gen, STARTED);
    const n = o.n++;
    o.client[n] = i;
    o.cport[n] = port;
    o.retval[n] = r.retval;
    o.lo[n] = lo;
    o.hi[n] = hi;
    Atomics.store(gen, COUNT, o.n);
    if (lo < hi) Atomics.add(gen, OVERLAP, 1);
    recs = 0;
    ring.drain(onRecord);
    if (r.retval !== REDIRECT) {
      if (recs !== 0) o.bad++;
      continue;
    }
    if (recs !== 1) {
      o.bad++;
      continue;
    }
    o.raddr[n] = rec.raddr >>> 0;
    o.rport[n] = rec.rport;
    writeKey(key, 0, caddrs[i]!, vaddr, port, w.vport, 6);
    flows.delete(key);
    writeKey(key, 0, rec.raddr, caddrs[i]!, rec.rport, port, 6); // NAT's reply entry (kdest port = rport)
    flows.delete(key);
    slot.writeUInt32LE(rec.slot);
    if (slots.push(slot) !== 0) o.bad++;
  }
  ring.close();
  parentPort!.postMessage(o);
}

if (parentPort !== null && workerData !== undefined) main(workerData as ReaderInput);
