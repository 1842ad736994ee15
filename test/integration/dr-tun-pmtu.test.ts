/**
 * Path MTU discovery through direct routing and tunnelling, end to end (tun_out.bpf.c):
 *
 * 1. The path from the director to the real servers carries 1280 bytes (the real-server network
 *    has MTU 1280) while the client's is 1500, and the real servers advertise an MSS of 1460
 *    (route advmss, as a server whose own link is larger would): the client's full-size DF
 *    segments do not fit. The director answers them with ICMP "fragmentation needed" carrying
 *    1280 (DR) or 1260 (TUN: 1280 minus the outer header), the client lowers its segment size,
 *    and a large upload completes intact. A download is checked too. The client counts the
 *    errors it receives with the expected MTU (nft). Control (run first, before the client
 *    has learnt anything): the client drops incoming "fragmentation needed" and the upload
 *    stalls, while the director's counter shows it sent them: without the ICMP the transfer
 *    cannot complete, so the check catches its absence. The director's port towards the client
 *    computes checksums in software (ethtool tx off), so the errors made from the client's
 *    offloaded segments (CHECKSUM_PARTIAL) get that checksum completed over their quote
 *    (tun_out.bpf.c too_big): with the quote's transport checksum field left as it was, the
 *    client drops them as corrupt (InCsumErrors) and the upload stalls (tried by hand with
 *    such an object: both transfer tests then fail).
 * 2. A DR real server's replies go directly to the client, whose path carries only 1280 (client
 *    link and the director's port towards it, the client advertising 1460). The router on that
 *    path (here the director's kernel itself, the real servers' gateway) sends "fragmentation
 *    needed" to the replies' source, the VIP; ulvs passes it to the real server (engine:
 *    ip_vs_in_icmp; tun_out: to RIP like the connection's requests), which then sends smaller
 *    segments, and a large download completes. Control: the real server drops incoming
 *    "fragmentation needed" and the download stalls.
 *
 * Every name starts with h2-; the beds are removed in `after`, also on failure.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { nftMissing } from '../support/one-way.js';
import { downloadAndUpload } from '../support/transfer.js';
import { wayOutCounters } from '../support/way-out-stats.js';

const ULVS = fileURLToPath(new URL('../../../bin/ulvs', import.meta.url)); // from dist/test/integration
const V = LAB.VIP;
const RS = LAB.realServer(0);
const prefix = () => `h2-${randomBytes(2).toString('hex')}`;
const skip = needsRoot || nftMissing;

/** A real server's DR set-up: the VIP on lo (/32), ARP for it neither answered nor used. */
function drServer(ns: string): void {
  for (const k of ['all', 'eth0', 'lo']) {
    run(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.conf.${k}.arp_ignore=1`]);
    run(['ip', 'netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.conf.${k}.arp_announce=2`]);
  }
  run(['ip', '-n', ns, 'addr', 'add', `${V}/32`, 'dev', 'lo']);
}

/** nft in namespace `ns`: a table `h2pmtu` counting incoming "fragmentation needed" carrying
 *  `mtu`, and (drop) dropping every incoming "fragmentation needed". */
function fragNeededSeen(ns: string, mtu: number) {
  const nft = (script: string) => run(['ip', 'netns', 'exec', ns, 'nft', '-f', '-'], script);
  const rules = (drop: boolean) =>
    `table ip h2pmtu {\n chain in {\n  type filter hook input priority -10;\n  icmp type destination-unreachable icmp code frag-needed icmp mtu ${mtu} counter\n${drop ? '  icmp type destination-unreachable icmp code frag-needed drop\n' : ''} }\n}\n`;
  return {
    install(drop: boolean) {
      try {
        nft('delete table ip h2pmtu\n');
      } catch {
        /* none yet */
      }
      nft(rules(drop));
    },
    count(): number {
      return Number(/packets (\d+)/.exec(run(['ip', 'netns', 'exec', ns, 'nft', 'list', 'table', 'ip', 'h2pmtu']))?.[1] ?? 0);
    },
  };
}

/** ICMP messages namespace `ns` received with a bad checksum (/proc/net/snmp Icmp InCsumErrors). */
function icmpInCsumErrors(ns: string): number {
  const [names, values] = run(['ip', 'netns', 'exec', ns, 'cat', '/proc/net/snmp']).split('\n').filter((l) => l.startsWith('Icmp:')).map((l) => l.trim().split(/\s+/));
  return Number(values![names!.indexOf('InCsumErrors')]);
}

for (const method of ['DR', 'TUN'] as const) {
  const mtu = method === 'DR' ? 1280 : 1260;
  describe(`${method}: a 1280-byte path to the real servers, the client on 1500`, { skip }, () => {
    let bed: DirectorBed;
    let seen: ReturnType<typeof fragNeededSeen>;
    before(async () => {
      const flag = method === 'DR' ? '-g' : '-i';
      bed = await new DirectorBed({ rules: `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${RS}:80 ${flag} -w 1\n`, realServers: 1, httpPort: 80, rsMtu: 1280, prefix: prefix() }).start();
      const ns = bed.bed.realServers[0]!;
      if (method === 'DR') drServer(ns);
      else run(['ip', 'netns', 'exec', ns, process.execPath, ULVS, 'rs-setup', 'tun', '--decap', 'bpf', V]);
      // the server advertises 1460 though its link carries 1280 (as if its own link were larger)
      run(['ip', '-n', ns, 'route', 'replace', 'default', 'via', LAB.DIP, 'advmss', '1460']);
      seen = fragNeededSeen(bed.bed.clients[0]!, mtu);
      // the director's port to the client computes checksums in software: the errors made from
      // the client's offloaded (CHECKSUM_PARTIAL) segments get their checksum completed there
      run(['ip', 'netns', 'exec', bed.bed.director, 'ethtool', '-K', 'pub1', 'tx', 'off']);
    });
    after(async () => {
      if (method === 'TUN') {
        try {
          run(['ip', 'netns', 'exec', bed.bed.realServers[0]!, process.execPath, ULVS, 'rs-setup', '--remove']);
        } catch {
          /* the namespace goes with the bed */
        }
      }
      await bed?.stop();
    });

    test(`control: when the client drops "fragmentation needed", its upload stalls (the director sent them, MTU ${mtu})`, () => {
      seen.install(true);
      const before = wayOutCounters(bed);
      const [post] = bed.client(['--post-bytes', String(2e6), '--timeout', '4000'], 0, 30_000);
      const after = wayOutCounters(bed);
      assert.notEqual(post?.['ok'], true, `the upload must not complete: ${JSON.stringify(post)}`);
      assert.ok(after.TUN_OUT_FRAG_NEEDED > before.TUN_OUT_FRAG_NEEDED, JSON.stringify({ before, after }));
      assert.ok(seen.count() > 0, `the client received "fragmentation needed" with MTU ${mtu}`);
    });

    test(`20 MB down and up complete intact (SHA-256); the client got "fragmentation needed" with MTU ${mtu}`, (t) => {
      seen.install(false);
      run(['ip', '-n', bed.bed.clients[0]!, 'route', 'flush', 'cache']);
      const before = wayOutCounters(bed);
      downloadAndUpload(bed, 20e6, 30_000);
      const after = wayOutCounters(bed);
      t.diagnostic(`way-out counters: ${JSON.stringify(after)}`);
      assert.ok(seen.count() > 0, 'the client saw the error');
      assert.ok(after.TUN_OUT_FRAG_NEEDED > before.TUN_OUT_FRAG_NEEDED);
      assert.equal(after.TUN_OUT_TOO_BIG_NO_DF, 0, 'TCP sets DF');
      assert.equal(after.TUN_OUT_ICMP_UNSENT, 0);
      const learnt = run(['ip', '-n', bed.bed.clients[0]!, 'route', 'get', V]);
      assert.match(learnt, new RegExp(`mtu ${mtu}`), `the client's route to the VIP carries the learnt MTU: ${learnt}`);
      assert.equal(icmpInCsumErrors(bed.bed.clients[0]!), 0, 'no error arrived with a bad checksum');
    });
  });
}

describe('DR: the reply path to the client carries 1280; the error to the VIP reaches the real server', { skip }, () => {
  let bed: DirectorBed;
  let seen: ReturnType<typeof fragNeededSeen>;
  before(async () => {
    bed = await new DirectorBed({ rules: `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${RS}:80 -g -w 1\n`, realServers: 1, httpPort: 80, prefix: prefix() }).start();
    drServer(bed.bed.realServers[0]!);
    const client = bed.bed.clients[0]!;
    run(['ip', '-n', client, 'link', 'set', 'eth0', 'mtu', '1280']);
    run(['ip', '-n', bed.bed.director, 'link', 'set', 'pub1', 'mtu', '1280']);
    // the client advertises 1460 (its own link is smaller than that, as behind a tunnel)
    run(['ip', '-n', client, 'route', 'replace', LAB.VIP_NET, 'via', LAB.DIRECTOR_PUBLIC, 'advmss', '1460']);
    seen = fragNeededSeen(bed.bed.realServers[0]!, 1280);
  });
  after(async () => {
    await bed?.stop();
  });

  test('control: when the real server drops "fragmentation needed", the download stalls (the director passed them on)', () => {
    seen.install(true);
    const before = wayOutCounters(bed);
    const [get] = bed.client(['--get-bytes', String(2e6), '--timeout', '4000'], 0, 30_000);
    const after = wayOutCounters(bed);
    assert.notEqual(get?.['ok'], true, `the download must not complete: ${JSON.stringify(get)}`);
    assert.ok(after.TUN_OUT_ICMP_TO_DR > before.TUN_OUT_ICMP_TO_DR, JSON.stringify({ before, after }));
    assert.ok(seen.count() > 0, 'the real server received the errors');
  });

  test('20 MB down and up complete intact; the real server learnt the path MTU from the error the director passed on', (t) => {
    seen.install(false);
    run(['ip', '-n', bed.bed.realServers[0]!, 'route', 'flush', 'cache']);
    const before = wayOutCounters(bed);
    downloadAndUpload(bed, 20e6, 30_000);
    const after = wayOutCounters(bed);
    t.diagnostic(`way-out counters: ${JSON.stringify(after)}`);
    assert.ok(after.TUN_OUT_ICMP_TO_DR > before.TUN_OUT_ICMP_TO_DR);
    assert.ok(seen.count() > 0);
    const learnt = run(['ip', '-n', bed.bed.realServers[0]!, 'route', 'get', LAB.client(0), 'from', V]);
    assert.match(learnt, /mtu 1280/, `the server's route to the client carries the learnt MTU: ${learnt}`);
  });
});

/**
 * A router's error arriving at the director's interface (not made by the director itself), for
 * a non-local VIP and for a VIP that is a local address of the director: the tc capture takes
 * it into the TUN, the engine passes it on, the way out sends it to the DR server (or, for a
 * tunnelled server, encapsulated: the server's decapsulator hands it to its stack). The client
 * plays the router: it opens a UDP "connection" (one datagram from a fixed port), then sends
 * "fragmentation needed" (MTU 1200) to the VIP quoting the server's reply VIP:53 -> itself
 * (python3 raw socket). Control: the same error quoting a port with no connection does not
 * reach the server.
 */
const PY_ERROR = `
import socket, struct, sys
vip, client, sport, send = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == '1'
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s > 0xffff: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
if send:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((client, sport))
    u.sendto(b'hello', (vip, 53))
ip = bytearray(struct.pack('!BBHHHBBH4s4s', 0x45, 0, 33, 1, 0x4000, 60, 17, 0, socket.inet_aton(vip), socket.inet_aton(client)))
ip[10:12] = struct.pack('!H', csum(bytes(ip)))
quote = bytes(ip) + struct.pack('!HHHH', 53, sport, 13, 0) + b'hello'
icmp = bytearray(struct.pack('!BBHHH', 3, 4, 0, 0, 1200) + quote)
icmp[2:4] = struct.pack('!H', csum(bytes(icmp)))
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
r.sendto(bytes(icmp), (vip, 0))
`;

for (const [method, local] of [['DR', false], ['DR', true], ['TUN', false]] as const) {
  const counter = method === 'DR' ? 'TUN_OUT_ICMP_TO_DR' : 'TUN_OUT_ICMP_TO_TUN';
  describe(`${method}: a router's "fragmentation needed" to a ${local ? 'local' : 'non-local'} VIP is captured and reaches the real server`, { skip }, () => {
    let bed: DirectorBed;
    let seen: ReturnType<typeof fragNeededSeen>;
    before(async () => {
      bed = await new DirectorBed({
        rules: `-A -u ${V}:53 -s rr\n-a -u ${V}:53 -r ${RS}:53 ${method === 'DR' ? '-g' : '-i'} -w 1\n`,
        realServers: 1,
        udpPort: 53,
        prefix: prefix(),
        beforeDirector: local ? (b) => run(['ip', '-n', b.director, 'addr', 'add', `${V}/32`, 'dev', 'lo']) : undefined,
      }).start();
      const ns = bed.bed.realServers[0]!;
      if (method === 'DR') drServer(ns);
      else run(['ip', 'netns', 'exec', ns, process.execPath, ULVS, 'rs-setup', 'tun', '--decap', 'bpf', V]);
      seen = fragNeededSeen(ns, 1200);
      seen.install(false);
    });
    after(async () => {
      if (method === 'TUN') {
        try {
          run(['ip', 'netns', 'exec', bed.bed.realServers[0]!, process.execPath, ULVS, 'rs-setup', '--remove']);
        } catch {
          /* the namespace goes with the bed */
        }
      }
      await bed?.stop();
    });
    const error = (sport: number, open: boolean) => run(['ip', 'netns', 'exec', bed.bed.clients[0]!, '/usr/bin/python3', '-c', PY_ERROR, V, LAB.client(0), String(sport), open ? '1' : '0']);

    test('control: an error quoting no connection is not passed on', async () => {
      const before = wayOutCounters(bed);
      error(40998, false);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(seen.count(), 0);
      assert.equal(wayOutCounters(bed)[counter], before[counter]);
    });

    test('an error quoting a connection\'s reply reaches its real server, counted', async () => {
      const before = wayOutCounters(bed);
      error(40999, true);
      const t0 = Date.now();
      while (seen.count() === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 100));
      assert.equal(seen.count(), 1, 'the real server received it');
      assert.equal(wayOutCounters(bed)[counter] - before[counter], 1);
    });
  });
}
