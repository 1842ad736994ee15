/**
 * expire_nodest_conn's flush after a deletion (ip_vs_expire_nodest_conn_flush, queued by
 * __ip_vs_del_dest since Linux 5.9): with the sysctl on, the entries of a deleted server go at
 * once, idle ones too, not only at their next packet; with it off they stay (the control).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../wire/build.js';
import { CLIENT, CLIENT2, director, ip, key, RS1, RS2, TCP, VIP } from '../../../test/support/bed.js';
import { applyOps } from '../rule-ops.js';
import type { Director } from '../director.js';

const k80 = key(TCP, VIP, 80);
const k81 = key(TCP, VIP, 81);
const send = (d: Director, src: string, sport: number, flags: string, now: number, dport = 80) => {
  const b = Buffer.from(ipv4({ src, dst: VIP }).tcp({ sport, dport, flags }).build());
  d.process(b, 0, b.length, now, 0);
  return b.readUInt32BE(16);
};
/** two servers, two connections each (rr), one idle entry on each server after that */
function twoServers(expireNodestConn: boolean): Director {
  const d = director({ sysctl: { expireNodestConn } });
  d.addService({ ...k80, scheduler: 'rr' });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  d.addDest(k80, { addr: ip(RS2), port: 8080 });
  for (let p = 1; p <= 4; p++) send(d, CLIENT, p, 'S', 0);
  return d;
}
const toServer = (d: Director, rs: string) => d.connections(1).filter((c) => c.daddr === ip(rs) >>> 0).length;

test('expire_nodest_conn=1: deleting a server expires its idle entries at once, counted, the others stay', () => {
  const d = twoServers(true);
  assert.deepEqual([toServer(d, RS1), toServer(d, RS2)], [2, 2]);
  applyOps(d, [{ op: 'deleteDest', service: k80, addr: ip(RS1), port: 8080 }]);
  assert.deepEqual([toServer(d, RS1), toServer(d, RS2)], [0, 2], 'no packet needed');
  assert.equal(d.counters()['expired_nodest'], 2);
  assert.equal(d.trash.length, 0, 'the deleted server is freed with its last entry');
});

test('expire_nodest_conn=0 (control): the deleted server\'s entries stay until their timers', () => {
  const d = twoServers(false);
  applyOps(d, [{ op: 'deleteDest', service: k80, addr: ip(RS1), port: 8080 }]);
  assert.deepEqual([toServer(d, RS1), toServer(d, RS2)], [2, 2]);
  assert.equal(d.counters()['expired_nodest'], 0);
  assert.equal(d.trash.length, 1);
  assert.equal(d.expireNodestConns(), 0, 'the flush does nothing with the sysctl off');
});

test('deleting a whole service flushes its entries; a change that deletes nothing flushes nothing', () => {
  const d = twoServers(true);
  d.addService({ ...k81, scheduler: 'rr' });
  d.addDest(k81, { addr: ip(RS1), port: 8080 });
  send(d, CLIENT2, 9, 'S', 0, 81);
  // the sysctl was on all along, but only a deletion runs the flush: nothing here is deleted
  applyOps(d, [{ op: 'editDest', service: k80, dest: { addr: ip(RS1), port: 8080, weight: 3 } }]);
  assert.equal(d.conns.count, 5);
  applyOps(d, [{ op: 'deleteService', service: k80 }]);
  assert.equal(d.conns.count, 1, 'the other service\'s entry stays');
  assert.equal(d.counters()['expired_nodest'], 4);
});

test('a persistence template goes with the last entry it controlled', () => {
  const d = director({ sysctl: { expireNodestConn: true } });
  d.addService({ ...k80, scheduler: 'rr', persistent: 300 });
  d.addDest(k80, { addr: ip(RS1), port: 8080 });
  send(d, CLIENT, 1, 'S', 0);
  send(d, CLIENT, 2, 'S', 0);
  assert.equal(d.conns.count, 3, 'two entries and their template');
  applyOps(d, [{ op: 'deleteDest', service: k80, addr: ip(RS1), port: 8080 }]);
  assert.equal(d.conns.count, 0);
  assert.equal(d.counters()['templates_expired'], 1);
  assert.equal(d.counters()['expired_nodest'], 3);
});
