/**
 * Real fast path maps for the Offloader's tests over the kernel maps (offloader-*.test.ts): the
 * program loaded with 16 slots and attached nowhere, so a test writes flow entries and slot counts as the kernel would and reads back what the Offloader did.
 * Call `offloaderMaps()` inside a describe: it loads in that describe's `before` and closes the
 * program and the two maps in its `after`. Test-only; needs root (the caller skips without it).
 */
import { after, before } from 'node:test';
import type { OffloadReport } from '../../src/core/offload.js';
import { MapOps } from '../../src/datapath/tun/bpf.js';
import { closeFd, loadFastPath, type FastPathMaps } from '../../src/datapath/tun/fastpath.js';
import { readFlows, type FlowEntry } from '../../src/datapath/tun/flow-dump.js';
import { SLOT } from '../../src/datapath/tun/layouts.gen.js';
import type { Offloader } from '../../src/datapath/tun/offloader.js';

export interface OffloaderMaps {
  /** the loaded maps (from the describe's `before` on) */
  readonly maps: FastPathMaps;
  /** the maps' part of an OffloaderInit: flowsFd, slotsFd, slots */
  readonly init: { flowsFd: number; slotsFd: number; slots: number };
  /** slot s's counts as the kernel would have them: packets and bytes in, packets and bytes out */
  setSlot(s: number, pin: number, bin: number, pout: number, bout: number): void;
  /** the flow entries of client port `cport` (either direction) */
  flowsOf(cport: number): FlowEntry[];
}

export function offloaderMaps(): OffloaderMaps {
  let loaded: FastPathMaps | undefined;
  let prog = -1;
  before(() => {
    ({ maps: loaded, progFd: prog } = loadFastPath(16));
  });
  after(() => {
    for (const fd of [prog, loaded?.flowsFd ?? -1, loaded?.slotsFd ?? -1]) closeFd(fd);
  });
  const maps = (): FastPathMaps => {
    if (loaded === undefined) throw new Error('offloaderMaps: the maps are loaded in the describe\'s before');
    return loaded;
  };
  return {
    get maps() {
      return maps();
    },
    get init() {
      const m = maps();
      return { flowsFd: m.flowsFd, slotsFd: m.slotsFd, slots: m.slots };
    },
    setSlot(s, pin, bin, pout, bout) {
      const k = Buffer.alloc(4);
      k.writeUInt32LE(s, 0);
      const v = Buffer.alloc(SLOT.size);
      v.writeBigUInt64LE(BigInt(pin), SLOT.off.packets);
      v.writeBigUInt64LE(BigInt(pout), SLOT.off.packets + 8);
      v.writeBigUInt64LE(BigInt(bin), SLOT.off.bytes);
      v.writeBigUInt64LE(BigInt(bout), SLOT.off.bytes + 8);
      v.writeBigUInt64LE(1n, SLOT.off.last_ns);
      new MapOps(maps().slotsFd).update(k, v);
    },
    flowsOf: (cport) => readFlows(maps().flowsFd).filter((e) => e.sport === cport || e.dport === cport),
  };
}

/** What one Offloader.harvest reports, a row per connection: [conn, inPkts, inBytes, outPkts, outBytes]. */
export function harvested(off: Offloader): number[][] {
  const seen: number[][] = [];
  off.harvest({ offloadActivity: (c: number, r: OffloadReport) => void seen.push([c, r.inPkts, r.inBytes, r.outPkts, r.outBytes]) });
  return seen;
}
