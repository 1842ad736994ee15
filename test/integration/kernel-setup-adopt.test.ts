/**
 * A restart with kernel set-up (fastpath.ts adoptFastPath, kernel-setup-maps.ts): the new
 * process takes the flow map and slot array over, its kernel set-up maps are fresh, and the
 * kernel slots that entries of kernel-made connections still name are not put into the new
 * free queue, so the program cannot hand one to a second connection. A slot array without the
 * same kernel range is not adopted.
 *
 * Controls: after the connection's entries are gone, a second adoption puts every kernel slot
 * into the queue (so the first one left the slot out because of the entries); the new program
 * makes a connection, which shows its rings and kconf are in place. The programs are loaded,
 * not attached (ifindexOf reads /sys, which is not this namespace's): the maps are the point.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testRun } from '../../src/datapath/tun/bpf.js';
import { adoptFastPath, fastPathIds, removeFastPath, type FastPathState } from '../../src/datapath/tun/fastpath.js';
import { FLOW_DIR, KSCHED } from '../../src/datapath/tun/layouts.gen.js';
import { ipv4 } from '../../src/wire/build.js';
import { needsRoot } from '../support/root.js';
import { CLIENT_MAC, IN_MAC, KsetupBed, mac, RIPS } from '../support/ksetup-bed.js';

const VIP = '203.0.113.10', CLIENT = '198.51.100.2', REDIRECT = 7;
const K = { kernelSlots: 16, workers: 2, ringBytes: 4096, aliveMs: 0 }; // no worker beats here: liveness not checked (docs/kernel-setup.md "Liveness")

describe('kernel set-up across a restart (adoptFastPath)', { skip: needsRoot }, () => {
  const bed = new KsetupBed('hkpa');
  const A = 'hkpaa';
  before(() => bed.enter({ slots: 8, ...K, install: true }));
  after(() => bed.leave());

  const syn = (cport: number) => {
    const ctx = Buffer.alloc(44);
    ctx.writeUInt32LE(bed.ifindex[A]!, 36);
    ctx.writeUInt32LE(bed.ifindex[A]!, 40);
    const ip = ipv4({ src: CLIENT, dst: VIP, ttl: 64, id: 1 }).tcp({ sport: cport, dport: 80, flags: 'S', seq: 1, window: 64240 }).build();
    return testRun(bed.prog, Buffer.concat([mac(IN_MAC), mac(CLIENT_MAC), Buffer.from([8, 0]), ip]), ctx).retval;
  };
  const service = () => {
    bed.putTable(0, [{ rip: RIPS[0]!, port: 8080, dir: FLOW_DIR.FLOW_REQUEST }]);
    bed.putService({ vip: VIP, port: 80, base: 0, size: 1, region: 0, sched: KSCHED.KSCHED_SEQ });
  };
  const freeList = () => {
    const all: number[] = [];
    for (let s = bed.popSlot(); s !== null; s = bed.popSlot()) all.push(s);
    for (const s of all) bed.pushSlot(s);
    return all;
  };
  /** adopt the current fast path as a restarted ulvsd would; the old state's fds closed (not detached) */
  const restart = (k = K): FastPathState | null => {
    const old = bed.state!;
    const st = adoptFastPath({ ...fastPathIds(old), slots: 8, attached: old.attached }, 8, [], k);
    if (st) {
      removeFastPath(old, true);
      bed.use(st);
    }
    return st;
  };

  test('the slot of a kernel-made connection stays out of the new free queue; the new program sets up connections', () => {
    service();
    assert.equal(syn(40000), REDIRECT);
    const slot = bed.entry(CLIENT, VIP, 40000, 80)!.slot;
    const flowsId = fastPathIds(bed.state!).flowsId;
    assert.ok(restart(), 'adopted');
    assert.equal(fastPathIds(bed.state!).flowsId, flowsId, 'the same flow map');
    assert.equal(bed.entry(CLIENT, VIP, 40000, 80)!.slot, slot, 'the entry is still there');
    const free = freeList();
    assert.equal(free.length, K.kernelSlots - 1);
    assert.ok(!free.includes(slot), `slot ${slot} is not free`);
    service(); // the set-up maps are fresh: the publisher writes them again
    assert.equal(syn(40001), REDIRECT, 'the new program makes a connection');
    assert.notEqual(bed.entry(CLIENT, VIP, 40001, 80)!.slot, slot);
    assert.equal(bed.drain(0).length + bed.drain(1).length, 1, 'its record in the new rings');
  });

  test('control: without entries every kernel slot is free after a restart', () => {
    for (const p of [40000, 40001]) {
      bed.deleteEntry(CLIENT, VIP, p, 80);
      bed.deleteEntry(RIPS[0]!, CLIENT, 8080, p);
    }
    assert.ok(restart());
    assert.equal(freeList().length, K.kernelSlots);
  });

  test('a slot array of another kernel range is not adopted (null: the caller installs anew)', () => {
    assert.equal(restart({ ...K, kernelSlots: 4 }), null);
  });
});
