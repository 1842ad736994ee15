/**
 * ulvsd as a system service (issue 15), in a test bed (prefix hs-):
 *   - no --rules: it starts with an empty table (ulvsadm -S -n prints nothing) and is configured
 *     with ulvsadm; a client is then answered through the service that ulvsadm added;
 *   - systemd's readiness protocol on a fake $NOTIFY_SOCKET (a Unix datagram socket bound by
 *     python3, as systemd's is): READY=1 with MAINPID=<ulvsd's pid> arrives once ulvsd logged
 *     `forwarding` and its admin socket answers, RELOADING=1 then READY=1 around SIGHUP (which,
 *     without a rules file, says there is nothing to re-read and keeps the rules), STOPPING=1 at
 *     SIGTERM; control: the listener had received nothing before ulvsd started, so the datagrams
 *     checked are ulvsd's; a send to the same socket from python shows the listener records
 *     what it gets (a missing READY=1 fails the wait);
 *   - --save-on-stop FILE: the final stop writes what `ulvsadm -S -n` printed before it;
 *     control: the file did not exist before the stop.
 * systemd is not PID 1 here (the machine's init is another program), so the unit itself is only
 * checked by `systemd-analyze verify` (test/service-unit.test.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectorBed, waitFor } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const PY_RECEIVER = `
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
print("bound", flush=True)
while True:
    print(json.dumps(s.recv(4096).decode()), flush=True)
`;

describe('ulvsd as a system service: empty start, sd_notify, save on stop', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  let dir: string;
  let receiver: ChildProcess;
  let notes: string[] = [];
  let saved: string;
  const adm = (args: string) => {
    const r = spawnSync(process.execPath, [ULVSADM, ...args.split(' ')], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
    return { out: r.stdout, err: r.stderr, code: r.status };
  };
  /** Resolve when a received datagram matches `re` (after the first `from` ones). */
  const note = async (re: RegExp, from = 0, ms = 20_000): Promise<string> => {
    const t0 = Date.now();
    for (;;) {
      const hit = notes.slice(from).find((n) => re.test(n));
      if (hit) return hit;
      if (Date.now() - t0 > ms) throw new Error(`no datagram matching ${re} within ${ms} ms; got ${JSON.stringify(notes)}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hs-svc-'));
    const sock = join(dir, 'notify');
    saved = join(dir, 'saved.rules');
    receiver = spawn('/usr/bin/python3', ['-u', '-c', PY_RECEIVER, sock], { stdio: ['ignore', 'pipe', 'pipe'] });
    await waitFor(receiver, /bound/);
    let buf = '';
    receiver.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split('\n');
      buf = lines.pop()!;
      for (const l of lines) if (l.startsWith('"')) notes.push(JSON.parse(l) as string);
    });
    assert.deepEqual(notes, [], 'nothing received before ulvsd starts');
    bed = await new DirectorBed({ noRules: true, realServers: 1, httpPort: 8080, prefix: `hs-${randomBytes(2).toString('hex')}`, ulvsdArgs: ['--workers', '1', '--log-format', 'text', '--save-on-stop', saved], ulvsdEnv: { NOTIFY_SOCKET: sock } }).start();
  });
  after(async () => {
    await bed?.stop();
    receiver?.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  test('empty start; READY=1 from ulvsd\'s pid once it forwards and answers', async () => {
    assert.match(bed.ulvsdLog, /forwarding with 1 worker .*; 0 services \(started without --rules: configure with ulvsadm\)/);
    const ready = await note(/^READY=1/);
    assert.match(ready, new RegExp(`\\nMAINPID=${bed.ulvsd!.pid}$`));
    assert.match(ready, /STATUS=forwarding with 1 worker, 0 services/);
    assert.equal(notes.filter((n) => /READY=1/.test(n)).length, 1);
    assert.deepEqual(adm('-S -n'), { out: '', err: '', code: 0 });
  });

  test('configured with ulvsadm only: the service it adds answers a client', () => {
    assert.equal(adm(`-A -t ${V}:80 -s rr`).code, 0);
    assert.equal(adm(`-a -t ${V}:80 -r ${LAB.realServer(0)}:8080 -m`).code, 0);
    const r = bed.client(['--requests', '3']);
    assert.equal(r.filter((x) => x['ok']).length, 3, JSON.stringify(r));
  });

  test('SIGHUP without a rules file: RELOADING=1, a clear refusal, READY=1, rules kept', async () => {
    const from = notes.length;
    const rulesBefore = adm('-S -n').out;
    bed.ulvsd!.kill('SIGHUP');
    await note(/^RELOADING=1$/, from);
    await note(/^READY=1$/, from + 1);
    await bed.logged(/reload refused, running rules unchanged: ulvsd was started without --rules or --keepalived: there is no file to re-read/);
    assert.equal(adm('-S -n').out, rulesBefore);
  });

  test('control: the listener records a datagram sent to it by another process', async () => {
    const from = notes.length;
    spawnSync('/usr/bin/python3', ['-c', 'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b"X-CONTROL=1", sys.argv[1])', join(dir, 'notify')]);
    await note(/^X-CONTROL=1$/, from);
  });

  test('SIGTERM: STOPPING=1, exit 0, the rules saved in ipvsadm -S -n format', async () => {
    const rules = adm('-S -n').out;
    assert.match(rules, /^-A -t 203\.0\.113\.10:80 -s rr\n-a -t 203\.0\.113\.10:80 -r 192\.0\.2\.11:8080 -m -w 1\n$/);
    assert.equal(existsSync(saved), false, 'control: nothing saved before the stop');
    const from = notes.length;
    assert.equal(await bed.stopDirector(), 0);
    await note(/^STOPPING=1$/, from);
    assert.equal(readFileSync(saved, 'utf8'), rules);
    assert.match(bed.ulvsdLog, /rules saved to .*saved\.rules \(--save-on-stop\)/);
  });
});
