/**
 * Connection sync of a firewall-mark service (ip_vs_sync_conn_v1 carries cp->fwmark;
 * ip_vs_proc_conn finds the service by it): the master's records of a persistent fwmark
 * service carry the mark (the template as protocol IP with the mark as address), and a backup
 * with the same service applies them bound to the master's server, so a new connection of that
 * client to another marked port goes there. Control: a backup without the records picks by its
 * own scheduler; a record whose mark names no service here is skipped and counted.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLIENT, director, ip, RS1, RS2, RS3 } from '../../../test/support/bed.js';
import { capture, dstOf, send, tcp } from '../../../test/support/sync-bed.js';
import { SyncDecoder } from '../../wire/ipvs-sync/decode.js';
import { FixedMark } from '../mark-source.js';
import { fwmarkKey } from '../service.js';
import { Verdict } from '../verdict.js';
import type { Director } from '../director.js';

const T0 = 10_000;
const marks = new FixedMark();
marks.mark = 1;

function configure(d: Director, mark = 1): Director {
  d.marks = marks;
  d.addService({ ...fwmarkKey(mark), scheduler: 'rr', persistent: 300 });
  for (const rs of [RS1, RS2, RS3]) d.addDest(fwmarkKey(mark), { addr: ip(rs), port: 0 });
  return d;
}

test('sync: a fwmark service\'s connection and template carry the mark; a backup binds them and keeps the client on the server', () => {
  const m = configure(director({ seed: 1 }));
  const cap = capture();
  m.sync.startMaster({ syncid: 3, maxlen: 1472 }, cap.sink);
  send(m, tcp('192.0.2.100', 1, 'S', undefined, 80), T0); // the first pick goes to another client
  const syn = send(m, tcp(CLIENT, 40000, 'S', undefined, 80), T0);
  assert.equal(syn.v, Verdict.Forward);
  const server = dstOf(syn.out).split(':')[0]!;
  for (const f of ['A', 'PA', 'PA']) send(m, tcp(CLIENT, 40000, f, undefined, 80), T0);
  m.sync.flush();
  const recs: { proto: number; fwmark: number; vaddr: number; vport: number }[] = [];
  const dec = new SyncDecoder();
  for (const g of cap.datagrams) dec.decode(g, 0, g.length, 0, (r) => (recs.push({ proto: r.protocol, fwmark: r.fwmark, vaddr: r.vaddr >>> 0, vport: r.vport }), true));
  assert.ok(recs.length >= 2, JSON.stringify(recs));
  assert.ok(recs.every((r) => r.fwmark === 1), `every record carries mark 1: ${JSON.stringify(recs)}`);
  assert.ok(recs.some((r) => r.proto === 0 && r.vaddr === 1 && r.vport === 0), 'the template: protocol IP, the mark as address');

  const b = configure(director({ seed: 2 }));
  for (const g of cap.datagrams) b.sync.receive(g, 0, g.length, 3, T0);
  const c = b.sync.counters();
  assert.equal(c['sync_apply_CreatedUnbound'] ?? 0, 0, JSON.stringify(c));
  const next = send(b, tcp(CLIENT, 40001, 'S', undefined, 443), T0 + 1000);
  assert.equal(next.v, Verdict.Forward);
  assert.equal(dstOf(next.out), `${server}:443`, 'the synced template sends the client\'s https to its http server');
  const fresh = configure(director({ seed: 2 }));
  assert.notEqual(dstOf(send(fresh, tcp(CLIENT, 40001, 'S', undefined, 443), T0 + 1000).out), `${server}:443`, 'control: without the records another server');

  const other = configure(director({ seed: 2 }), 2); // mark 2 only: the records' mark 1 is unknown
  for (const g of cap.datagrams) other.sync.receive(g, 0, g.length, 3, T0);
  assert.equal(other.sync.counters()['sync_apply_SkipFwmark'], recs.length);
  assert.equal(other.connections(T0).length, 0);
});
