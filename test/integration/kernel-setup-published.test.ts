/**
 * The whole kernel-side chain (docs/kernel-setup.md): the table publisher (kernel-tables.ts,
 * from a Director's services) writes ulvs_ksvcs/ulvs_ktab of the real fast path program
 * (openKernelTableMaps), and the program's SYN path (bpf/ulvs_ksetup.h) then schedules each
 * client, BPF_PROG_TEST_RUN in a namespace of its own: the KREPORT_NEW record names the server
 * the user-space scheduler picks (sh, sh-port, dh, mh, mh-port; NAT), and where the scheduler
 * has no server (a weight-0 server's bucket) the SYN goes to ulvsd (TCX_NEXT, KS_USER).
 *
 * Control: the SYNs of one service whose table is unpublished (kernel_setup off for the sync)
 * all go on to ulvsd, uncounted (so a program that scheduled without the publisher's entry fails).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { testRun } from '../../src/datapath/tun/bpf.js';
import { KernelTables, openKernelTableMaps } from '../../src/datapath/tun/kernel-tables.js';
import { KSETUP_COUNTER as KS } from '../../src/datapath/tun/layouts.gen.js';
import { Director } from '../../src/core/director.js';
import { defaultRegistry } from '../../src/sched/index.js';
import { SH_PORT } from '../../src/sched/sh.js';
import { MH_PORT } from '../../src/sched/mh.js';
import { ipv4 } from '../../src/wire/build.js';
import { needsRoot } from '../support/root.js';
import { Prng } from '../support/prng.js';
import { CLIENT_MAC, IN_MAC, ip4, KsetupBed, mac, RIPS } from '../support/ksetup-bed.js';

const VIP = '203.0.113.19', TCX_NEXT = -1, REDIRECT = 7;

describe('kernel set-up: published tables scheduled by the fast path program', { skip: needsRoot }, () => {
  const bed = new KsetupBed('hkpp');
  const A = 'hkppa';
  let close = () => {};
  let pub: KernelTables;
  const d = new Director({ schedulers: defaultRegistry(), maxConns: 16 });
  const SERVICES: [number, string, number, number[]][] = [[80, 'sh', 0, [1, 0, 3, 2]], [81, 'sh', SH_PORT, [2, 5]], [82, 'dh', 0, [1, 1, 1]], [83, 'mh', 0, [1, 2, 3, 1]], [84, 'mh', MH_PORT, [5, 1]]];

  before(() => {
    bed.enter({ slots: 8, kernelSlots: 64, workers: 2, ringBytes: 1 << 16 });
    const fds = openKernelTableMaps(bed.prog);
    if ('missing' in fds) throw new Error(fds.missing);
    close = fds.close;
    for (const [port, sched, flags, ws] of SERVICES) {
      d.addService({ proto: 6, addr: ip4(VIP), port, scheduler: sched, schedFlags: flags });
      ws.forEach((w, i) => d.addDest({ proto: 6, addr: ip4(VIP), port }, { addr: ip4(RIPS[i]!), port: 8000 + i, weight: w }));
    }
    pub = new KernelTables(fds.maps, fds.ksvcMax, () => performance.now());
  });
  after(() => {
    close();
    bed.leave();
  });

  const syn = (client: string, cport: number, vport: number) => {
    const ctx = Buffer.alloc(44);
    ctx.writeUInt32LE(bed.ifindex[A]!, 36);
    ctx.writeUInt32LE(bed.ifindex[A]!, 40);
    const ip = ipv4({ src: client, dst: VIP, ttl: 64, id: 3 }).tcp({ sport: cport, dport: vport, flags: 'S', seq: 1, window: 64240 }).build();
    return testRun(bed.prog, Buffer.concat([mac(IN_MAC), mac(CLIENT_MAC), Buffer.from([8, 0]), ip]), ctx);
  };
  const prng = new Prng(19);
  const dotted = (a: number) => [24, 16, 8, 0].map((s) => (a >>> s) & 255).join('.');

  test('control: before the publisher wrote a table, every SYN goes on to ulvsd, uncounted', () => {
    pub.sync(d.services, null, false);
    const s0 = bed.stats();
    for (const [port] of SERVICES) assert.equal(syn('198.51.100.3', 30000 + port, port).retval, TCX_NEXT);
    assert.deepEqual(bed.stats(), s0);
  });

  for (const [port, sched, flags] of SERVICES) {
    test(`${sched}${flags ? '-port' : ''} (VIP:${port}): 200 clients get the scheduler's server, or ulvsd where it has none`, () => {
      pub.sync(d.services, null, true);
      assert.equal(pub.counters()['ksetup_services'], SERVICES.length, pub.lastError ?? '');
      const svc = d.getService({ proto: 6, addr: ip4(VIP), port })!;
      let user = 0, made = 0;
      for (let i = 0; i < 200; i++) {
        const client = `198.51.100.${2 + (prng.u32() % 240)}`, cport = 1024 + (prng.u32() % 60000);
        const want = svc.sched!.pick(svc, { proto: 6, caddr: ip4(client), cport, vaddr: ip4(VIP), vport: port, now: 0, dryRun: true });
        const s0 = bed.stats();
        const r = syn(client, cport, port);
        if (want === null) {
          assert.equal(r.retval, TCX_NEXT, `${client}:${cport}: no server in user space, none here`);
          assert.equal(bed.stats()[KS.KS_USER]! - s0[KS.KS_USER]!, 1);
          user++;
          continue;
        }
        assert.equal(r.retval, REDIRECT, `${client}:${cport}`);
        const recs = [...bed.drain(0), ...bed.drain(1)];
        assert.equal(recs.length, 1);
        const rec = recs[0]!;
        assert.equal(dotted(rec.raddr), dotted(want.addr >>> 0), `${client}:${cport}`);
        assert.equal(rec.rport, want.port);
        made++;
        bed.deleteEntry(client, VIP, cport, port);
        bed.deleteEntry(dotted(rec.raddr), client, rec.rport, cport);
        bed.pushSlot(rec.slot);
      }
      if (svc.dests.some((x) => x.weight === 0) && sched !== 'mh') assert.ok(user > 0, 'a weight-0 server\'s clients reached ulvsd');
      assert.ok(made > 100, `${made} made`);
    });
  }
});
