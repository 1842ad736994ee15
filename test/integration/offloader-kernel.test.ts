/**
 * The Offloader's kernel set-up slots over real maps (the fast path's flow and slot maps, and a
 * BPF QUEUE map standing for ulvs_kslot_free): entries written as the fast path writes them for
 * a connection it set up (KF_MADE) are taken over without a write, harvested from the slot, and
 * at the withdrawal deleted (NAT) or turned back into the way-out entry (DR); only the flush
 * that did so pushes the slot into the queue, once. Control: the queue is read empty between
 * the withdrawal and the flush, which an early push would fail.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import koffi from 'koffi';
import { ConnFlag, ConnTable, FWD_SHIFT } from '../../src/core/conn-table.js';
import { OffloadReport } from '../../src/core/offload.js';
import { Fwd } from '../../src/core/service.js';
import { BpfError, bpfCall, MapOps } from '../../src/datapath/tun/bpf.js';
import { closeFd, FLOW_KEY_SIZE, FLOW_VALUE_SIZE } from '../../src/datapath/tun/fastpath.js';
import { writeKey, writeValue } from '../../src/datapath/tun/flow-entry.js';
import { FLOW_DIR, FLOW_VALUE } from '../../src/datapath/tun/layouts.gen.js';
import { Offloader } from '../../src/datapath/tun/offloader.js';
import { ENOENT } from '../../src/datapath/tun/syscalls.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { harvested, offloaderMaps } from '../support/offloader-maps.js';
import { needsRoot } from '../support/root.js';

const CLIENT = parseIPv4('198.51.100.2');
const VIP = parseIPv4('203.0.113.10');
const RIP = parseIPv4('192.0.2.11');
const BPF_MAP_TYPE_QUEUE = 22;
const BPF_MAP_LOOKUP_AND_DELETE_ELEM = 21;
const KF_MADE = 1;
const KF_ACK = 2;

/** a QUEUE map of u32 with room for n */
function queueMap(n: number): number {
  const a = Buffer.alloc(72);
  a.writeUInt32LE(BPF_MAP_TYPE_QUEUE, 0);
  a.writeUInt32LE(0, 4); // key_size
  a.writeUInt32LE(4, 8); // value_size
  a.writeUInt32LE(n, 12); // max_entries
  return bpfCall(0 /* BPF_MAP_CREATE */, a, 'BPF_MAP_CREATE queue');
}
/** every value in the queue, popped */
function drain(fd: number): number[] {
  const out: number[] = [];
  const v = Buffer.alloc(4);
  const a = Buffer.alloc(32);
  for (;;) {
    a.fill(0);
    a.writeUInt32LE(fd, 0);
    a.writeBigUInt64LE(BigInt(koffi.address(v) as bigint), 16);
    try {
      bpfCall(BPF_MAP_LOOKUP_AND_DELETE_ELEM, a, 'pop');
    } catch (e) {
      if (e instanceof BpfError && e.errno === ENOENT) return out;
      throw e;
    }
    out.push(v.readUInt32LE(0));
  }
}

describe('Offloader kernel set-up slots over the kernel maps', { skip: needsRoot }, () => {
  const fp = offloaderMaps();
  let queue = -1;
  before(() => {
    queue = queueMap(4);
  });
  after(() => closeFd(queue));

  /** an entry as the fast path writes it for a connection it set up */
  const kernelEntry = (saddr: number, daddr: number, sport: number, dport: number, addr: number, port: number, dir: number, slot: number, kflags: number) => {
    const k = Buffer.alloc(FLOW_KEY_SIZE);
    writeKey(k, 0, saddr, daddr, sport, dport, 6);
    const v = Buffer.alloc(FLOW_VALUE_SIZE);
    writeValue(v, 0, addr, port, dir, slot);
    v.writeUInt32LE(kflags, FLOW_VALUE.off.kflags);
    new MapOps(fp.maps.flowsFd).update(k, v);
  };

  test('NAT: held without a write, harvested, deleted at the flush and only then back in the queue, once', () => {
    const conns = new ConnTable({ capacity: 16, seed: 1 });
    const c = conns.insert(6, CLIENT, 43000, VIP, 80, RIP, 8080, 1, 0, 100, 0);
    kernelEntry(CLIENT, VIP, 43000, 80, RIP, 8080, FLOW_DIR.FLOW_REQUEST, 9, KF_MADE | KF_ACK);
    kernelEntry(RIP, CLIENT, 8080, 43000, VIP, 80, FLOW_DIR.FLOW_REPLY, 9, KF_MADE);
    fp.setSlot(9, 0, 0, 0, 0);
    const off = new Offloader(conns, { ...fp.init, slotBase: 0, slotCount: 4, kernel: { slotBase: 8, slotCount: 4, freeFd: queue } });
    try {
      assert.equal(off.kernelSlotFree(9), true);
      assert.equal(off.kernelSlotFree(3), false, 'an own slot is not a kernel one');
      assert.equal(off.kernelSlotFree(12), false, 'beyond the kernel range');
      off.adoptKernel(c, 9);
      off.flush();
      assert.equal(off.kernelSlotFree(9), false);
      assert.equal(off.active, 1);
      assert.equal(fp.flowsOf(43000).length, 2, 'the kernel wrote them; nothing was written or deleted');
      fp.setSlot(9, 3, 300, 2, 200);
      assert.deepEqual(harvested(off), [[c, 3, 300, 2, 200]]);
      fp.setSlot(9, 4, 340, 2, 200);
      const out = new OffloadReport();
      off.withdraw(c, out);
      assert.deepEqual([out.inPkts, out.inBytes, out.outPkts, out.outBytes], [1, 40, 0, 0]);
      assert.deepEqual(drain(queue), [], 'not pushed while its entries exist (control)');
      assert.equal(fp.flowsOf(43000).length, 2);
      off.flush();
      assert.equal(fp.flowsOf(43000).length, 0);
      assert.deepEqual(drain(queue), [9]);
      off.flush();
      assert.deepEqual(drain(queue), [], 'never twice');
      assert.equal(off.active, 0);
      assert.equal(off.kernelSlotFree(9), true);
    } finally {
      off.close();
    }
  });

  test('DR: the withdrawal turns the entry into the way-out entry (no slot), then the slot goes back', () => {
    const conns = new ConnTable({ capacity: 16, seed: 1 });
    const c = conns.insert(6, CLIENT, 43001, VIP, 80, RIP, 80, 1, (Fwd.DROUTE << FWD_SHIFT) | ConnFlag.NOOUTPUT, 100, 0);
    kernelEntry(CLIENT, VIP, 43001, 80, RIP, 0, FLOW_DIR.FLOW_DR, 10, KF_MADE | KF_ACK);
    const off = new Offloader(conns, { ...fp.init, slotBase: 0, slotCount: 4, kernel: { slotBase: 8, slotCount: 4, freeFd: queue } });
    try {
      off.adoptKernel(c, 10);
      off.withdraw(c, new OffloadReport());
      assert.deepEqual(drain(queue), []);
      off.flush();
      assert.deepEqual(fp.flowsOf(43001).map((e) => [e.dir, e.slot]), [[FLOW_DIR.FLOW_DR_ROUTE, 0]]);
      assert.deepEqual(drain(queue), [10]);
      off.unroute(c); // the connection removed (as ConnLifecycle.unlink): its way-out entry goes one flush later
      conns.remove(c);
      off.flush();
      off.flush();
      assert.equal(fp.flowsOf(43001).length, 0);
    } finally {
      off.close();
    }
  });

  test('moveKernel: a new connection on the tuple takes the slot over; its withdrawal gives it back once', () => {
    const conns = new ConnTable({ capacity: 16, seed: 1 });
    const c = conns.insert(6, CLIENT, 43003, VIP, 80, RIP, 8080, 1, 0, 100, 0);
    kernelEntry(CLIENT, VIP, 43003, 80, RIP, 8080, FLOW_DIR.FLOW_REQUEST, 8, KF_MADE);
    kernelEntry(RIP, CLIENT, 8080, 43003, VIP, 80, FLOW_DIR.FLOW_REPLY, 8, KF_MADE);
    fp.setSlot(8, 0, 0, 0, 0);
    const off = new Offloader(conns, { ...fp.init, slotBase: 0, slotCount: 4, kernel: { slotBase: 8, slotCount: 4, freeFd: queue } });
    try {
      off.adoptKernel(c, 8);
      fp.setSlot(8, 5, 500, 0, 0);
      conns.remove(c);
      const n = conns.insert(6, CLIENT, 43003, VIP, 80, RIP, 8080, 1, 0, 100, 0);
      const out = new OffloadReport();
      off.moveKernel(c, n, out);
      assert.deepEqual([out.inPkts, out.inBytes], [5, 500], "the old connection's last counts");
      fp.setSlot(8, 6, 560, 1, 60);
      assert.deepEqual(harvested(off), [[n, 1, 60, 1, 60]]);
      off.flush();
      assert.equal(fp.flowsOf(43003).length, 2, 'nothing written or deleted');
      off.withdraw(n, new OffloadReport());
      off.flush();
      assert.equal(fp.flowsOf(43003).length, 0);
      assert.deepEqual(drain(queue), [8]);
    } finally {
      off.close();
    }
  });

  test('a restart keeps a kernel-range slot: entries written again as its own, the slot goes back at the end', () => {
    const conns = new ConnTable({ capacity: 16, seed: 1 });
    const c = conns.insert(6, CLIENT, 43002, VIP, 80, RIP, 8080, 1, 0, 100, 0);
    kernelEntry(CLIENT, VIP, 43002, 80, RIP, 8080, FLOW_DIR.FLOW_REQUEST, 11, KF_MADE);
    kernelEntry(RIP, CLIENT, 8080, 43002, VIP, 80, FLOW_DIR.FLOW_REPLY, 11, KF_MADE);
    const off = new Offloader(conns, { ...fp.init, slotBase: 0, slotCount: 4, freshMaps: false, kernel: { slotBase: 8, slotCount: 4, freeFd: queue } });
    try {
      assert.equal(off.adopt(c, 11, Float64Array.of(1, 60, 0, 0)), true);
      off.flush();
      assert.deepEqual(fp.flowsOf(43002).map((e) => e.slot), [11, 11]);
      const rep = new Float64Array(4);
      assert.equal(off.slotOf(c, rep), 11);
      assert.deepEqual([...rep], [1, 60, 0, 0]);
      off.withdraw(c, new OffloadReport());
      off.flush();
      assert.deepEqual(drain(queue), [11]);
    } finally {
      off.close();
    }
  });
});
