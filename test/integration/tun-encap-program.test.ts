/**
 * Golden packets for tunnel encapsulation (bpf/ulvs_net.h tun_encap) in both programs that
 * encapsulate, in a namespace with a director's routes and neighbours:
 *
 *   fpa 198.51.100.1/24 ==veth== fpb 192.0.2.1/24: RIP 192.0.2.11 on-link (permanent neighbour),
 *   t1: a TUN device               192.0.2.192/26 via the gateway 192.0.2.9 (permanent neighbour)
 *
 *   - the NIC fast path (fastpath.bpf.c, FLOW_TUN), run by BPF_PROG_TEST_RUN on an Ethernet
 *     frame: return value and output frame;
 *   - the TUN's way out (tun_out.bpf.c, FLOW_TUN_ROUTE), run for real: BPF_PROG_TEST_RUN always
 *     hands a tc program an Ethernet header (it pushes ETH_HLEN back after eth_type_trans),
 *     which the way out never sees on a TUN. So the program is attached at t1's tcx ingress as
 *     ulvsd attaches it, the packet is written into t1 (as ulvsd's worker writes it), and the
 *     frame that leaves fpb is read at its peer fpa with an AF_PACKET socket.
 *
 * Input packet -> output bytes. The expected output is built independently
 * (src/wire/build.ts) from IPVS's encapsulation (ipvs_gue_encap, ipvs_gre_encap): only the
 * outer IP id (random, as ip_select_ident's) and GUE's UDP source port (the skb's flow hash,
 * whose seed is random per boot) are taken from the output, and checked for range and
 * stability; both checksums are verified by the slow reference (test/support/slow-checksum.ts).
 */
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { ipv4 } from '../../src/wire/build.js';
import { parseIPv4 } from '../../src/wire/addr.js';
import { attachTcxIngress, fdById, mapInfo, MapOps, progInfo, testRun } from '../../src/datapath/tun/bpf.js';
import { closeFd, FLOW_KEY_SIZE, FLOW_VALUE_SIZE, loadFastPath, loadTunOut, SLOT_SIZE, type FastPathMaps } from '../../src/datapath/tun/fastpath.js';
import { openTunQueue, type TunQueue } from '../../src/datapath/tun/device.js';
import { sys } from '../../src/datapath/tun/sys.js';
import { Offloader, writeKey, writeValue } from '../../src/datapath/tun/offloader.js';
import { FLOW_DIR, FLOW_VALUE, TUN_OUT_COUNTER, TUN_TYPE } from '../../src/datapath/tun/layouts.gen.js';
import { ConnFlag, ConnTable, FWD_SHIFT } from '../../src/core/conn-table.js';
import { OffloadReport } from '../../src/core/offload.js';
import { libc } from '../../src/datapath/tun/syscalls.js';
import { run } from '../../src/lab/shell.js';
import { packetChecksumsOk, slowSum } from '../support/slow-checksum.js';
import { needsRoot } from '../support/root.js';

const setns = libc.func('int setns(int fd, int nstype)') as (fd: number, type: number) => number;
const CLONE_NEWNET = 0x40000000;
const NS = `h1enc${process.pid}`;
const CLIENT = '198.51.100.2', VIP = '203.0.113.10', RIP = '192.0.2.11', GW = '192.0.2.9', FAR = '192.0.2.200', DIP = '192.0.2.1';
const RIP_MAC = '02000000000b', GW_MAC = '020000000009', CLIENT_MAC = '020000000002', IN_MAC = '020000000101';
const GUE_PORT = 6080;
const TCX_NEXT = -1, TC_ACT_REDIRECT = 7;
/** the kernel's default ip_local_port_range, which udp_flow_src_port scales the hash into */
const SPORT_MIN = 32768, SPORT_MAX = 60999;
const hex = (s: string) => Buffer.from(s, 'hex');
/** The folded sum of a TCP/IPv4 packet's pseudo-header (addresses, protocol 6, TCP length). */
const pseudoSum = (ip: Buffer) => slowSum(Buffer.concat([ip.subarray(12, 20), Buffer.from([0, 6, (ip.length - 20) >> 8, (ip.length - 20) & 255])]));
/** Prints the hex of the first N IPv4 frames of the given protocols (default the tunnels' 4,
 *  17, 47) arriving at an interface, one a line, then 'end' (also after the timeout); argv:
 *  interface, seconds, N, protocols (comma-separated). */
const CAPTURE = `
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind((sys.argv[1], 0))
s.settimeout(float(sys.argv[2]))
print('ready', flush=True)
n = int(sys.argv[3])
protos = [int(x) for x in sys.argv[4].split(',')]
try:
    while n > 0:
        f, a = s.recvfrom(70000)
        if a[2] != socket.PACKET_OUTGOING and len(f) > 23 and f[12:14] == b'\\x08\\x00' and f[23] in protos:
            print(f.hex(), flush=True)
            n -= 1
except socket.timeout:
    pass
print('end', flush=True)
`;

/** The client's request (TCP ACK with data) as it reaches the director. */
const inner = (sport: number, ttl: number, o: { tos?: number; df?: boolean; size?: number } = {}) =>
  ipv4({ src: CLIENT, dst: VIP, ttl, tos: o.tos ?? 0xb9, flagsFrag: o.df === false ? 0 : 0x4000, id: 0x1234 })
    .tcp({ sport, dport: 80, flags: 'A', seq: 1000, ack: 2000 })
    .payload(o.size ? Buffer.alloc(o.size - 40, 0x5a) : Buffer.from('tunnelled request'))
    .build();

/**
 * The outer packet IPVS sends for `inn` (already TTL - 1): IPv4 DIP -> rip, TTL the inner one,
 * TOS the inner DS with ECN encapsulated (CE -> ECT(0)), DF copied, then GUE (UDP to the port,
 * checksum 0, header 00 04 00 00) or GRE (00 00 08 00). `id` and `sport` come from the output.
 */
function expectedOuter(type: 'gue' | 'gre', rip: string, inn: Buffer, id: number, sport: number): Buffer {
  const ecn = inn[1]! & 3;
  const tos = (inn[1]! & ~3) | (ecn === 3 ? 2 : ecn);
  const o = { src: DIP, dst: rip, ttl: inn[8]!, tos, id, flagsFrag: inn.readUInt16BE(6) & 0x4000 };
  if (type === 'gue') return ipv4(o).udp({ sport, dport: GUE_PORT, noChecksum: true }).payload(Buffer.concat([hex('00040000'), inn])).build();
  return ipv4(o).raw(47).payload(Buffer.concat([hex('00000800'), inn])).build();
}

describe('tunnel encapsulation: GUE and GRE in the fast path and the TUN\'s way out (BPF_PROG_TEST_RUN)', { skip: needsRoot }, () => {
  let home = -1;
  let maps: FastPathMaps;
  let fast = -1, out = -1, outLink = -1;
  let tun: TunQueue | null = null;
  let flows: MapOps, slots: MapOps, stats: MapOps;
  const ifindex: Record<string, number> = {};
  let fpbMac = Buffer.alloc(6);

  before(() => {
    run(['ip', 'netns', 'add', NS]);
    const ip = (...a: string[]) => run(['ip', '-n', NS, ...a]);
    ip('link', 'add', 'fpa', 'type', 'veth', 'peer', 'name', 'fpb');
    ip('link', 'set', 'fpa', 'address', IN_MAC.replace(/(..)(?!$)/g, '$1:')); // PACKET_HOST frames
    ip('addr', 'add', '198.51.100.1/24', 'dev', 'fpa');
    ip('addr', 'add', `${DIP}/24`, 'dev', 'fpb');
    for (const d of ['lo', 'fpa', 'fpb']) ip('link', 'set', d, 'up');
    run(['ip', 'netns', 'exec', NS, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    ip('neigh', 'replace', RIP, 'lladdr', RIP_MAC.replace(/(..)(?!$)/g, '$1:'), 'dev', 'fpb', 'nud', 'permanent');
    ip('neigh', 'replace', CLIENT, 'lladdr', CLIENT_MAC.replace(/(..)(?!$)/g, '$1:'), 'dev', 'fpa', 'nud', 'permanent');
    ip('neigh', 'replace', GW, 'lladdr', GW_MAC.replace(/(..)(?!$)/g, '$1:'), 'dev', 'fpb', 'nud', 'permanent');
    ip('route', 'add', '192.0.2.192/26', 'via', GW);
    home = openSync('/proc/self/ns/net', 'r');
    const target = openSync(`/run/netns/${NS}`, 'r');
    try {
      assert.equal(setns(target, CLONE_NEWNET), 0, 'setns into the test namespace');
    } finally {
      closeSync(target);
    }
    tun = openTunQueue('t1', { multiQueue: false, offload: true }); // GSO packets may be written
    ip('link', 'set', 't1', 'up');
    for (const d of ['fpa', 'fpb', 't1']) {
      const j = JSON.parse(run(['ip', '-n', NS, '-j', 'link', 'show', d])) as { ifindex: number; address?: string }[];
      ifindex[d] = j[0]!.ifindex;
      if (d === 'fpb') fpbMac = Buffer.from(j[0]!.address!.replace(/:/g, ''), 'hex');
    }
    ({ maps, progFd: fast } = loadFastPath(64));
    // as installTunOut does, by ifindex (this process's /sys is the first namespace's)
    out = loadTunOut(maps.flowsFd);
    outLink = attachTcxIngress(out, ifindex['t1']!);
    flows = new MapOps(maps.flowsFd);
    slots = new MapOps(maps.slotsFd);
    for (const id of progInfo(out).mapIds) {
      const m = fdById('map', id);
      if (m !== null && mapInfo(m).name === 'ulvs_tun_stats') stats = new MapOps(m);
      else if (m !== null) closeFd(m);
    }
    assert.ok(stats, 'the way out\'s counters');
  });
  after(() => {
    for (const fd of [outLink, fast, out, maps?.flowsFd ?? -1, maps?.slotsFd ?? -1]) if (fd >= 0) closeFd(fd);
    if (tun) sys.close(tun.fd);
    if (home >= 0) {
      setns(home, CLONE_NEWNET);
      closeSync(home);
    }
    run(['ip', 'netns', 'del', NS]);
  });

  /** A tunnelled connection's entry: client:sport -> VIP:80 goes to rip in a `type` tunnel. */
  const tunFlow = (sport: number, rip: string, dir: number, type: number, port: number, slot: number) => {
    const k = Buffer.alloc(FLOW_KEY_SIZE), v = Buffer.alloc(FLOW_VALUE_SIZE);
    writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), sport, 80, 6);
    writeValue(v, 0, parseIPv4(rip), port, dir, slot, type);
    flows.update(k, v);
  };
  const frame = (ip: Buffer, dst = hex(IN_MAC), src = hex(CLIENT_MAC)) => Buffer.concat([dst, src, hex('0800'), ip]);
  /** The fast path at fpa's ingress (an Ethernet frame). */
  const runFast = (ip: Buffer) => {
    const ctx = Buffer.alloc(44);
    ctx.writeUInt32LE(ifindex['fpa']!, 36); // ingress_ifindex
    ctx.writeUInt32LE(ifindex['fpa']!, 40); // ifindex
    return testRun(fast, frame(ip), ctx);
  };
  /** The way out: `ip` written into t1 behind a virtio_net_hdr (`vnet`: none, as the worker
   *  writes a packet without offloads); resolves to the tunnel frame fpb sent (read at fpa), or
   *  null when none came within `seconds`. */
  const runOut = async (ip: Buffer, seconds = 2): Promise<Buffer | null> => (await runOutFrames(ip, 1, seconds))[0] ?? null;
  /** As runOut, up to `frames` frames (a GSO packet leaves as several). */
  const runOutFrames = async (ip: Buffer, frames: number, seconds = 2, vnet = Buffer.alloc(10), at = 'fpa', protos = '4,17,47'): Promise<Buffer[]> => {
    const cap = spawn('ip', ['netns', 'exec', NS, '/usr/bin/python3', '-c', CAPTURE, at, String(seconds), String(frames), protos], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    const ready = new Promise<void>((resolve, reject) => {
      cap.stdout.on('data', (d: Buffer) => {
        text += d.toString();
        if (text.startsWith('ready\n')) resolve();
      });
      cap.on('exit', (c) => reject(new Error(`capture exited ${c}: ${text}`)));
    });
    const done = new Promise<void>((resolve) => cap.on('exit', () => resolve()));
    await ready;
    const w = Buffer.concat([vnet, ip]);
    assert.equal(sys.write(tun!.fd, w, w.length), w.length, 'written into the TUN');
    await done;
    const lines = text.trim().split('\n');
    assert.equal(lines.at(-1), 'end', text);
    return lines.slice(1, -1).map(hex);
  };
  const slotIn = (i: number) => {
    const k = Buffer.alloc(4), v = Buffer.alloc(SLOT_SIZE);
    k.writeUInt32LE(i);
    slots.lookup(k, v);
    return { pkts: Number(v.readBigUInt64LE(0)), bytes: Number(v.readBigUInt64LE(16)) };
  };
  const stat = (i: number) => {
    const k = Buffer.alloc(4), v = Buffer.alloc(8);
    k.writeUInt32LE(i);
    return stats.lookup(k, v) ? Number(v.readBigUInt64LE(0)) : 0;
  };

  /** Check an encapsulated output against IPVS's packet; returns GUE's source port (or 0). */
  const checkOuter = (type: 'gue' | 'gre', rip: string, got: Buffer, inn: Buffer): number => {
    const id = got.readUInt16BE(4);
    const sport = type === 'gue' ? got.readUInt16BE(20) : 0;
    if (type === 'gue') assert.ok(sport >= SPORT_MIN && sport < SPORT_MAX, `GUE source port ${sport} in the local port range`);
    assert.equal(got.toString('hex'), expectedOuter(type, rip, inn, id, sport).toString('hex'));
    assert.equal(slowSum(got.subarray(0, 20)), 0xffff, 'outer IPv4 checksum (slow reference)');
    assert.deepEqual(packetChecksumsOk(got), { ip: true, l4: true }, 'outer: UDP checksum 0 is "none"');
    assert.deepEqual(packetChecksumsOk(got.subarray(type === 'gue' ? 32 : 24)), { ip: true, l4: true }, 'inner checksums after TTL - 1');
    return sport;
  };

  const types = [
    ['gue', TUN_TYPE.TUN_GUE, GUE_PORT],
    ['gre', TUN_TYPE.TUN_GRE, 0],
  ] as const;
  let sport = 41000;
  for (const [name, type, port] of types)
    for (const [where, rip, nextMac] of [
      ['on-link', RIP, RIP_MAC],
      ['behind the gateway 192.0.2.9', FAR, GW_MAC],
    ] as const) {
      test(`${name.toUpperCase()}, real server ${where}: fast path (FLOW_TUN) -> IPVS's ${name} packet in a frame to the next hop's MAC, counted; stable source port`, () => {
        const sp = sport++;
        tunFlow(sp, rip, FLOW_DIR.FLOW_TUN, type, port, 5);
        const before = slotIn(5);
        const r = runFast(inner(sp, 64));
        assert.equal(r.retval, TC_ACT_REDIRECT);
        assert.equal(r.out.subarray(0, 14).toString('hex'), `${nextMac}${fpbMac.toString('hex')}0800`, 'Ethernet: to the next hop from fpb');
        const p1 = checkOuter(name, rip, r.out.subarray(14), inner(sp, 63));
        assert.equal(slotIn(5).pkts - before.pkts, 1);
        assert.equal(slotIn(5).bytes - before.bytes, inner(sp, 64).length, 'inner IP bytes, as IPVS counts them');
        const again = runFast(inner(sp, 64));
        assert.equal(checkOuter(name, rip, again.out.subarray(14), inner(sp, 63)), p1, 'one flow, one source port');
      });

      test(`${name.toUpperCase()}, real server ${where}: the TUN's way out (FLOW_TUN_ROUTE) -> the same packet, sent out of fpb to the next hop's MAC; counted`, async () => {
        const sp = sport++;
        tunFlow(sp, rip, FLOW_DIR.FLOW_TUN_ROUTE, type, port, 0);
        const before = stat(TUN_OUT_COUNTER.TUN_OUT_ENCAP);
        const f = await runOut(inner(sp, 64));
        assert.ok(f, 'a tunnel frame left fpb');
        assert.equal(f.subarray(0, 14).toString('hex'), `${nextMac}${fpbMac.toString('hex')}0800`, 'Ethernet (the neighbour layer\'s): to the next hop from fpb');
        checkOuter(name, rip, f.subarray(14), inner(sp, 63));
        assert.equal(stat(TUN_OUT_COUNTER.TUN_OUT_ENCAP) - before, 1);
      });
    }

  test('ECN CE becomes ECT(0) outside, no DF copied when the inner packet has none (GUE, both programs)', async () => {
    tunFlow(41100, RIP, FLOW_DIR.FLOW_TUN, TUN_TYPE.TUN_GUE, GUE_PORT, 5);
    const o = { tos: 0x0b, df: false };
    const f = runFast(inner(41100, 64, o));
    assert.equal(f.out[14 + 1], 0x0a);
    assert.equal(f.out.readUInt16BE(14 + 6), 0);
    checkOuter('gue', RIP, f.out.subarray(14), inner(41100, 63, o));
    tunFlow(41100, RIP, FLOW_DIR.FLOW_TUN_ROUTE, TUN_TYPE.TUN_GUE, GUE_PORT, 0);
    const t = await runOut(inner(41100, 64, o));
    assert.ok(t);
    checkOuter('gue', RIP, t.subarray(14), inner(41100, 63, o));
  });

  // tun_overhead: IPIP 20, GRE 24, GUE 32 on fpb's 1500-byte MTU
  for (const [name, type, port, fits, tooBig] of [
    ['IPIP', TUN_TYPE.TUN_IPIP, 0, 1480, 1481],
    ['GRE', TUN_TYPE.TUN_GRE, 0, 1476, 1477],
    ['GUE', TUN_TYPE.TUN_GUE, GUE_PORT, 1468, 1469],
  ] as const)
    test(`${name}: ${fits} bytes + ${1500 - fits} of tunnel fit a 1500-byte link, ${tooBig} do not (fast path: to ulvsd untouched; way out: not sent, the client told MTU ${fits})`, async () => {
      const sp = sport++;
      tunFlow(sp, RIP, FLOW_DIR.FLOW_TUN, type, port, 5);
      assert.equal(runFast(inner(sp, 64, { size: fits })).retval, TC_ACT_REDIRECT);
      const big = inner(sp, 64, { size: tooBig });
      const r = runFast(big);
      assert.equal(r.retval, TCX_NEXT);
      assert.equal(r.out.toString('hex'), frame(big).toString('hex'));
      tunFlow(sp, RIP, FLOW_DIR.FLOW_TUN_ROUTE, type, port, 0);
      const sent = await runOut(inner(sp, 64, { size: fits }));
      assert.equal(sent?.length, 14 + 1500, 'a full-size frame');
      const before = stat(TUN_OUT_COUNTER.TUN_OUT_TOO_BIG);
      // the answer (tun_out's ICMP "fragmentation needed", DF set) leaves fpa for the client: read at fpb
      const [icmp] = await runOutFrames(big, 1, 2, Buffer.alloc(10), 'fpb', '1');
      assert.ok(icmp, 'an ICMP error to the client');
      assert.equal(icmp.readUInt16BE(14 + 20), 0x0304, 'destination unreachable, fragmentation needed');
      assert.equal(icmp.readUInt16BE(14 + 20 + 6), fits, 'next-hop MTU: the route\'s minus the tunnel overhead (tun_overhead)');
      assert.equal(stat(TUN_OUT_COUNTER.TUN_OUT_TOO_BIG) - before, 1);
    });

  test('no route to the real server: fast path passes the packet on, the way out drops and counts it', async () => {
    tunFlow(41200, '192.0.2.250', FLOW_DIR.FLOW_TUN, TUN_TYPE.TUN_GRE, 0, 5);
    run(['ip', '-n', NS, 'route', 'add', 'unreachable', '192.0.2.250/32']);
    try {
      const p = inner(41200, 64);
      assert.equal(runFast(p).retval, TCX_NEXT);
      tunFlow(41200, '192.0.2.250', FLOW_DIR.FLOW_TUN_ROUTE, TUN_TYPE.TUN_GRE, 0, 0);
      const before = stat(TUN_OUT_COUNTER.TUN_OUT_NO_ROUTE);
      assert.equal(await runOut(p, 0.5), null);
      assert.equal(stat(TUN_OUT_COUNTER.TUN_OUT_NO_ROUTE) - before, 1);
    } finally {
      run(['ip', '-n', NS, 'route', 'del', 'unreachable', '192.0.2.250/32']);
    }
  });

  test('control: direct routing to a server behind the gateway is still not sent (fast path: untouched; way out: dropped)', async () => {
    const k = Buffer.alloc(FLOW_KEY_SIZE), v = Buffer.alloc(FLOW_VALUE_SIZE);
    writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), 41300, 80, 6);
    writeValue(v, 0, parseIPv4(FAR), 0, FLOW_DIR.FLOW_DR, 5);
    flows.update(k, v);
    assert.equal(runFast(inner(41300, 64)).retval, TCX_NEXT);
    writeValue(v, 0, parseIPv4(FAR), 0, FLOW_DIR.FLOW_DR_ROUTE, 0);
    flows.update(k, v);
    const before = stat(TUN_OUT_COUNTER.TUN_OUT_NO_ROUTE);
    assert.equal(await runOut(inner(41300, 64), 0.5), null);
    assert.equal(stat(TUN_OUT_COUNTER.TUN_OUT_NO_ROUTE) - before, 1);
  });

  // A GSO super-packet written into the TUN (as ulvsd writes bulk TCP back: virtio_net_hdr with
  // NEEDS_CSUM and GSO_TCPV4) is encapsulated whole, its segment size reduced by the overhead
  // (bpf_skb_adjust_room without FIXED_GSO, so the segments still fit the MTU); fpb, told to
  // take no GSO packet (gso_max_size 1500), segments it in software (skb_udp_tunnel_segment,
  // gre_gso_segment), which needs the inner headers' offsets right: every segment must be a
  // complete tunnel packet.
  for (const [name, type, port, overhead] of [
    ['GUE', TUN_TYPE.TUN_GUE, GUE_PORT, 32],
    ['GRE', TUN_TYPE.TUN_GRE, 0, 24],
  ] as const)
    test(`${name}: a 3000-byte GSO packet (MSS 1000) through the way out leaves as 4 complete ${name} packets of MSS 1000 - ${overhead} when the link segments in software`, async () => {
      const sp = sport++, mss = 1000, ack = 2000, seg = mss - overhead, n = Math.ceil((3 * mss) / seg);
      tunFlow(sp, RIP, FLOW_DIR.FLOW_TUN_ROUTE, type, port, 0);
      const payload = Buffer.from(Array.from({ length: 3 * mss }, (_, i) => (i * 7) & 255));
      const segment = (i: number, ttl: number, id: number) =>
        ipv4({ src: CLIENT, dst: VIP, ttl, tos: 0, flagsFrag: 0x4000, id }).tcp({ sport: sp, dport: 80, flags: i === n - 1 ? 'PA' : 'A', seq: 1000 + i * seg, ack }).payload(payload.subarray(i * seg, (i + 1) * seg)).build();
      const whole = ipv4({ src: CLIENT, dst: VIP, ttl: 64, tos: 0, flagsFrag: 0x4000, id: 0x100 }).tcp({ sport: sp, dport: 80, flags: 'PA', seq: 1000, ack }).payload(payload).build();
      // NEEDS_CSUM: the TCP checksum field holds the pseudo-header sum (as a sending socket leaves it)
      whole.writeUInt16BE(pseudoSum(whole), 36);
      const vnet = Buffer.alloc(10);
      vnet[0] = 1; // VIRTIO_NET_HDR_F_NEEDS_CSUM
      vnet[1] = 1; // VIRTIO_NET_HDR_GSO_TCPV4
      vnet.writeUInt16LE(40, 2); // hdr_len
      vnet.writeUInt16LE(mss, 4); // gso_size
      vnet.writeUInt16LE(20, 6); // csum_start
      vnet.writeUInt16LE(16, 8); // csum_offset
      run(['ip', '-n', NS, 'link', 'set', 'fpb', 'gso_max_segs', '1', 'gso_max_size', '1500']);
      try {
        const frames = await runOutFrames(whole, n + 1, 2, vnet);
        assert.equal(frames.length, n, `${n} segments, nothing more`);
        for (const [i, f] of frames.entries()) {
          const outer = f.subarray(14);
          assert.equal(outer.length, overhead + 40 + Math.min(seg, 3 * mss - i * seg), `segment ${i}: its share in the tunnel`);
          assert.ok(outer.length <= 1500, 'fits the link');
          assert.equal(outer.readUInt16BE(2), outer.length, 'outer total length rewritten per segment');
          const got = outer.subarray(overhead);
          const want = segment(i, 63, got.readUInt16BE(4));
          // the inner TCP checksum is left partial (CHECKSUM_PARTIAL through veth) or complete
          const c = got.readUInt16BE(36);
          assert.ok(c === want.readUInt16BE(36) || c === pseudoSum(want), `segment ${i}: TCP checksum ${c.toString(16)} complete or the pseudo-header sum`);
          got.writeUInt16BE(want.readUInt16BE(36), 36);
          checkOuter(name === 'GUE' ? 'gue' : 'gre', RIP, outer, want);
        }
      } finally {
        run(['ip', '-n', NS, 'link', 'set', 'fpb', 'gso_max_segs', '65535', 'gso_max_size', '65536']);
      }
    });

  test('the worker writes a tunnelled connection\'s type and GUE port, from its real server, into both its entries, and again after the server is edited', () => {
    const conns = new ConnTable({ capacity: 16, seed: 1 });
    const TUN = (2 << FWD_SHIFT) | ConnFlag.NOOUTPUT;
    const c = conns.insert(6, parseIPv4(CLIENT), 42300, parseIPv4(VIP), 80, parseIPv4(RIP), 80, 7, TUN, 100, 0);
    const asked: number[] = [];
    let server: { tunType: number; tunPort: number } = { tunType: TUN_TYPE.TUN_GUE, tunPort: GUE_PORT };
    const off = new Offloader(conns, { flowsFd: maps.flowsFd, slotsFd: maps.slotsFd, slots: maps.slots, slotBase: 6, slotCount: 1 }, { byId: (id) => (asked.push(id), server) });
    const k = Buffer.alloc(FLOW_KEY_SIZE), v = Buffer.alloc(FLOW_VALUE_SIZE);
    writeKey(k, 0, parseIPv4(CLIENT), parseIPv4(VIP), 42300, 80, 6);
    const entry = () => (flows.lookup(k, v) ? [v[FLOW_VALUE.off.dir], v[FLOW_VALUE.off.tun_type], v.readUInt16BE(FLOW_VALUE.off.port)] : null);
    try {
      off.route(c);
      off.flush();
      assert.deepEqual(entry(), [FLOW_DIR.FLOW_TUN_ROUTE, TUN_TYPE.TUN_GUE, GUE_PORT]);
      assert.equal(off.offer(c), true);
      off.flush();
      assert.deepEqual(entry(), [FLOW_DIR.FLOW_TUN, TUN_TYPE.TUN_GUE, GUE_PORT]);
      assert.ok(asked.every((id) => id === 7) && asked.length > 0, 'asked for the connection\'s own server');
      off.withdraw(c, new OffloadReport());
      // the server is edited to GRE (ipvsadm -e): after the change its connections follow
      server = { tunType: TUN_TYPE.TUN_GRE, tunPort: 0 };
      assert.equal(off.retunnel(), 1);
      off.flush();
      assert.deepEqual(entry(), [FLOW_DIR.FLOW_TUN_ROUTE, TUN_TYPE.TUN_GRE, 0]);
      off.unroute(c);
      conns.remove(c);
      off.flush();
      off.flush();
      assert.equal(entry(), null);
    } finally {
      off.close();
    }
  });
});
