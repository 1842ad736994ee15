/**
 * What direct routing and IPIP tunnelling put on the wire (issue 12), byte for byte: frames
 * captured as they enter the director from the client (tcpdump on the director's port `pub1`,
 * incoming) are matched one to one with the frames real server 1 receives (tcpdump on its eth0,
 * incoming, before its decapsulation program), by IP id, TCP sequence and acknowledgement
 * numbers, flags and length, and each server frame must equal the frame built from the client's
 * by a slow reference (checksums by test/support/slow-checksum.ts):
 *
 *   DR:  the client's frame with destination MAC := real server's, source MAC := director's
 *        (br0, the interface of its route to the server), TTL - 1, IP header checksum
 *        recomputed; every other byte unchanged;
 *   TUN: Ethernet (the same MACs) + an outer IPv4 header (version 4, IHL 5, TOS = the inner one
 *        ECN-encapsulated, length = inner + 20, id: the director's choice, DF copied from the
 *        inner header, TTL = the inner TTL after its decrement, protocol 4, source = the
 *        director's address on that link (DIP), destination = RIP, checksum recomputed) + the
 *        client's IP packet with TTL - 1 and its checksum recomputed, every other byte unchanged.
 *
 * The traffic: a 3 MB upload (one connection, DF set, ECN negotiated so its data segments carry
 * ECT(0)) and two requests sent without DF (the client's ip_no_pmtu_disc=1), so DF is seen both
 * set and clear. Both paths of the director are covered and told apart: ulvsd runs with
 * --fast-path-after 5, so a connection's SYN, its first established packets (at least 5) and
 * everything from its FIN on go through the TUN and the engine (the way-out program sends them),
 * the rest through the NIC fast path; ulvsd's `reads` counter says how many packets of the
 * upload it read, which splits the upload's frames in capture order. The test reports both counts.
 *
 * Offloads: the client sends without TSO/GSO and with checksums computed in software (ethtool
 * -K eth0 tx off tso off gso off), and GRO is off on every receiving interface on the way, so
 * each frame is one MTU-sized packet and captures match one to one; every frame is checked to
 * be no longer than the MTU (a super-packet would fail the test, not be compared wrongly).
 *
 * Controls (in the test): the comparison is repeated with a deliberately wrong expectation,
 * TTL - 2, the checksum not recomputed, the client's own MACs, and for TUN the outer DF cleared
 * or the outer TTL taken before the decrement, each of which must mismatch on the captured frames.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { needsRoot } from '../support/root.js';
import { DrTunBed, RS, rulesFor, V, type Method } from '../support/dr-tun-bed.js';
import { dumpCounter } from '../support/one-way.js';
import { Capture, type PcapRecord } from '../support/pcap.js';
import { slowChecksum } from '../support/slow-checksum.js';
import { run } from '../../src/lab/shell.js';
import { LAB } from '../../src/lab/testbed.js';
import { parseIPv4 } from '../../src/wire/addr.js';

const AFTER = 5;
/** tcpdump and ethtool (apt; .ci/run installs them) */
const toolsMissing = ['/usr/bin/tcpdump', '/usr/sbin/tcpdump'].some(existsSync) && ['/usr/sbin/ethtool', '/sbin/ethtool'].some(existsSync) ? false : 'needs tcpdump and ethtool (apt)';
const ETH = 14;
const u16 = (b: Uint8Array, o: number) => (b[o]! << 8) | b[o + 1]!;
const u32 = (b: Uint8Array, o: number) => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const addrBytes = (a: string) => {
  const n = parseIPv4(a);
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
};
const mac = (ns: string, dev: string) => Uint8Array.from(((JSON.parse(run(['ip', '-n', ns, '-j', 'link', 'show', dev])) as { address: string }[])[0]!.address.split(':')).map((h) => parseInt(h, 16)));

/** The IPv4 packet of a frame, cut to its total length (Ethernet padding dropped). */
const ipOf = (frame: Uint8Array, at = ETH) => frame.subarray(at, at + u16(frame, at + 2));

/** Match key of a client IPv4/TCP packet: IP id, TCP seq, ack, flags, length. */
function keyOf(ip: Uint8Array): string {
  const t = (ip[0]! & 15) * 4;
  return `${u16(ip, 4)}/${u32(ip, t + 4)}/${u32(ip, t + 8)}/${ip[t + 13]}/${u16(ip, 2)}`;
}

/** The client's packet as the real server must get it: TTL - ttlDelta, header checksum recomputed (or left). */
function forwarded(ip: Uint8Array, o: { ttlDelta: number; recompute: boolean }): Uint8Array {
  const p = ip.slice();
  p[8] = p[8]! - o.ttlDelta;
  if (o.recompute) {
    p[10] = 0;
    p[11] = 0;
    const c = slowChecksum(p.subarray(0, (p[0]! & 15) * 4));
    p[10] = c >> 8;
    p[11] = c & 255;
  }
  return p;
}

interface Expect {
  dst: Uint8Array;
  src: Uint8Array;
  ttlDelta: number;
  recompute: boolean;
  /** TUN only */
  outer?: { id: number; df: 'copy' | 'clear'; ttl: 'after' | 'before'; saddr: string; daddr: string };
}

/** The frame real server 1 must receive for the client's frame `client` (the reference). */
function expectedFrame(client: Uint8Array, e: Expect): Uint8Array {
  const inner = forwarded(ipOf(client), e);
  const eth = [...e.dst, ...e.src, 0x08, 0x00];
  if (!e.outer) return Uint8Array.from([...eth, ...inner]);
  const tos = inner[1]!;
  const ecn = tos & 3;
  const len = inner.length + 20;
  const df = e.outer.df === 'copy' ? inner[6]! & 0x40 : 0;
  const ttl = e.outer.ttl === 'after' ? inner[8]! : inner[8]! + 1;
  const o = [0x45, (tos & ~3) | (ecn === 3 ? 2 : ecn), len >> 8, len & 255, e.outer.id >> 8, e.outer.id & 255, df, 0, ttl, 4, 0, 0, ...addrBytes(e.outer.saddr), ...addrBytes(e.outer.daddr)];
  const c = slowChecksum(Uint8Array.from(o));
  o[10] = c >> 8;
  o[11] = c & 255;
  return Uint8Array.from([...eth, ...o, ...inner]);
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** The client's TCP packet inside a server frame (after the outer header for TUN). */
const clientPacketIn = (frame: Uint8Array, method: Method) => ipOf(frame, method === 'tun' ? ETH + 20 : ETH);

for (const method of ['dr', 'tun'] as Method[]) {
  describe(`${method === 'dr' ? 'direct routing' : 'IPIP tunnelling'} on the wire: server frames against client frames, engine path and fast path`, { skip: needsRoot || toolsMissing }, () => {
    let t: DrTunBed;
    let dir: string;
    before(async () => {
      t = await DrTunBed.start({ method, vip: 'lo', rules: rulesFor('rr', [{ i: 0, flag: method === 'dr' ? '-g' : '-i' }]), ulvsdArgs: ['--fast-path-after', String(AFTER)] });
      dir = mkdtempSync(join(tmpdir(), 'h3-wire-'));
      const b = t.bed;
      const inNs = (ns: string, ...argv: string[]) => run(['ip', 'netns', 'exec', ns, ...argv]);
      inNs(b.clients[0]!, 'ethtool', '-K', 'eth0', 'tx', 'off', 'tso', 'off', 'gso', 'off');
      for (const dev of ['pub1', 'rsp1', 'rsp2', 'rsp3', 'gwrs', 'gwpub']) inNs(b.director, 'ethtool', '-K', dev, 'gro', 'off');
      inNs(b.realServers[0]!, 'ethtool', '-K', 'eth0', 'gro', 'off');
      inNs(b.clients[0]!, 'sysctl', '-qw', 'net.ipv4.tcp_ecn=1');
    });
    after(async () => {
      await t?.stop();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('every frame at the real server is the client frame with exactly the expected changes', async (ctx) => {
      const b = t.bed;
      const client = b.clients[0]!;
      const rs = b.realServers[0]!;
      const fromClient = await Capture.start(b.director, 'pub1', join(dir, 'client.pcap'), `tcp and dst host ${V} and dst port 80`);
      const atServer = await Capture.start(rs, 'eth0', join(dir, 'server.pcap'), method === 'dr' ? `tcp and dst host ${V} and dst port 80` : 'ip proto 4');
      let clientFrames: PcapRecord[];
      let serverFrames: PcapRecord[];
      let reads: number;
      let uploadPort: number;
      try {
        const d0 = await t.db.dump();
        const [post] = t.db.client(['--post-bytes', String(3e6), '--timeout', '20000']);
        assert.equal(post?.['ok'], true, JSON.stringify(post));
        await new Promise((r) => setTimeout(r, 500)); // the connection's last packets read and counted
        reads = dumpCounter(await t.db.dump(), 'reads') - dumpCounter(d0, 'reads');
        run(['ip', 'netns', 'exec', client, 'sysctl', '-qw', 'net.ipv4.ip_no_pmtu_disc=1']);
        try {
          const got = t.db.client(['--requests', '2', '--timeout', '5000']);
          assert.equal(got.filter((x) => x['ok']).length, 2, JSON.stringify(got));
        } finally {
          run(['ip', 'netns', 'exec', client, 'sysctl', '-qw', 'net.ipv4.ip_no_pmtu_disc=0']);
        }
        await new Promise((r) => setTimeout(r, 500));
      } finally {
        [clientFrames, serverFrames] = await Promise.all([fromClient.stop(), atServer.stop()]);
      }
      assert.ok(clientFrames.length > 2000, `client frames: ${clientFrames.length}`);
      const mtu = b.rsMtu;
      for (const f of [...clientFrames, ...serverFrames]) {
        assert.equal(f.data.length, f.wireLen, 'captured whole');
        assert.ok(f.data.length <= ETH + mtu, `a frame of ${f.data.length} bytes: no GRO/GSO super-packet`);
      }
      // one to one
      const byKey = new Map<string, PcapRecord>();
      for (const f of clientFrames) {
        const k = keyOf(ipOf(f.data));
        assert.ok(!byKey.has(k), `two client frames with key ${k}`);
        byKey.set(k, f);
      }
      const pairs = serverFrames.map((s) => {
        const c = byKey.get(keyOf(clientPacketIn(s.data, method)));
        assert.ok(c, `a server frame no client frame explains: ${Buffer.from(s.data.subarray(0, 60)).toString('hex')}`);
        byKey.delete(keyOf(clientPacketIn(s.data, method)));
        return { client: c.data, server: s.data };
      });
      assert.equal(byKey.size, 0, `client frames that never reached the server: ${byKey.size}`);

      const e: Expect = { dst: mac(rs, 'eth0'), src: mac(b.director, 'br0'), ttlDelta: 1, recompute: true };
      const outer = (server: Uint8Array) => ({ id: u16(server, ETH + 4), df: 'copy' as const, ttl: 'after' as const, saddr: LAB.DIP, daddr: RS[0]! });
      const expectFor = (p: { client: Uint8Array; server: Uint8Array }, x: Partial<Expect> = {}, o: object = {}) => expectedFrame(p.client, { ...e, ...(method === 'tun' ? { outer: { ...outer(p.server), ...o } } : {}), ...x });
      for (const p of pairs) {
        const want = expectFor(p);
        const got = p.server.subarray(0, want.length);
        assert.ok(same(want, got) && p.server.length >= want.length, `frame differs from the reference:\n want ${Buffer.from(want.subarray(0, 80)).toString('hex')}\n got  ${Buffer.from(got.subarray(0, 80)).toString('hex')}`);
      }

      // which path each frame took: the upload's frames in capture order
      uploadPort = u16(ipOf(pairs[0]!.client), 20); // the first frame captured is the upload's SYN
      const upload = pairs.filter((p) => u16(ipOf(p.client), 20) === uploadPort).map((p) => ipOf(p.client));
      const flags = (ip: Uint8Array) => ip[(ip[0]! & 15) * 4 + 13]!;
      const synAt = upload.findIndex((ip) => (flags(ip) & 0x02) !== 0);
      const finAt = upload.findIndex((ip) => (flags(ip) & 0x05) !== 0); // FIN or RST
      assert.equal(synAt, 0, 'the upload begins with its SYN');
      assert.ok(finAt > 0);
      const tail = upload.length - finAt;
      const firstEstablished = reads - 1 - tail; // through the engine before the fast path took it
      ctx.diagnostic(`upload: ${upload.length} frames; engine path (TUN, way-out program): SYN + first ${firstEstablished} established + ${tail} from the FIN on = ${reads}; kernel fast path: ${upload.length - reads}`);
      ctx.diagnostic(`client ports: ${[...new Set(clientFrames.map((f) => u16(ipOf(f.data), 20)))].join(' ')}`);
      ctx.diagnostic(`all frames: ${pairs.length}; DF clear in ${pairs.filter((p) => (ipOf(p.client)[6]! & 0x40) === 0).length}; ECT(0) in ${pairs.filter((p) => (ipOf(p.client)[1]! & 3) === 2).length}`);
      assert.ok(firstEstablished >= AFTER, `at least --fast-path-after (${AFTER}) established packets went through the engine: ${firstEstablished}`);
      assert.ok(upload.length - reads > 1000, `most of the upload went through the kernel fast path: ${upload.length - reads} of ${upload.length}`);
      assert.ok(pairs.some((p) => (ipOf(p.client)[6]! & 0x40) === 0) && pairs.some((p) => (ipOf(p.client)[6]! & 0x40) !== 0), 'DF seen clear and set');
      assert.ok(pairs.some((p) => (ipOf(p.client)[1]! & 3) === 2), 'ECT(0) seen');

      // the director counted every request packet, none the other way
      const st = t.stats()[RS[0]!]!;
      assert.equal(st.outPkts, 0);
      assert.equal(st.inPkts, pairs.length, 'IPVS counted every request packet (engine and fast path) once');

      // controls: a wrong expectation mismatches
      const bad = (what: string, f: (p: { client: Uint8Array; server: Uint8Array }) => Uint8Array, only = (_: { client: Uint8Array }) => true) => {
        const subjects = pairs.filter(only);
        assert.ok(subjects.length > 0, `control ${what}: no frame to try`);
        for (const p of subjects) assert.ok(!same(f(p), p.server.subarray(0, f(p).length)), `control ${what}: a wrong expectation matched`);
      };
      bad('TTL - 2', (p) => expectFor(p, { ttlDelta: 2 }));
      bad('checksum not recomputed', (p) => expectFor(p, { recompute: false }));
      bad("the client frame's MACs", (p) => expectFor(p, { dst: p.client.subarray(0, 6), src: p.client.subarray(6, 12) }));
      if (method === 'tun') {
        bad('outer DF cleared', (p) => expectFor(p, {}, { df: 'clear' }), (p) => (ipOf(p.client)[6]! & 0x40) !== 0);
        bad('outer TTL before the decrement', (p) => expectFor(p, {}, { ttl: 'before' }));
      }
    });
  });
}
