/**
 * ulvsadm against a running ulvsd: a table of ipvsadm command lines with their output, exit
 * status and the state they leave (read back with -S -n), the -S / -C / -R round trip, and
 * listings of a director that has forwarded real traffic.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';
import { INVALID_COMMAND_LINES } from '../support/ipvsadm-cases.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const [R1, R2] = [LAB.realServer(0), LAB.realServer(1)];

describe('ulvsadm against ulvsd', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const adm = (args: string, input?: string) => {
    const r = spawnSync(process.execPath, [ULVSADM, ...args.split(' ').filter(Boolean)], { env: { ...process.env, ULVS_SOCKET: bed.socket }, input, encoding: 'utf8' });
    return { out: r.stdout, err: r.stderr, code: r.status };
  };
  const state = () => adm('-S -n').out;

  before(async () => {
    // Two data-path workers (one client's connections spread over both): the listing test counts
    // rr's exact split, which holds because the workers share rr's cursor.
    bed = await new DirectorBed({ rules: `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${R1}:8080 -m -w 1\n`, realServers: 2, httpPort: 8080, udpPort: 5353, ulvsdArgs: ['--workers', '2'] }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('a table of command lines: output, exit status, resulting state', () => {
    const base = `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${R1}:8080 -m -w 1\n`;
    const cases: { cmd: string; code: number; err?: RegExp; out?: string; state?: string }[] = [
      { cmd: '-S -n', code: 0, out: base },
      { cmd: `-A -t ${V}:80`, code: 255, err: /^Service already exists\n$/, state: base },
      { cmd: `-A -t ${V}:81 -s nosuch`, code: 255, err: /^Scheduler or persistence engine not found\n$/, state: base },
      { cmd: `-a -t ${V}:80 -r ${R1}:8080 -m`, code: 255, err: /^Destination already exists\n$/, state: base },
      { cmd: `-a -t ${V}:99 -r ${R1}:8080 -m`, code: 255, err: /^Service not defined\n$/, state: base },
      { cmd: `-e -t ${V}:80 -r ${R2}:8080 -m`, code: 255, err: /^No such destination\n$/, state: base },
      { cmd: `-d -t ${V}:80 -r ${R2}:8080`, code: 255, err: /^No such destination\n$/, state: base },
      { cmd: `-D -t ${V}:99`, code: 255, err: /^No such service\n$/, state: base },
      { cmd: `-E -t ${V}:99`, code: 255, err: /^No such service\n$/, state: base },
      { cmd: `-Z -t ${V}:99`, code: 255, err: /^No such service\n$/, state: base },
      { cmd: `-a -t ${V}:80 -r ${LAB.DIP}:8080`, code: 255, err: /^Direct routing needs the real server on a directly connected network of the director: it is an address of this host/, state: base },
      { cmd: `-a -t ${V}:80 -r ${R2}:8080 -i --tun-type gre --tun-csum`, code: 255, err: /^checksummed GRE tunnels \(--tun-csum\) are not supported by ulvs/, state: base },
      { cmd: `-a -t ${V}:80 -r ${R2}:8080 -m -x 5 -y 9`, code: 255, err: /^Numerical result out of range\n$/, state: base },
      { cmd: `-A -f 1:80`, code: 2, err: /invalid fwmark value `1:80' specified/, state: base },
      { cmd: '--start-daemon master --mcast-interface nosuch9', code: 255, err: /^No such device\n$/ },
      { cmd: '--start-daemon master --mcast-interface br0 --mcast-ttl 0', code: 2, err: /^illegal mcast-ttl specified\n/ },
      { cmd: '--start-daemon master --mcast-interface br0 --mcast-group 192.0.2.9', code: 2, err: /^invalid IPv4 mcast-group `192.0.2.9'\n/ },
      { cmd: '--stop-daemon backup', code: 255, err: /^No daemon is running\n$/ },
      { cmd: '--start-daemon backup --mcast-interface br0 --syncid 9 --mcast-port 8849', code: 0, out: '' },
      { cmd: '--start-daemon backup --mcast-interface br0', code: 255, err: /^Daemon has already run\n$/ },
      { cmd: '--start-daemon master --mcast-interface br0 --syncid 9 --sync-maxlen 600 --mcast-port 8849', code: 0, out: '' },
      { cmd: '-L --daemon', code: 0, out: 'master sync daemon (mcast=br0, syncid=9, maxlen=600, group=224.0.0.81, port=8849, ttl=1)\nbackup sync daemon (mcast=br0, syncid=9, maxlen=1472, group=224.0.0.81, port=8849, ttl=1)\n' },
      { cmd: '--stop-daemon master', code: 0 },
      { cmd: '--stop-daemon backup', code: 0 },
      { cmd: `-A -t ${V}:81 -s rr -p 60 --pe sip`, code: 2, err: /persistence engines \(--pe sip\) are not supported/, state: base },
      { cmd: `-a -t ${V}:80 -r ${R2}:8080 -i --tun-type gue --tun-port 6080 --tun-remcsum`, code: 255, err: /^checksummed GUE tunnels \(--tun-remcsum\) are not supported by ulvs/, state: base },
      { cmd: `-A -t [2001:db8::1]:80`, code: 2, err: /IPv6 services are not supported/, state: base },
      { cmd: `-L -n --thresholds -t ${V}:80`, code: 0, out: `Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  ${V}:80 rr\n  -> ${`${R1}:8080`.padEnd(28)} 0          0          0          0         \n` },
      { cmd: `-L -n --persistent-conn -t ${V}:80`, code: 0, out: `Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n  -> RemoteAddress:Port\nTCP  ${V}:80 rr\n  -> ${`${R1}:8080`.padEnd(28)} 1         0           0          0         \n` },
      { cmd: '-v', code: 0, out: 'ulvsadm 0.1.0 (ipvsadm v1.31 command line; IPVS v1.2.1 behaviour)\n' },
      { cmd: `-L -n -t ${V}:99`, code: 1, err: /^No such service\n$/ },
      { cmd: `-A -t ${V}:443 -s sh -p 120 -M 255.255.255.0 -b sh-port`, code: 0, out: '' },
      { cmd: `-a -t ${V}:443 -r ${R2} -m -w 2`, code: 0, state: `${base}-A -t ${V}:443 -s sh -p 120 -M 255.255.255.0 -b sh-port\n-a -t ${V}:443 -r ${R2}:443 -m -w 2\n` },
      { cmd: `-e -t ${V}:443 -r ${R2}:443 -m -w 0`, code: 0, state: `${base}-A -t ${V}:443 -s sh -p 120 -M 255.255.255.0 -b sh-port\n-a -t ${V}:443 -r ${R2}:443 -m -w 0\n` },
      { cmd: `-E -t ${V}:443`, code: 0, state: `${base}-A -t ${V}:443 -s wlc\n-a -t ${V}:443 -r ${R2}:443 -m -w 0\n` },
      { cmd: `-A -u ${V}:53 -s rr -o`, code: 0 },
      { cmd: `-a -u ${V}:53 -r ${R1}:5353 -m`, code: 0 },
      { cmd: `-D -t ${V}:443`, code: 0, state: `${base}-A -u ${V}:53 -s rr -o\n-a -u ${V}:53 -r ${R1}:5353 -m -w 1\n` },
      { cmd: `-d -u ${V}:53 -r ${R1}:5353`, code: 0, state: `${base}-A -u ${V}:53 -s rr -o\n` },
      { cmd: `-D -u ${V}:53`, code: 0, state: base },
      { cmd: '--set 600 0 100', code: 0 },
      { cmd: '-L --timeout', code: 0, out: 'Timeout (tcp tcpfin udp): 600 120 100\n' },
      { cmd: '--set 900 120 300', code: 0 },
      { cmd: '-L --daemon', code: 0, out: '' },
      { cmd: '-S', code: 0, out: `-A -t ${V}:http -s rr\n-a -t ${V}:http -r ${R1}:http-alt -m -w 1\n` },
    ];
    for (const c of cases) {
      const r = adm(c.cmd);
      assert.equal(r.code, c.code, `ulvsadm ${c.cmd}: exit ${r.code}, stderr ${r.err}`);
      if (c.err) assert.match(r.err, c.err, `ulvsadm ${c.cmd}`);
      if (c.out !== undefined) assert.equal(r.out, c.out, `ulvsadm ${c.cmd}`);
      if (c.state !== undefined) assert.equal(state(), c.state, `state after ulvsadm ${c.cmd}`);
    }
  });

  test(`${INVALID_COMMAND_LINES.length} invalid command lines: ipvsadm's message and exit status, nothing changed`, () => {
    const before = state();
    for (const [line, msg, code] of INVALID_COMMAND_LINES) {
      const r = adm(line);
      assert.equal(r.code, code, `ulvsadm ${line}: ${r.err}`);
      const tryLine = "Try `ulvsadm -h' or 'ulvsadm --help' for more information.\n";
      const want = msg === '' ? tryLine : code === 255 ? `${msg}\n${tryLine}` : `${msg}\n`;
      assert.equal(r.err, want, `ulvsadm ${line}`);
      assert.equal(r.out, '');
    }
    assert.equal(state(), before);
  });

  test('listings of a director that forwarded traffic', () => {
    adm(`-a -t ${V}:80 -r ${R2}:8080 -m -w 1`);
    const r = bed.client(['--requests', '6']);
    assert.equal(r.filter((x) => x['ok']).length, 6);
    const l = adm('-L -n').out.split('\n');
    assert.equal(l[0], `IP Virtual Server version 1.2.1 (size=1048576)`);
    assert.equal(l[3], `TCP  ${V}:80 rr`);
    assert.equal(l[4], `  -> ${`${R1}:8080`.padEnd(28)} Masq    1      0          3         `);
    const stats = adm(`-L -n --stats -t ${V}:80`).out.split('\n');
    assert.equal(stats[0], 'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes');
    assert.match(stats[2]!, new RegExp(`^TCP  ${V.replace(/\./g, '\\.')}:80 +6 +\\d+ +\\d+ +\\d+ +\\d+$`));
    const conns = adm('-L -n -c').out.split('\n');
    assert.equal(conns[0], 'IPVS connection entries');
    assert.equal(conns.filter((x) => x.startsWith('TCP ')).length, 6);
    assert.ok(conns.slice(2).filter(Boolean).every((x) => x.includes(`${V}:80`) && x.includes(LAB.client(0))));
    assert.equal(adm(`-Z -t ${V}:80`).code, 0);
    assert.match(adm(`-L -n --stats -t ${V}:80`).out.split('\n')[2]!, / +0 +0 +0 +0 +0$/);
  });

  test('-S, then -C, then -R restores the same table (-L -n equal)', () => {
    adm(`-A -u ${V}:53 -s sh -b sh-fallback`);
    adm(`-a -u ${V}:53 -r ${R1}:5353 -m -w 4 -x 10 -y 5`);
    const before = adm('-L -n').out;
    const saved = adm('-S -n').out;
    assert.equal(adm('-C').code, 0);
    assert.equal(adm('-S -n').out, '');
    const r = adm('-R', saved);
    assert.equal(r.code, 0, r.err);
    // -S does not save thresholds (as ipvsadm), so compare without them
    assert.equal(adm('-L -n').out, before);
    assert.match(adm('-L -n --thresholds').out, new RegExp(`${R1.replace(/\./g, '\\.')}:5353 +0 +0 `));
    const q = bed.client(['--udp', '53', '--queries', '2']);
    assert.equal(q.filter((x) => x['ok']).length, 2, 'forwarding after restore');
  });

  test('-R aborts on an invalid line and reports director errors per line', () => {
    const bad = adm('-R', `-A -t ${V}:90 -s rr\n-A -t ${V}:91 -s rr -w 3\n-A -t ${V}:92 -s rr\n`);
    assert.equal(bad.code, 2);
    assert.match(bad.err, /Illegal 'weight' option with the 'add-service' command/);
    assert.match(state(), /:90 -s rr/);
    assert.doesNotMatch(state(), /:92/, 'lines after the invalid one are not run');
    const dup = adm('-R', `-A -t ${V}:90 -s rr\n-A -t ${V}:93 -s rr\n`);
    assert.equal(dup.code, 0, 'the last line succeeded');
    assert.equal(dup.err, 'Service already exists\n');
    assert.match(state(), /:93 -s rr/);
  });

  test('no daemon: a clear message', () => {
    const r = spawnSync(process.execPath, [ULVSADM, '-L', '-n'], { env: { ...process.env, ULVS_SOCKET: '/nonexistent/ulvs.sock' }, encoding: 'utf8' });
    assert.equal(r.status, 2);
    assert.match(r.stderr, /^ulvsd is not running: there is no admin socket at \/nonexistent\/ulvs\.sock \(ENOENT\); start it/);
  });
});
