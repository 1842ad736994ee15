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
