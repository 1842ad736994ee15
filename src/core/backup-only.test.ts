/** backup_only (ip_vs_in_hook / ip_vs_forward_icmp: sysctl_backup_only): while the sync daemon's
 *  backup runs and the sysctl is 1, requests pass unchanged and create nothing; replies of known
 *  connections are still translated (the out-hook does not look at it); either condition alone
 *  changes nothing. Control: the same packets with backup_only 0 are scheduled and rewritten. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../wire/build.js';
import { CLIENT, director, ip, key, RS1, TCP, VIP } from '../../test/support/bed.js';
import { applySysctls } from './sysctl-names.js';
import { Outcome, Verdict } from './verdict.js';
import type { OffloadPort } from './offload.js';
import { Fwd } from './service.js';
import type { Director } from './director.js';

const k80 = key(TCP, VIP, 80);
function engine(): Director {
  const d = director();
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  return d;
}
function send(d: Director, pkt: Buffer, now = 1000): { v: number; out: Buffer; same: boolean } {
  const b = Buffer.from(pkt);
  const v = d.process(b, 0, b.length, now, 0);
  return { v, out: b, same: b.equals(pkt) };
}
const syn = (sport: number) => ipv4({ src: CLIENT, dst: VIP }).tcp({ sport, dport: 80, flags: 'S' }).build();
const ack = (sport: number) => ipv4({ src: CLIENT, dst: VIP }).tcp({ sport, dport: 80, flags: 'A' }).build();
const synAck = (cport: number) => ipv4({ src: RS1, dst: CLIENT }).tcp({ sport: 8080, dport: cport, flags: 'SA' }).build();
const frag = (sport: number) =>
  // "fragmentation needed" from a router on the client side, quoting VIP:80 -> client:sport
  ipv4({ src: '198.51.100.1', dst: VIP }).icmp({ type: 3, code: 4, rest: 1400, body: ipv4({ src: VIP, dst: CLIENT }).tcp({ sport: 80, dport: sport, flags: 'A' }).build().subarray(0, 28) }).build();

test('backup_only with the backup running: requests pass unchanged, nothing is created; control: without it they are served', () => {
  const d = engine();
  applySysctls(d.sysctl, { backupOnly: true });
  d.sync.backupRunning = true;
  assert.equal(d.sync.backupOnly, true);
  const r = send(d, syn(40000));
  assert.equal(r.v, Verdict.Pass);
  assert.ok(r.same, 'the packet is not rewritten');
  assert.equal(d.lastOutcome, Outcome.PassBackupOnly);
  assert.equal(d.connections(1000).length, 0);
  assert.equal(d.counters()['pass_backup_only'], 1);
  // control: the same SYN with backup_only 0 is scheduled to RS1
  applySysctls(d.sysctl, { backupOnly: false });
  const c = send(d, syn(40000));
  assert.equal(c.v, Verdict.Forward);
  assert.equal(c.out.readUInt32BE(16) >>> 0, ip(RS1) >>> 0);
  assert.equal(d.connections(1000).length, 1);
});

test('either condition alone serves: the sysctl without a backup daemon, a backup daemon without the sysctl', () => {
  for (const [sysctl, running] of [[true, false], [false, true]] as const) {
    const d = engine();
    applySysctls(d.sysctl, { backupOnly: sysctl });
    d.sync.backupRunning = running;
    assert.equal(d.sync.backupOnly, false);
    assert.equal(send(d, syn(40001)).v, Verdict.Forward, `sysctl ${sysctl} backup ${running}`);
  }
});

test('an existing connection: its requests pass, its replies are still translated (out-hook), its client-side ICMP errors pass', () => {
  const d = engine();
  assert.equal(send(d, syn(40002)).v, Verdict.Forward);
  applySysctls(d.sysctl, { backupOnly: true });
  d.sync.backupRunning = true;
  const req = send(d, ack(40002));
  assert.equal(req.v, Verdict.Pass);
  assert.ok(req.same);
  const rep = send(d, synAck(40002));
  assert.equal(rep.v, Verdict.Forward);
  assert.equal(rep.out.readUInt32BE(12) >>> 0, ip(VIP) >>> 0, 'source rewritten to the VIP');
  const icmp = send(d, frag(40002));
  assert.equal(icmp.v, Verdict.Pass);
  assert.equal(d.lastOutcome, Outcome.PassBackupOnly);
  // control: with the backup stopped the same error goes on to the real server
  d.sync.backupRunning = false;
  const icmp2 = send(d, frag(40002));
  assert.equal(icmp2.v, Verdict.Forward);
  assert.equal(icmp2.out.readUInt32BE(16) >>> 0, ip(RS1) >>> 0);
});

test('backup_only and the kernel fast path: connections withdrawn, DR way-out entries dropped at once and put back after', () => {
  const log: string[] = [];
  const port: OffloadPort = {
    offer: (c) => (log.push(`offer ${c}`), true),
    withdraw: (c, out) => (log.push(`withdraw ${c}`), out.clear()),
    route: (c) => log.push(`route ${c}`),
    unroute: (c) => log.push(`unroute ${c}`),
    dropRoutes: (cs) => log.push(`drop ${cs.join(',')}`),
  };
  const d = director({ offload: { port: () => port, after: 2 } });
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 80, fwd: Fwd.DROUTE });
  const r = (sport: number, flags: string) => ipv4({ src: CLIENT, dst: VIP }).tcp({ sport, dport: 80, flags }).build();
  send(d, r(41000, 'S'));
  const c = d.lastConn;
  send(d, r(41000, 'A'));
  send(d, r(41000, 'A'));
  assert.deepEqual(log, [`route ${c}`, `offer ${c}`]);
  applySysctls(d.sysctl, { backupOnly: true });
  d.sync.backupRunning = true;
  d.sync.suspendRoutes(true); // what the worker does when backupOnly changes
  assert.deepEqual(log.slice(2), [`withdraw ${c}`, `drop ${c}`], 'taken back from the kernel, its way-out entry gone');
  assert.equal(send(d, r(41000, 'A')).v, Verdict.Pass, 'its packets pass to the host stack');
  d.sync.suspendRoutes(true);
  assert.equal(log.length, 4, 'suspending twice does nothing');
  d.sync.backupRunning = false;
  d.sync.suspendRoutes(false);
  assert.deepEqual(log.slice(4), [`route ${c}`], 'routed again when backup_only ends');
  // control: served again, through the engine
  assert.equal(send(d, r(41000, 'A')).v, Verdict.Forward);
});
