/**
 * The worker's side of a restart over real maps (Offloader.adopt, slotOf; flow-dump.ts): a
 * connection taken over keeps its slot when the slot is in the worker's range and counts only
 * what the kernel forwarded after the previous process's last report; one whose slot is another
 * worker's gets a slot of its own (its flow entries repointed); with no slot free its entries
 * are deleted (it goes back to the engine). The control case (freshMaps) shows the baseline is
 * what separates the two counts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConnTable } from '../../src/core/conn-table.js';
import { OffloadReport } from '../../src/core/offload.js';
import { FLOW_DIR } from '../../src/datapath/tun/layouts.gen.js';
import { Offloader } from '../../src/datapath/tun/offloader.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { harvested, offloaderMaps } from '../support/offloader-maps.js';
import { needsRoot } from '../support/root.js';

const CLIENT = parseIPv4('198.51.100.2');
const VIP = parseIPv4('203.0.113.10');
const RIP = parseIPv4('192.0.2.11');

describe('Offloader.adopt over the kernel maps', { skip: needsRoot }, () => {
  const fp = offloaderMaps();

  test('a slot in range is kept, with the previous counts as the baseline (fresh maps: counted from zero)', () => {
    const conns = new ConnTable({ capacity: 16, seed: 1 });
    const c = conns.insert(6, CLIENT, 41000, VIP, 80, RIP, 8080, 1, 0, 100, 0);
    const init = { ...fp.init, slotBase: 0, slotCount: 8 };
    fp.setSlot(3, 10, 1000, 5, 500);
    const off = new Offloader(conns, { ...init, freshMaps: false });
    const fresh = new Offloader(conns, { ...init, freshMaps: true });
    try {
      assert.equal(off.adopt(c, 3, Float64Array.of(10, 1000, 5, 500)), true);
      off.flush();
      const f = fp.flowsOf(41000);
      assert.deepEqual(f.map((e) => [e.dir, e.slot]).sort(), [[FLOW_DIR.FLOW_REQUEST, 3], [FLOW_DIR.FLOW_REPLY, 3]]);
      fp.setSlot(3, 12, 1200, 6, 600);
      assert.deepEqual(harvested(off), [[c, 2, 200, 1, 100]], 'only what came after the previous report');
      const rep = new Float64Array(4);
      assert.equal(off.slotOf(c, rep), 3);
      assert.deepEqual([...rep], [12, 1200, 6, 600]);
      assert.equal(off.active, 1);
      // control: the same adoption without the baseline counts everything again
      assert.equal(fresh.adopt(c, 3, Float64Array.of(10, 1000, 5, 500)), true);
      assert.deepEqual(harvested(fresh), [[c, 12, 1200, 6, 600]]);
      off.withdraw(c, new OffloadReport());
      off.flush();
      assert.equal(fp.flowsOf(41000).length, 0);
    } finally {
      off.close();
      fresh.close();
    }
  });

  test("another worker's slot: a slot of its own, entries repointed; no slot free: entries deleted", () => {
    const conns = new ConnTable({ capacity: 16, seed: 1 });
    const a = conns.insert(6, CLIENT, 42000, VIP, 80, RIP, 8080, 1, 0, 100, 0);
    const b = conns.insert(6, CLIENT, 42001, VIP, 80, RIP, 8080, 1, 0, 100, 0);
    const off = new Offloader(conns, { ...fp.init, slotBase: 8, slotCount: 1 });
    try {
      assert.equal(off.adopt(a, 2, new Float64Array(4)), true, 'slot 2 is not in 8..8');
      off.flush();
      assert.deepEqual(fp.flowsOf(42000).map((e) => e.slot), [8, 8]);
      // the previous process left b's entries in the map (pointing at slot 5)
      const prev = new Offloader(conns, { ...fp.init, slotBase: 5, slotCount: 1 });
      assert.equal(prev.offer(b), true);
      prev.flush();
      prev.close();
      assert.equal(fp.flowsOf(42001).length, 2);
      assert.equal(off.adopt(b, 5, new Float64Array(4)), false, 'no slot free in 8..8');
      off.flush();
      assert.equal(fp.flowsOf(42001).length, 0, 'its entries are gone: its packets come to the engine');
      assert.equal(off.active, 1);
      off.withdraw(a, new OffloadReport());
      off.flush();
    } finally {
      off.close();
    }
  });
});
