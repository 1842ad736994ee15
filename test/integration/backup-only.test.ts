/**
 * backup_only (IPVS: a director whose sync backup daemon runs serves no virtual service while the
 * sysctl is 1; ip_vs_in_hook returns NF_ACCEPT, so requests reach the local stack). Real packets
 * through a running ulvsd whose VIP is a local address (on lo), VIP:2222 -> rs1, rs2 :2222 (NAT),
 * and a listener of the director's own on VIP:2222 answering "director":
 *   served:       backup_only 0 and no backup      -> rs1/rs2 answer
 *   control 1:    backup_only 1, no backup daemon  -> rs1/rs2 answer (either condition alone
 *                                                      changes nothing, as sysctl_backup_only)
 *   bypass:       backup_only 1 + backup running   -> the director's listener answers, the
 *                                                      engine counts pass_backup_only
 *   control 2:    backup stopped again             -> rs1/rs2 answer
 *   control 3:    backup running, backup_only 0    -> rs1/rs2 answer
 * The bypass check fails on a ulvsd that ignores the sysctl (the rs answer instead: what the
 * controls show).
 *
 * Direct routing (the case backup_only exists for: a backup holding synced DR connections must
 * not send their packets on): VIP:80 -g rs1 (the VIP on rs1's lo; not on the director, whose
 * stack would take rs1's replies from the VIP as martians). An established connection held
 * open through the backup daemon's start:
 *   control: backup running with backup_only 0 -> it downloads its 200 kB, byte-exact;
 *   backup_only 1 -> its packets reach the director's own stack, which does not deliver them
 *   to rs1 (no route for the VIP there), so its download fails or never ends; without dropping the way-out entry (Offloader.dropRoutes) the way-out program would
 *   still send them to rs1 and it would complete (checked by taking the drop out);
 *   backup_only 0 again -> a new connection is served.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DirectorBed, waitFor } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';
import { LISTENER, tcpConnect } from '../support/probes.js';
import { HeldConns } from '../support/held-conns.js';
import { run } from '../../src/lab/shell.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const PORT = 2222;
const rules = [`-A -t ${V}:${PORT} -s rr`, `-a -t ${V}:${PORT} -r ${LAB.realServer(0)}:${PORT} -m`, `-a -t ${V}:${PORT} -r ${LAB.realServer(1)}:${PORT} -m`, ''].join('\n');

describe('backup_only: a director running a sync backup serves no virtual service', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const adm = (...args: string[]) => {
    const r = spawnSync(process.execPath, [ULVSADM, ...args], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
    assert.equal(r.status, 0, `ulvsadm ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const listen = async (ns: string, host: string, reply: string) => {
    const p = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', LISTENER(host, PORT, reply)], { stdio: ['ignore', 'pipe', 'pipe'] });
    bed.procs.push(p);
    await waitFor(p, /listening/);
  };
  /** who answers 4 new connections to VIP:2222 */
  const answers = () => new Set(Array.from({ length: 4 }, () => tcpConnect(bed.bed.clients[0]!, V, PORT)));
  /** the engines' pass_backup_only count and the connection count, from ulvsd's dump */
  const counts = async () => {
    const t = await bed.dump();
    return { passed: Number(/\bpass_backup_only=(\d+)/.exec(t)?.[1] ?? 0), conns: Number(/connections (\d+);/.exec(t)?.[1] ?? -1) };
  };

  before(async () => {
    bed = await new DirectorBed({ prefix: `hC-${randomBytes(2).toString('hex')}`, rules, realServers: 2, clients: 1, httpPort: 8080, beforeDirector: (b) => b.ip(b.director, ['addr', 'add', `${V}/32`, 'dev', 'lo']) }).start();
    await listen(bed.bed.director, V, 'director');
    await listen(bed.bed.realServers[0]!, '0.0.0.0', 'rs1');
    await listen(bed.bed.realServers[1]!, '0.0.0.0', 'rs2');
  });
  after(async () => {
    await bed?.stop();
  });

  test('served by the real servers; backup_only 1 alone changes nothing (control 1)', () => {
    assert.deepEqual(answers(), new Set(['connected rs1', 'connected rs2']));
    assert.equal(adm('--sysctl', 'backup_only=1'), 'net.ipv4.vs.backup_only = 1\n');
    assert.deepEqual(answers(), new Set(['connected rs1', 'connected rs2']), 'no backup daemon: still served');
  });

  test('with the backup daemon running, requests pass to the local stack: the director\'s own listener answers', async () => {
    const before = await counts();
    assert.equal(before.passed, 0);
    adm('--start-daemon', 'backup', '--mcast-interface', 'pubbr', '--syncid', '7');
    assert.match(adm('-L', '--daemon'), /^backup sync daemon \(mcast=pubbr, syncid=7/m);
    assert.deepEqual(answers(), new Set(['connected director']));
    const now = await counts();
    assert.ok(now.passed >= 4 * 3, `pass_backup_only counts every request packet (4 connections of SYN, ACK, data, FIN...): ${now.passed}`);
    assert.equal(now.conns, before.conns, 'no connection was created');
  });

  test('control 2: backup stopped, served again; control 3: backup running with backup_only 0, served', () => {
    adm('--stop-daemon', 'backup');
    assert.deepEqual(answers(), new Set(['connected rs1', 'connected rs2']));
    adm('--start-daemon', 'backup', '--mcast-interface', 'pubbr');
    adm('--sysctl', 'backup_only=0');
    assert.deepEqual(answers(), new Set(['connected rs1', 'connected rs2']));
    adm('--stop-daemon', 'backup');
  });
});

describe('backup_only with direct routing: held connections are not sent on', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  let held: HeldConns;
  const adm = (...args: string[]) => {
    const r = spawnSync(process.execPath, [ULVSADM, ...args], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
    assert.equal(r.status, 0, `ulvsadm ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  before(async () => {
    const dr = `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${LAB.realServer(0)}:80 -g\n`;
    bed = await new DirectorBed({ prefix: `hC-${randomBytes(2).toString('hex')}`, rules: dr, realServers: 1, clients: 1, httpPort: 80 }).start();
    const rs = bed.bed.realServers[0]!;
    for (const k of ['all', 'eth0', 'lo']) {
      run(['ip', 'netns', 'exec', rs, 'sysctl', '-qw', `net.ipv4.conf.${k}.arp_ignore=1`]);
      run(['ip', 'netns', 'exec', rs, 'sysctl', '-qw', `net.ipv4.conf.${k}.arp_announce=2`]);
    }
    run(['ip', '-n', rs, 'addr', 'add', `${V}/32`, 'dev', 'lo']);
    held = await new HeldConns(bed.bed.clients[0]!, { thenBytes: 200_000 }).ready();
  });
  after(async () => {
    await held?.close();
    await bed?.stop();
  });

  test('control: a connection held while the backup starts (backup_only 0) completes', async () => {
    const { conns, failed } = await held.open(1);
    assert.deepEqual(failed, []);
    assert.equal(conns[0]!.server, 'rs1');
    adm('--start-daemon', 'backup', '--mcast-interface', 'pubbr');
    const [end] = await held.finish([conns[0]!.id], 0, 30_000);
    assert.equal(end!.ok, true, JSON.stringify(end));
    adm('--stop-daemon', 'backup');
  });

  test('backup_only 1: a connection held while the backup starts is not sent to rs1 any more', async () => {
    const { conns, failed } = await held.open(1);
    assert.deepEqual(failed, []);
    adm('--sysctl', 'backup_only=1');
    adm('--start-daemon', 'backup', '--mcast-interface', 'pubbr');
    // its packets go to the director's stack, which has no route for them (or resets them):
    // the download either fails or never ends
    const end = await held.finish([conns[0]!.id], 0, 15_000).then(
      ([e]) => e!,
      (e: Error) => ({ ok: false, error: e.message.slice(0, 80) }),
    );
    assert.equal(end.ok, false, `the connection went on to rs1: ${JSON.stringify(end)}`);
  });

  test('backup stopped: new connections are served again', async () => {
    adm('--stop-daemon', 'backup');
    const { conns, failed } = await held.open(1);
    assert.deepEqual(failed, []);
    assert.equal(conns[0]!.server, 'rs1');
    const [end] = await held.finish([conns[0]!.id], 0, 30_000);
    assert.equal(end!.ok, true, JSON.stringify(end));
  });
});
