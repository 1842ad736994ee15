/**
 * The libbpf loader (src/datapath/tun/libbpf.ts) on the committed objects: fds handed over,
 * maps sized before the load, a map shared by a second load (bpf_map__reuse_fd), and failures
 * that name their cause (libbpf's own messages) and leave nothing open.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { MapOps } from '../../src/datapath/tun/bpf.js';
import { loadObject } from '../../src/datapath/tun/libbpf.js';
import { sys } from '../../src/datapath/tun/sys.js';
import { needsRoot } from '../support/root.js';

const openFds = () => readdirSync('/proc/self/fd').length;

test('libbpf loader: sized maps, a map shared between two loads, fds owned by the caller', { skip: needsRoot }, () => {
  const a = loadObject('fastpath.bpf.o', 'ulvs_fastpath', ['ulvs_flows', 'ulvs_slots'], { maxEntries: { ulvs_flows: 8, ulvs_slots: 4 } });
  const b = loadObject('fastpath.bpf.o', 'ulvs_fastpath', ['ulvs_flows'], { reuse: { ulvs_flows: a.maps.ulvs_flows! } });
  try {
    // 646 before the ICMP relay (bpf/ulvs_tun_icmp.h, a subprogram of ~440), 1082 with it,
    // 1466 with the SYN cookies (bpf/ulvs_syncookie.h), 1622 with the SYN answer a subprogram
    // of its own (its stack frame no longer added to the relay's), 3983 with kernel connection
    // set-up (bpf/ulvs_ksetup.h), 4031 with its liveness check
    assert.ok(a.insns > 100 && a.insns < 4500, `fast path: ${a.insns} instructions`);
    const k = Buffer.alloc(16, 1);
    const v = Buffer.alloc(20, 2); // struct flow_value (20 bytes with kflags)
    new MapOps(a.maps.ulvs_flows!).update(k, v);
    const got = Buffer.alloc(20);
    assert.equal(new MapOps(b.maps.ulvs_flows!).lookup(k, got), true, 'the second program sees the first one\'s map');
    assert.deepEqual(got, v);
    const slots = new MapOps(a.maps.ulvs_slots!);
    const idx = Buffer.alloc(4);
    idx.writeUInt32LE(3);
    assert.equal(slots.lookup(idx, Buffer.alloc(40)), true);
    idx.writeUInt32LE(4);
    assert.equal(slots.lookup(idx, Buffer.alloc(40)), false, 'four slots, as asked');
  } finally {
    for (const fd of [a.progFd, b.progFd, ...Object.values(a.maps), ...Object.values(b.maps)]) sys.close(fd);
  }
});

test('libbpf loader: failures say why and leave no fd behind', { skip: needsRoot }, () => {
  const before = openFds();
  assert.throws(() => loadObject('steer.bpf.o', 'no_such_program', []), /no program no_such_program in bpf\/steer.bpf.o/);
  assert.throws(() => loadObject('steer.bpf.o', 'ulvs_steer', ['no_such_map']), /no map no_such_map/);
  assert.throws(() => loadObject('no-such.bpf.o', 'x', []), /ENOENT/);
  // a map of zero entries: the kernel refuses it, and libbpf's message says which
  assert.throws(() => loadObject('steer.bpf.o', 'ulvs_steer', [], { maxEntries: { ulvs_steer_map: 0 } }), (e: Error) => /loading ulvs_steer failed/.test(e.message) && /ulvs_steer_map/.test(e.message));
  assert.equal(openFds(), before);
});
