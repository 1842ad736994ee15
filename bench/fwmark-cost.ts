/**
 * What carrying firewall marks across the TUN costs (issue 15, option (a) of the design:
 * docs/fwmark.md), measured where it is paid, on this machine:
 *   - the TUN egress program (bpf/tun_mark.bpf.c) per packet, marked and unmarked: the
 *     kernel's BPF_PROG_TEST_RUN average over 1,000,000 runs (the _l2 variant, an Ethernet
 *     frame; the unmarked run is mostly the method's own overhead), next to the way-out
 *     program (tun_out.bpf.c) on the same frame for scale;
 *   - the engine's read of a note (datapath/tun/mark-notes.ts markOf) per new connection, and a
 *     whole new connection through Director.process with the fwmark service vs. the same
 *     service by address (SYNs of distinct clients, the table big enough).
 * Run as root: node dist/bench/fwmark-cost.js
 */
import { BPF_CMD, bpfCall } from '../src/datapath/tun/bpf.js';
import { loadObject } from '../src/datapath/tun/libbpf.js';
import { closeFd } from '../src/datapath/tun/fastpath.js';
import { MarkNotes } from '../src/datapath/tun/mark-notes.js';
import { Director } from '../src/core/director.js';
import { defaultRegistry } from '../src/sched/index.js';
import { fwmarkKey } from '../src/core/service.js';
import { ipv4 } from '../src/wire/build.js';
import { parseIPv4 as ip } from '../src/wire/addr.js';
import koffi from 'koffi';

const RUNS = 1_000_000;
const eth = Buffer.from('0200000000010200000000020800', 'hex');

/** Average ns per run of progFd over `pkt` with skb->mark = mark (BPF_PROG_TEST_RUN duration). */
function progNs(progFd: number, pkt: Buffer, mark: number): number {
  const ctx = Buffer.alloc(192);
  ctx.writeUInt32LE(mark, 8);
  const out = Buffer.alloc(pkt.length + 256);
  const attr = Buffer.alloc(80);
  const addr = (b: Buffer) => BigInt(koffi.address(b) as bigint);
  attr.writeUInt32LE(progFd, 0);
  attr.writeUInt32LE(pkt.length, 8);
  attr.writeUInt32LE(out.length, 12);
  attr.writeBigUInt64LE(addr(pkt), 16);
  attr.writeBigUInt64LE(addr(out), 24);
  attr.writeUInt32LE(RUNS, 32);
  attr.writeUInt32LE(ctx.length, 40);
  attr.writeBigUInt64LE(addr(ctx), 48);
  bpfCall(BPF_CMD.PROG_TEST_RUN, attr, 'BPF_PROG_TEST_RUN');
  return attr.readUInt32LE(36);
}

const syn = (i: number) => ipv4({ src: `198.51.${100 + ((i >>> 16) & 3)}.${(i >>> 8) & 255}`, dst: '203.0.113.10' }).tcp({ sport: 1024 + (i & 0xfff), dport: 443, flags: 'S' }).build();

function kernel(): void {
  const o = loadObject('tun_mark.bpf.o', 'ulvs_tun_mark_l2', ['ulvs_marks']);
  const floor = loadObject('tun_out.bpf.o', 'ulvs_tun_out_l2', []); // a routed packet: the way-out's cost, for scale
  const pkt = Buffer.concat([eth, syn(1)]);
  const rows = [3, 3, 3].map(() => [progNs(o.progFd, pkt, 0), progNs(o.progFd, pkt, 1)]);
  console.log(`tun_mark.bpf.c per packet, ns (3 runs of ${RUNS}): unmarked ${rows.map((r) => r[0]).join(' ')}; marked ${rows.map((r) => r[1]).join(' ')}`);
  console.log(`for scale, tun_out.bpf.c (the way out, same frame), ns: ${[0, 0, 0].map(() => progNs(floor.progFd, pkt, 0)).join(' ')}`);
  for (const fd of [o.progFd, o.maps.ulvs_marks!, floor.progFd]) closeFd(fd);
}

function engine(): void {
  const N = 200_000;
  const pkts = Array.from({ length: N }, (_, i) => syn(i));
  const run = (byMark: boolean): number => {
    const d = new Director({ schedulers: defaultRegistry(), seed: 1, maxConns: N * 2 });
    const mem = new Uint8Array(65536 * 24);
    const notes = new MarkNotes(mem);
    if (byMark) d.marks = notes;
    const key = byMark ? fwmarkKey(1) : { proto: 6, addr: ip('203.0.113.10'), port: 443 };
    d.addService({ ...key, scheduler: 'wlc' });
    for (let r = 0; r < 4; r++) d.addDest(key, { addr: ip(`192.0.2.${11 + r}`), port: byMark ? 0 : 443 });
    const copies = pkts.map((p) => Buffer.from(p));
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < N; i++) {
      const b = copies[i]!;
      // the kernel's note for this packet, as the egress program writes it (not timed apart:
      // it is the program's work, measured above)
      if (byMark) MarkNotes.write(mem, 6, b.readInt32BE(12), b.readUInt16BE(20), b.readInt32BE(16), b.readUInt16BE(22), 1);
      d.process(b, 0, b.length, 1000, 0);
    }
    const ns = Number(process.hrtime.bigint() - t0) / N;
    if (d.connections(1000).length !== N) throw new Error(`${d.connections(1000).length} connections, expected ${N}`);
    return ns;
  };
  const res = [0, 1, 2].map(() => [run(false), run(true)]);
  console.log(`engine, new connection (SYN to a 4-server wlc service), ns: by address ${res.map((r) => r[0]!.toFixed(0)).join(' ')}; by mark (note written + read) ${res.map((r) => r[1]!.toFixed(0)).join(' ')}`);
}

kernel();
engine();
