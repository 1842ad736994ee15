/**
 * `npm pack` + `npm install -g` into a temporary prefix (issue 15): the package puts ulvsd,
 * ulvsadm and ulvs on PATH, ships what they load at run time (dist/src, the eBPF objects,
 * package.json for the version) and no tests, and README's "Running a director" works from that
 * install: the installed ulvsd with `--rules rules` forwards a client's requests with its kernel
 * fast path loaded from the package's bpf/, and the installed ulvsadm lists the service.
 * Control: before the install the prefix's bin/ has none of the three (so PATH cannot find them
 * elsewhere: the checks run them by the prefix's own path).
 *
 * `npm pack --ignore-scripts`: the tests run from an already built dist/; the package's prepack
 * (npm run build) would rewrite dist/ under the other tests' feet. Dependencies come from the
 * registry or npm's cache, as for `npm ci`. Names: hs-pack-*, hs-prefix-*, bed prefix hs-.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const V = LAB.VIP;
const COMMANDS = ['ulvsd', 'ulvsadm', 'ulvs'];

describe('npm pack + npm install -g: the three commands on PATH, README from the install', { skip: needsRoot }, () => {
  let packDir: string;
  let prefix: string;
  let bin: string;
  let bed: DirectorBed | null = null;
  const sh = (cmd: string, args: string[], env: Record<string, string> = {}) => spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, PATH: `${bin}:${process.env['PATH']}`, ...env }, timeout: 300_000 });

  before(() => {
    packDir = mkdtempSync(join(tmpdir(), 'hs-pack-'));
    prefix = mkdtempSync(join(tmpdir(), 'hs-prefix-'));
    bin = join(prefix, 'bin');
  });
  after(async () => {
    await bed?.stop();
    rmSync(packDir, { recursive: true, force: true });
    rmSync(prefix, { recursive: true, force: true });
  });

  test('pack and install into a temporary prefix', () => {
    for (const c of COMMANDS) assert.equal(existsSync(join(bin, c)), false, `control: ${c} not there before`);
    const pack = spawnSync('npm', ['pack', '--ignore-scripts', '--pack-destination', packDir], { cwd: root, encoding: 'utf8', timeout: 300_000 });
    assert.equal(pack.status, 0, pack.stderr);
    const tgz = readdirSync(packDir).find((f) => f.endsWith('.tgz'));
    assert.ok(tgz, 'a tarball');
    const list = spawnSync('tar', ['tzf', join(packDir, tgz)], { encoding: 'utf8' }).stdout.split('\n');
    for (const f of ['package/bin/ulvsd', 'package/dist/src/cli/ulvsd.js', 'package/dist/src/datapath/tun/worker.js', 'package/bpf/fastpath.bpf.o', 'package/bpf/tun_out.bpf.o', 'package/bpf/steer.bpf.o', 'package/package.json', 'package/contrib/systemd/ulvsd.service', 'package/web/index.html']) assert.ok(list.includes(f), `${f} shipped`);
    assert.deepEqual(list.filter((f) => /\.test\.js$|^package\/test\/|^package\/src\//.test(f)), [], 'no tests, no TypeScript sources');
    const inst = spawnSync('npm', ['install', '-g', '--prefix', prefix, '--prefer-offline', '--no-audit', '--no-fund', join(packDir, tgz)], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(inst.status, 0, inst.stderr);
    for (const c of COMMANDS) assert.ok(existsSync(join(bin, c)), `${c} in ${bin}`);
  });

  test('each command runs from PATH', () => {
    const v = sh('ulvsd', ['--version']);
    assert.deepEqual([v.status, v.stdout], [0, `ulvsd ${(JSON.parse(spawnSync('cat', [join(root, 'package.json')], { encoding: 'utf8' }).stdout) as { version: string }).version}\n`]);
    assert.match(sh('ulvsd', ['--help']).stdout, /--save-on-stop FILE/);
    const adm = sh('ulvsadm', ['-L', '-n'], { ULVS_SOCKET: join(prefix, 'none.sock') });
    assert.equal(adm.status, 2);
    assert.match(adm.stderr, /^ulvsd is not running: there is no admin socket/);
    const u = sh('ulvs', ['--help']);
    assert.equal(u.status, 0);
    assert.match(u.stderr, /^usage: ulvs demo/);
    const w = sh('sh', ['-c', 'for c in ulvsd ulvsadm ulvs; do command -v $c; done']);
    assert.deepEqual(w.stdout.trim().split('\n'), COMMANDS.map((c) => join(bin, c)));
  });

  test("README's 'Running a director' from the install: ulvsd --rules rules forwards, ulvsadm lists", async () => {
    const rules = `-A -t ${V}:80 -s wlc\n-a -t ${V}:80 -r ${LAB.realServer(0)}:8080 -m -w 1\n-a -t ${V}:80 -r ${LAB.realServer(1)}:8080 -m -w 2\n`;
    bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080, prefix: `hs-${randomBytes(2).toString('hex')}`, ulvsdScript: join(bin, 'ulvsd'), ulvsdArgs: ['--workers', '1', '--log-format', 'text'] }).start();
    assert.match(bed.ulvsdLog, /fast path: established connections forwarded by a tc program/, 'the eBPF objects were found in the package');
    const r = bed.client(['--requests', '6']);
    assert.equal(r.filter((x) => x['ok']).length, 6, JSON.stringify(r));
    const l = sh('ulvsadm', ['-L', '-n'], { ULVS_SOCKET: bed.socket });
    assert.equal(l.status, 0, l.stderr);
    assert.match(l.stdout, /TCP {2}203\.0\.113\.10:80 wlc\n {2}-> 192\.0\.2\.11:8080 +Masq +1 /);
    assert.match(l.stdout, / {2}-> 192\.0\.2\.12:8080 +Masq +2 /);
    assert.match(bed.ulvsdLog, new RegExp(`forwarding with 1 worker \\(ulvsd [^,]+, pid ${bed.ulvsd!.pid}`));
  });
});
