/**
 * Firewall-mark services with real packets (issue 15): an nftables mangle rule in the
 * director's namespace marks a client's packets to VIP ports 80 and 443 with mark 1, as LVS
 * users mark them; ulvsd (two workers) serves `-A -f 1` from its rules file:
 *   - persistent (-p): a client's port-80 and port-443 connections reach one real server, each
 *     keeping its own port (IPVS keeps the packet's port for persistent fwmark services); the
 *     control edits the service to plain rr, and the same requests spread over the servers;
 *   - a packet without the mark is not balanced by it: the nft rule deleted, the same requests
 *     to the same VIP and ports get no answer (and come back once the rule is there again);
 *   - ulvsadm lists it as ipvsadm does (`FWM  1 rr persistent 300`, --stats, -L -c with the IP
 *     template whose address is the mark);
 *   - removing the service (`ulvsadm -D -f 1`) stops the balancing.
 * Real servers answer HTTP on 80 and on 443 (plain HTTP: the port is what matters).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DirectorBed, SCRIPTS } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const RS = [0, 1, 2].map(LAB.realServer);
const persistentRules = ['-A -f 1 -s rr -p 300', ...RS.map((a) => `-a -f 1 -r ${a}:0 -m -w 1`), ''].join('\n');

const tally = (rs: Record<string, unknown>[]) => {
  const m: Record<string, number> = {};
  for (const r of rs) m[String(r['server'])] = (m[String(r['server'])] ?? 0) + 1;
  return m;
};

/** The second listener of each real server: HTTP on 443. */
async function listen443(bed: DirectorBed): Promise<void> {
  await Promise.all(
    bed.bed.realServers.map(
      (ns, i) =>
        new Promise<void>((resolve, reject) => {
          const p = spawn('ip', ['netns', 'exec', ns, process.execPath, SCRIPTS.servers, '--name', `rs${i + 1}`, '--http', '443'], { stdio: ['ignore', 'pipe', 'pipe'] });
          bed.procs.push(p);
          p.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
          p.on('exit', (c) => reject(new Error(`server on 443 exited ${c}`)));
        }),
    ),
  );
}

describe('firewall-mark services through ulvsd (nftables mark, NAT)', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const nft = (args: string) => {
    const r = spawnSync('ip', ['netns', 'exec', bed.bed.director, 'nft', ...args.split(' ')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `nft ${args}: ${r.stderr}`);
    return r.stdout;
  };
  const markRule = () => nft(`add rule ip hm_mangle prerouting ip daddr ${V} tcp dport { 80, 443 } meta mark set 1`);
  const adm = (args: string) => {
    const r = spawnSync(process.execPath, [ULVSADM, ...args.split(' ')], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
    return { out: r.stdout, err: r.stderr, code: r.status };
  };
  /** n requests to each port, one connection each: the JSON lines of both */
  const both = (n: number, timeout = 5000) => [...bed.client(['--http', '80', '--requests', String(n), '--timeout', String(timeout)]), ...bed.client(['--http', '443', '--requests', String(n), '--timeout', String(timeout)])];

  before(async () => {
    bed = await new DirectorBed({
      prefix: `hm-${randomBytes(3).toString('hex')}`,
      rules: persistentRules,
      realServers: 3,
      httpPort: 80,
      ulvsdArgs: ['--workers', '2'],
      beforeDirector: () => undefined,
    }).start();
    await listen443(bed);
    nft('add table ip hm_mangle');
    nft('add chain ip hm_mangle prerouting { type filter hook prerouting priority mangle ; }');
    markRule();
  });
  after(async () => {
    await bed?.stop(); // the director's namespace, its nft table with it
  });

  test("persistent: a client's 80 and 443 connections reach one real server, each on its own port", () => {
    const r = both(6);
    assert.equal(r.filter((x) => x['ok']).length, 12, JSON.stringify(r.filter((x) => !x['ok'])));
    assert.equal(Object.keys(tally(r)).length, 1, `one server for http and https: ${JSON.stringify(tally(r))}`);
    const listing = adm('-L -n');
    assert.equal(listing.code, 0, listing.err);
    assert.match(listing.out, /\nFWM {2}1 rr persistent 300\n/);
    const conns = adm('-L -n -c').out;
    assert.match(conns, /\nIP +\d\d:\d\d +ASSURED +198\.51\.100\.2:0 +0\.0\.0\.1:0 +192\.0\.2\.1[123]:0\n/, conns);
    assert.match(conns, /\nTCP .* 203\.0\.113\.10:443 +192\.0\.2\.1[123]:443\n/, 'the packet port kept');
    const stats = adm('-L -n --stats').out;
    assert.match(stats, /\nFWM {2}1 +12 /, stats); // 12 connections counted on the service
  });

  test('control: without persistence (ulvsadm -E) the same requests spread over the servers', () => {
    const e = adm('-E -f 1 -s rr');
    assert.equal(e.code, 0, e.err);
    const r = both(6);
    assert.equal(r.filter((x) => x['ok']).length, 12);
    assert.equal(Object.keys(tally(r)).length, 3, JSON.stringify(tally(r)));
    assert.equal(adm('-E -f 1 -s rr -p 300').code, 0);
  });

  test('a packet without the mark is not balanced by the service (nft rule deleted), and is again with it', () => {
    nft('flush chain ip hm_mangle prerouting');
    const r = both(1, 1500);
    assert.equal(r.filter((x) => x['ok']).length, 0, `unmarked packets answered: ${JSON.stringify(r)}`);
    markRule();
    const again = both(2);
    assert.equal(again.filter((x) => x['ok']).length, 4, 'control: the same requests marked are answered');
  });

  test('bad input: mark 0, out of range, a port: ipvsadm refusals, nothing changed', () => {
    const before = adm('-S -n').out;
    for (const [args, msg] of [
      ['-A -f 0 -s rr', /invalid fwmark value `0' specified/],
      ['-A -f 4294967296 -s rr', /invalid fwmark value `4294967296' specified/],
      ['-A -f 1:80 -s rr', /invalid fwmark value `1:80' specified/],
      ['-A -f 1 -s rr', /Service already exists/],
    ] as const) {
      const r = adm(args);
      assert.notEqual(r.code, 0, args);
      assert.match(r.err, msg, args);
    }
    assert.equal(adm('-S -n').out, before);
    assert.match(before, /^-A -f 1 -s rr -p 300\n-a -f 1 -r 192\.0\.2\.11:0 -m -w 1\n/);
  });

  test('removing the service (ulvsadm -D -f 1) stops the balancing', () => {
    assert.equal(adm('-D -f 1').code, 0);
    assert.doesNotMatch(adm('-L -n').out, /FWM/);
    const r = both(1, 1500);
    assert.equal(r.filter((x) => x['ok']).length, 0, JSON.stringify(r));
    // and it can come back
    const a = adm('-A -f 1 -s rr');
    assert.equal(a.code, 0, a.err);
    assert.equal(adm(`-a -f 1 -r ${RS[1]} -m`).code, 0);
    const back = both(2);
    assert.deepEqual(tally(back), { rs2: 4 }, JSON.stringify(back));
  });
});

describe('a persistent fwmark service with direct routing (-g)', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const nft = (args: string) => {
    const r = spawnSync('ip', ['netns', 'exec', bed.bed.director, 'nft', ...args.split(' ')], { encoding: 'utf8' });
    assert.equal(r.status, 0, `nft ${args}: ${r.stderr}`);
  };
  before(async () => {
    bed = await new DirectorBed({
      prefix: `hm-${randomBytes(3).toString('hex')}`,
      rules: ['-A -f 1 -s rr -p 300', ...RS.map((a) => `-a -f 1 -r ${a} -g -w 1`), ''].join('\n'),
      realServers: 3,
      httpPort: 80,
    }).start();
    await listen443(bed);
    // the real servers' DR set-up: the VIP on lo, ARP for it neither answered nor used
    for (const ns of bed.bed.realServers) {
      for (const k of ['all', 'eth0', 'lo']) {
        spawnSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.conf.${k}.arp_ignore=1`]);
        spawnSync('ip', ['netns', 'exec', ns, 'sysctl', '-qw', `net.ipv4.conf.${k}.arp_announce=2`]);
      }
      assert.equal(spawnSync('ip', ['-n', ns, 'addr', 'add', `${V}/32`, 'dev', 'lo']).status, 0);
    }
    nft('add table ip hm_mangle');
    nft('add chain ip hm_mangle prerouting { type filter hook prerouting priority mangle ; }');
    nft(`add rule ip hm_mangle prerouting ip daddr ${V} tcp dport { 80, 443 } meta mark set 1`);
  });
  after(async () => {
    await bed?.stop();
  });

  test("a client's 80 and 443 connections reach one real server unchanged; unmarked, none", () => {
    const r = [...bed.client(['--http', '80', '--requests', '4']), ...bed.client(['--http', '443', '--requests', '4'])];
    assert.equal(r.filter((x) => x['ok']).length, 8, JSON.stringify(r.filter((x) => !x['ok'])));
    assert.equal(Object.keys(tally(r)).length, 1, JSON.stringify(tally(r)));
    for (const x of r) assert.match(String(x['client']), new RegExp(`^${LAB.client(0).replace(/\./g, '\\.')}:`));
    nft('flush chain ip hm_mangle prerouting');
    const none = bed.client(['--http', '443', '--requests', '1', '--timeout', '1500']);
    assert.equal(none.filter((x) => x['ok']).length, 0, `control: unmarked answered ${JSON.stringify(none)}`);
  });
});
