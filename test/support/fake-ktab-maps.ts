/**
 * Fake ulvs_ksvcs and ulvs_ktab for the table publisher's tests (datapath/tun/kernel-tables.ts):
 * they keep the state the kernel would and record the order of the operations; failures on demand.
 */
import assert from 'node:assert/strict';
import { BpfError } from '../../src/datapath/tun/bpf.js';
import type { KernelTableMaps } from '../../src/datapath/tun/kernel-tables.js';
import { KDEST_LAYOUT, KSVC_VALUE_LAYOUT } from '../../src/datapath/tun/ksetup-layout.js';

export type KtabOp = { op: 'batch'; from: number; count: number } | { op: 'update'; key: string; base: number; size: number } | { op: 'delete'; key: string };

export class FakeKernelTableMaps implements KernelTableMaps {
  readonly log: KtabOp[] = [];
  readonly ksvcMap = new Map<string, Buffer>();
  readonly ktabMap = new Map<number, Buffer>();
  failBatch = 0; // errno of the next batch
  failUpdate = false;
  failDelete = false;
  readonly ksvcs = {
    update: (key: Buffer, value: Buffer) => {
      if (this.failUpdate) throw new BpfError('BPF_MAP_UPDATE_ELEM', 12);
      const v = Buffer.from(value.subarray(0, KSVC_VALUE_LAYOUT.size));
      this.ksvcMap.set(key.toString('hex'), v);
      this.log.push({ op: 'update', key: key.toString('hex'), base: v.readUInt32LE(0), size: v.readUInt32LE(4) });
    },
    nextKey: (key: Buffer | null, next: Buffer) => {
      const ks = [...this.ksvcMap.keys()].sort();
      const at = key === null ? 0 : ks.indexOf(key.toString('hex')) + 1;
      if (at >= ks.length) return false;
      Buffer.from(ks[at]!, 'hex').copy(next);
      return true;
    },
    delete: (key: Buffer) => {
      if (this.failDelete) throw new BpfError('BPF_MAP_DELETE_ELEM', 5);
      this.log.push({ op: 'delete', key: key.toString('hex') });
      return this.ksvcMap.delete(key.toString('hex'));
    },
  };
  readonly ktab = {
    updateBatch: (keys: Buffer, values: Buffer, count: number) => {
      if (this.failBatch !== 0) return { done: 0, errno: this.failBatch };
      const from = keys.readUInt32LE(0);
      for (let i = 0; i < count; i++) {
        assert.equal(keys.readUInt32LE(i * 4), from + i, 'one batch covers consecutive indexes');
        this.ktabMap.set(from + i, Buffer.from(values.subarray(i * KDEST_LAYOUT.size, (i + 1) * KDEST_LAYOUT.size)));
      }
      this.log.push({ op: 'batch', from, count });
      return { done: count, errno: 0 };
    },
  };

  /** The table the program would read for `key` now (through the ksvcs value). */
  readBack(key: string): Buffer[] | null {
    const v = this.ksvcMap.get(key);
    if (!v) return null;
    const base = v.readUInt32LE(0);
    return Array.from({ length: v.readUInt32LE(4) }, (_, i) => this.ktabMap.get(base + i) ?? Buffer.alloc(0));
  }
}

