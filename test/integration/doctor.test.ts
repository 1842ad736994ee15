/**
 * `ulvs doctor` and the run-time warning (issue 15): LVS/NAT's requirements, each broken in a
 * test bed (prefix hs-) and named.
 *
 * Bed: client c1 on 198.51.100.0/24, director, rs1 and rs2 on 192.0.2.0/24 (DIP 192.0.2.1);
 * the service TCP VIP:80 has rs1 only (rs2 is a host on the real servers' network, used as a
 * client there). Control for every case: the healthy director, doctor exit 0 with every check
 * ok, is checked first and again after each repair, so each failure below is the break's.
 *   forwarding  net.ipv4.ip_forward=0 on the director
 *   vip         an address of 203.0.113.0/24 on the director's outside bridge: the VIP is then on
 *               a connected network without being the director's address
 *   gateway     rs1's default route via 192.0.2.99 (not the DIP): a client's connection gets no
 *               SYN-ACK, ulvsd counts it (GET /v1/services `unanswered`) and warns naming rs1
 *   clients     a client on the real servers' network (rs2): rs1 answers it directly
 *   dip         the DIP removed from the director (last: the bed is not repaired)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DirectorBed, SCRIPTS } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { callAdmin } from '../../src/control/admin-client.js';
import { needsRoot } from '../support/root.js';

const ULVS = fileURLToPath(new URL('../../src/cli/ulvs.js', import.meta.url));
const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const RS1 = LAB.realServer(0);
const RS2 = LAB.realServer(1);

describe('ulvs doctor: each VS/NAT requirement broken and named', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const doctor = () => {
    const r = spawnSync('ip', ['netns', 'exec', bed.bed.director, process.execPath, ULVS, 'doctor', '--socket', bed.socket], { encoding: 'utf8', timeout: 60_000 });
    const rows = r.stdout.split('\n').filter((l) => /^\w+ +(ok|fail|note|skipped) /.test(l)).map((l) => { const m = /^(\w+) +(\w+) +(.*)$/.exec(l)!; return { check: m[1]!, status: m[2]!, detail: m[3]! }; });
    return { code: r.status, out: r.stdout, rows, failed: rows.filter((x) => x.status === 'fail') };
  };
  const healthy = () => {
    const d = doctor();
    assert.equal(d.code, 0, d.out);
    assert.deepEqual(d.failed, []);
    assert.deepEqual([...new Set(d.rows.map((x) => x.check))], ['ulvsd', 'forwarding', 'vip', 'dip', 'gateway', 'clients']);
    return d;
  };
  const zero = () => assert.equal(spawnSync(process.execPath, [ULVSADM, '-Z'], { env: { ...process.env, ULVS_SOCKET: bed.socket } }).status, 0);
  const unanswered = async () => ((await callAdmin(bed.socket, 'GET', '/v1/services')).json as { servers: { address: string; unanswered: number }[] }[])[0]!.servers.find((s) => s.address === RS1)!.unanswered;
  /** A request from namespace `ns` that the server does not answer through the director: the client sends its SYN again. */
  const unansweredRequest = (ns: string) => spawnSync('ip', ['netns', 'exec', ns, process.execPath, SCRIPTS.client, '--host', V, '--requests', '1', '--timeout', '3500'], { encoding: 'utf8', timeout: 30_000 }).stdout;
  const dir = (args: string[]) => bed.bed.ip(bed.bed.director, args);

  before(async () => {
    bed = await new DirectorBed({ rules: `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${RS1}:8080 -m\n`, realServers: 2, httpPort: 8080, prefix: `hs-${randomBytes(2).toString('hex')}`, ulvsdArgs: ['--workers', '1', '--log-format', 'text'] }).start();
    const r = bed.client(['--requests', '3']);
    assert.equal(r.filter((x) => x['ok']).length, 3, JSON.stringify(r));
  });
  after(async () => {
    await bed?.stop();
  });

  test('control: the healthy director passes every check', () => {
    const d = healthy();
    assert.match(d.out, new RegExp(`dip +ok +real server ${RS1.replace(/\./g, '\\.')} is on the director's network on br0, DIP 192\\.0\\.2\\.1`));
    assert.match(d.out, /gateway +ok +real server 192\.0\.2\.11 answered through the director \(3 connections, none unanswered\)/);
  });

  test('forwarding off is named', () => {
    spawnSync('ip', ['netns', 'exec', bed.bed.director, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
    try {
      const d = doctor();
      assert.equal(d.code, 1);
      assert.deepEqual(d.failed.map((x) => x.check), ['forwarding']);
      assert.match(d.failed[0]!.detail, /net\.ipv4\.ip_forward = 0: .* sysctl -w net\.ipv4\.ip_forward=1/);
    } finally {
      spawnSync('ip', ['netns', 'exec', bed.bed.director, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    }
    healthy();
  });

  test('a VIP on a connected network that is not the director\'s address is named', () => {
    dir(['addr', 'add', '203.0.113.1/24', 'dev', 'pubbr']);
    try {
      const d = doctor();
      assert.deepEqual(d.failed.map((x) => x.check), ['vip']);
      assert.match(d.failed[0]!.detail, /^VIP 203\.0\.113\.10 is on the director's network 203\.0\.113\.0\/24 \(pubbr\) but is not an address of the director/);
    } finally {
      dir(['addr', 'del', '203.0.113.1/24', 'dev', 'pubbr']);
    }
    healthy();
  });

  test('a real server whose default gateway is not the DIP: counted, warned at run time naming it, named by doctor', async () => {
    const logFrom = bed.ulvsdLog.length;
    bed.bed.ip(bed.bed.realServers[0]!, ['route', 'replace', 'default', 'via', '192.0.2.99']);
    try {
      assert.equal(await unanswered(), 0);
      const out = unansweredRequest(bed.bed.clients[0]!);
      assert.match(out, /"ok":false/);
      assert.ok((await unanswered()) >= 1, 'counted');
      await bed.logged(/real server 192\.0\.2\.11:8080 of TCP 203\.0\.113\.10:80 does not answer through the director: \d+ connections? got no reply .* its default gateway is probably not the DIP/, 15_000);
      assert.doesNotMatch(bed.ulvsdLog.slice(0, logFrom), /does not answer through the director/, 'control: no such warning before the break');
      const d = doctor();
      assert.equal(d.code, 1);
      assert.deepEqual(d.failed.map((x) => x.check), ['gateway']);
      assert.match(d.failed[0]!.detail, /^real server 192\.0\.2\.11: \d+ connections? got no reply through the director .* its default gateway is probably not 192\.0\.2\.1/);
    } finally {
      bed.bed.ip(bed.bed.realServers[0]!, ['route', 'replace', 'default', 'via', LAB.DIP]);
    }
    zero();
    assert.equal(bed.client(['--requests', '2']).filter((x) => x['ok']).length, 2);
    healthy();
  });

  test('a client on the real servers\' network is named', async () => {
    unansweredRequest(bed.bed.realServers[1]!); // rs2 (192.0.2.12) as a client of the VIP
    const d = doctor();
    assert.equal(d.code, 1);
    const clients = d.failed.find((x) => x.check === 'clients');
    assert.ok(clients, d.out);
    assert.match(clients.detail, /^client 192\.0\.2\.12 is on the real servers' network 192\.0\.2\.0\/24 \(br0\): a real server answers it directly/);
    assert.deepEqual(d.failed.map((x) => x.check).sort(), ['clients', 'gateway'], 'rs1 did not answer it through the director either');
    assert.equal(RS2, '192.0.2.12');
  });

  test('no DIP: the real server is not on a network of the director', () => {
    dir(['addr', 'del', `${LAB.DIP}/24`, 'dev', 'br0']);
    const d = doctor();
    assert.equal(d.code, 1);
    const dip = d.failed.find((x) => x.check === 'dip');
    assert.ok(dip, d.out);
    assert.match(dip.detail, /^real server 192\.0\.2\.11: the director has no route to it .*give the director an address on its network \(the DIP\)/);
  });
});
