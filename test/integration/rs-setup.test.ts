/**
 * `ulvs rs-setup` on a real server in a network namespace, with packets from a "director"
 * namespace on the same veth link (this kernel has no ipip module, so TUN must work through
 * ulvs's decapsulation program):
 *
 *   <p>-d  d0 192.0.2.1/24 + 198.51.100.2/24 (the client's address)  ====  eth0 192.0.2.11/24  <p>-rs
 *          route 203.0.113.0/24 dev d0 (the VIP on-link, for ARP)         default via 192.0.2.1
 *
 * A UDP echo listener on VIP:7 in the real server (IP_FREEBIND, so it exists before the VIP)
 * prints what it receives and answers the sender. The director side (Python: a raw socket
 * for the hand-built IPIP packet, a UDP socket on the client's address for the answer) sends
 * and waits 1.5 s for the answer. Controls: the same IPIP packet with `rs-setup dr` (everything
 * but the decapsulator) reaches nobody; ARP for the VIP is answered when the VIP is on lo
 * without rs-setup's sysctls; the sysctl snapshot differs while set up.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ipv4 } from '../../src/wire/build.js';
import { run, spawnIn, tryRun } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { fdById } from '../../src/datapath/tun/bpf.js';

const P = `ulvsrs${randomBytes(3).toString('hex')}`;
const RS = `${P}-rs`, DIR = `${P}-d`;
const VIP = '203.0.113.10', RIP = '192.0.2.11', DIP = '192.0.2.1', CLIENT = '198.51.100.2';
const ULVS = fileURLToPath(new URL('../../../bin/ulvs', import.meta.url)); // from dist/test/integration
const PY = '/usr/bin/python3';

const LISTENER = `
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND: bind to the VIP before it is local
s.bind((sys.argv[1], 7))
print('ready', flush=True)
while True:
    data, peer = s.recvfrom(2048)
    print('got %s:%d %s' % (peer[0], peer[1], data.decode()), flush=True)
    s.sendto(b'echo:' + data, peer)
`;
/** argv: client address, client port, then 'raw HEX DEST' (send an IP packet as is) or 'udp DEST' */
const SENDER = `
import socket, sys, json
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.bind((sys.argv[1], int(sys.argv[2])))
c.settimeout(1.5)
if sys.argv[3] == 'raw':
    r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    r.sendto(bytes.fromhex(sys.argv[4]), (sys.argv[5], 0))
else:
    c.sendto(b'plain', (sys.argv[4], 7))
try:
    data, peer = c.recvfrom(2048)
    print(json.dumps({'from': '%s:%d' % peer, 'data': data.decode()}))
except socket.timeout:
    print(json.dumps(None))
`;

describe('ulvs rs-setup on a real server namespace', { skip: needsRoot }, () => {
  let listener: ChildProcess | null = null;
  let original = '';
  const heard: string[] = [];
  const rsUlvs = (...args: string[]) => run(['ip', 'netns', 'exec', RS, process.execPath, ULVS, 'rs-setup', ...args]);
  const inRs = (...argv: string[]) => run(['ip', 'netns', 'exec', RS, ...argv]);
  /** every IPv4 conf sysctl rs-setup may touch, as `sysctl` prints them */
  const snapshot = () => inRs('sysctl', ...['all', 'default', 'eth0', 'lo'].flatMap((c) => ['arp_ignore', 'arp_announce', 'rp_filter'].map((n) => `net.ipv4.conf.${c}.${n}`)));
  const loAddrs = () => run(['ip', '-n', RS, '-4', '-o', 'addr', 'show', 'dev', 'lo']);
  const send = (port: number, ...how: string[]) => JSON.parse(run(['ip', 'netns', 'exec', DIR, PY, '-c', SENDER, CLIENT, String(port), ...how])) as { from: string; data: string } | null;
  /** the client's datagram to VIP:7 in IPIP from the director to the real server */
  const ipipPacket = (sport: number) => {
    const inner = ipv4({ src: CLIENT, dst: VIP, ttl: 63 }).udp({ sport, dport: 7 }).payload(`tunnelled ${sport}`).build();
    return ipv4({ src: DIP, dst: RIP, ttl: 64 }).raw(4).payload(inner).build().toString('hex');
  };
  const heardFrom = async (port: number) => {
    await new Promise((r) => setTimeout(r, 100));
    return heard.filter((l) => l.startsWith(`got ${CLIENT}:${port} `));
  };
  const statePath = () => `/run/ulvs/rs-setup-${inRs('stat', '-L', '-c', '%i', '/proc/self/ns/net').trim()}.json`;
  const rsMac = () => (JSON.parse(run(['ip', '-n', RS, '-j', 'link', 'show', 'eth0'])) as { address: string }[])[0]!.address;
  const neigh = () => (JSON.parse(run(['ip', '-n', DIR, '-j', 'neigh', 'show', 'to', VIP, 'dev', 'd0'])) as { lladdr?: string; state?: string[] }[])[0];

  before(async () => {
    run(['ip', 'netns', 'add', RS]);
    run(['ip', 'netns', 'add', DIR]);
    run(['ip', 'link', 'add', 'eth0', 'netns', RS, 'type', 'veth', 'peer', 'name', 'd0', 'netns', DIR]);
    for (const [ns, dev] of [[RS, 'lo'], [RS, 'eth0'], [DIR, 'lo'], [DIR, 'd0']] as const) run(['ip', '-n', ns, 'link', 'set', dev, 'up']);
    run(['ip', '-n', RS, 'addr', 'add', `${RIP}/24`, 'dev', 'eth0']);
    run(['ip', '-n', RS, 'route', 'add', 'default', 'via', DIP]);
    run(['ip', '-n', DIR, 'addr', 'add', `${DIP}/24`, 'dev', 'd0']);
    run(['ip', '-n', DIR, 'addr', 'add', `${CLIENT}/24`, 'dev', 'd0']);
    run(['ip', '-n', DIR, 'route', 'add', '203.0.113.0/24', 'dev', 'd0']);
    // strict reverse-path filtering, as many distributions set it: rs-setup must loosen and restore it
    inRs('sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=1', 'net.ipv4.conf.eth0.rp_filter=1');
    listener = spawnIn(RS, [PY, '-u', '-c', LISTENER, VIP]);
    let buf = '';
    listener.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      heard.push(...lines);
    });
    const deadline = Date.now() + 5000;
    while (!heard.includes('ready') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(heard.includes('ready'), 'the listener started');
  });
  after(() => {
    listener?.kill();
    try {
      const state = statePath();
      tryRun(['ip', 'netns', 'exec', RS, process.execPath, ULVS, 'rs-setup', '--remove']);
      if (existsSync(state)) rmSync(state);
    } finally {
      tryRun(['ip', 'netns', 'del', RS]);
      tryRun(['ip', 'netns', 'del', DIR]);
    }
  });

  test('control: with rs-setup dr (VIP, sysctls, no decapsulator) an IPIP packet reaches no listener', async () => {
    rsUlvs('dr', VIP);
    try {
      assert.equal(send(40001, 'raw', ipipPacket(40001), RIP), null, 'no answer');
      assert.deepEqual(await heardFrom(40001), [], 'the listener received nothing');
    } finally {
      rsUlvs('--remove');
    }
  });

  test('(a) rs-setup tun: the eBPF program decapsulates IPIP for the VIP; the listener answers the client directly', async () => {
    original = snapshot();
    const out = rsUlvs('tun', VIP);
    assert.match(out, /no tunl0 .*eBPF decapsulation/);
    assert.match(out, /attached ulvs_rs_decap \(program id \d+; IPIP for 203\.0\.113\.10\) at the tcx ingress of eth0/);
    assert.match(out, /net\.ipv4\.conf\.all\.rp_filter = 2 \(was 1\)/);
    assert.notEqual(snapshot(), original, 'the snapshot sees the changes (control for the restore check)');
    const answer = send(40002, 'raw', ipipPacket(40002), RIP);
    assert.deepEqual(answer, { from: `${VIP}:7`, data: 'echo:tunnelled 40002' }, 'a plain UDP answer from VIP:7 to the client, not through the director');
    assert.deepEqual(await heardFrom(40002), [`got ${CLIENT}:40002 tunnelled 40002`], 'the listener saw the client as the source');
    assert.match(rsUlvs('--status'), /eth0: ulvs_rs_decap program id \d+, VIPs 203\.0\.113\.10: decapsulated 1, dropped as malformed 0/);
  });

  test('(c) --remove restores every sysctl and removes the VIP, the program and the record', () => {
    const id = Number(/program id (\d+)/.exec(rsUlvs('--status'))![1]);
    const state = statePath();
    assert.ok(existsSync(state));
    const out = rsUlvs('--remove');
    assert.match(out, /detached ulvs_rs_decap/);
    assert.equal(snapshot(), original, 'every sysctl as before the set-up (rp_filter strict again)');
    assert.doesNotMatch(loAddrs(), /203\.0\.113\.10/);
    assert.ok(!existsSync(state), 'record deleted');
    assert.match(rsUlvs('--status'), /no decapsulation program attached/);
    // program ids are global: the program is gone from the kernel (nothing attached or pinned holds it)
    assert.equal(fdById('prog', id), null, `program ${id} no longer exists`);
  });

  test('GUE: rs-setup tun --tun-type gue --tun-port 6080 decapsulates IPVS\'s GUE to that port only', async () => {
    const gue = (sport: number, dport: number) => {
      const inner = ipv4({ src: CLIENT, dst: VIP, ttl: 63 }).udp({ sport, dport: 7 }).payload(`gue ${sport}`).build();
      // UDP checksum 0 (IPVS's default, --tun-nocsum); GUE header version 0, C 0, hlen 0, ctype 4
      return ipv4({ src: DIP, dst: RIP, ttl: 64 }).udp({ sport: 50000, dport, noChecksum: true }).payload(Buffer.concat([Buffer.from([0, 4, 0, 0]), inner])).build().toString('hex');
    };
    assert.match(rsUlvs('tun', '--tun-type', 'gue', '--tun-port', '6080', VIP), /GUE on UDP port 6080/);
    try {
      assert.equal(send(40006, 'raw', gue(40006, 6081), RIP), null, 'control: another port is not decapsulated');
      assert.deepEqual(send(40007, 'raw', gue(40007, 6080), RIP), { from: `${VIP}:7`, data: 'echo:gue 40007' });
      assert.deepEqual(await heardFrom(40007), [`got ${CLIENT}:40007 gue 40007`]);
      assert.deepEqual(await heardFrom(40006), []);
    } finally {
      rsUlvs('--remove');
    }
  });

  test('(b) rs-setup dr: ARP for the VIP is not answered; a frame to the real server\'s MAC for the VIP is accepted', async () => {
    // control: the VIP on lo without the sysctls is answered by ARP
    run(['ip', '-n', RS, 'addr', 'add', `${VIP}/32`, 'dev', 'lo']);
    send(40003, 'udp', VIP);
    assert.equal(neigh()?.lladdr, rsMac(), 'control: without arp_ignore the real server answers ARP for the VIP');
    run(['ip', '-n', RS, 'addr', 'del', `${VIP}/32`, 'dev', 'lo']);
    run(['ip', '-n', DIR, 'neigh', 'flush', 'dev', 'd0']);

    rsUlvs('dr', VIP);
    try {
      assert.match(loAddrs(), /inet 203\.0\.113\.10\/32/);
      assert.equal(send(40004, 'udp', VIP), null, 'no ARP answer, so nothing is sent');
      const n = neigh();
      assert.equal(n?.lladdr, undefined, `no link-layer address learnt (${JSON.stringify(n)})`);
      assert.ok(n?.state?.some((s) => s === 'INCOMPLETE' || s === 'FAILED'), `neighbour incomplete: ${JSON.stringify(n)}`);
      // DR: the director puts the real server's MAC on a packet for the VIP
      run(['ip', '-n', DIR, 'neigh', 'replace', VIP, 'lladdr', rsMac(), 'dev', 'd0', 'nud', 'permanent']);
      assert.deepEqual(send(40005, 'udp', VIP), { from: `${VIP}:7`, data: 'echo:plain' });
      assert.deepEqual(await heardFrom(40005), [`got ${CLIENT}:40005 plain`]);
    } finally {
      rsUlvs('--remove');
      run(['ip', '-n', DIR, 'neigh', 'flush', 'dev', 'd0']);
    }
    assert.doesNotMatch(loAddrs(), /203\.0\.113\.10/);
  });
});
