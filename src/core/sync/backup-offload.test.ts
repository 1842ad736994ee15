/**
 * A backup's synced entries and the kernel fast path (offload.ts), with two engines and a
 * recording port on the backup: applying a record announces a direct-routing entry's way out
 * at once (OffloadPort.route, before any of its packets: the first packet after a takeover
 * must reach its server) and a NAT entry not at all; after a takeover each synced connection is
 * offered to the kernel after `after` packets through the backup's engine, as a connection the
 * backup scheduled itself. The integration tests (ha-failover*.test.ts) show the same on real
 * kernels. Control: a backup without the records routes and offers nothing for those packets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ipv4 } from '../../wire/build.js';
import { CLIENT, director, ip, key, RS1, RS3, TCP, VIP } from '../../../test/support/bed.js';
import { capture, send, tcp } from '../../../test/support/sync-bed.js';
import { SyncReason } from '../../wire/ipvs-sync/reasons.js';
import type { Director } from '../director.js';
import type { OffloadPort, OffloadReport } from '../offload.js';
import { Fwd } from '../service.js';
import { Verdict } from '../verdict.js';

const T0 = 10_000;
const AFTER = 3;

/** A port that records calls by the entries' client ports. */
class RecordingPort implements OffloadPort {
  log: string[] = [];
  d: Director | null = null;
  #say(what: string, c: number): void {
    this.log.push(`${what} ${this.d!.conns.cport(c)}`);
  }
  offer(c: number): boolean {
    this.#say('offer', c);
    return true;
  }
  withdraw(c: number, out: OffloadReport): void {
    this.#say('withdraw', c);
    out.lastSeenMs = -1;
  }
  route(c: number): void {
    this.#say('route', c);
  }
  unroute(c: number): void {
    this.#say('unroute', c);
  }
}

/** VIP:80 NAT to RS1:8080, VIP:81 DR to RS3:81; the backup with a recording port. */
function configure(d: Director): Director {
  d.addService({ ...key(TCP, VIP, 80), scheduler: 'rr' });
  d.addDest(key(TCP, VIP, 80), { addr: ip(RS1), port: 8080 });
  d.addService({ ...key(TCP, VIP, 81), scheduler: 'rr' });
  d.addDest(key(TCP, VIP, 81), { addr: ip(RS3), port: 81, fwd: Fwd.DROUTE });
  return d;
}

function backup(): { b: Director; port: RecordingPort } {
  const port = new RecordingPort();
  const b = configure(director({ seed: 2, offload: { port: () => port, after: AFTER } }));
  port.d = b;
  return { b, port };
}

/** The master's datagrams for a NAT connection (cport 40001) and a DR one (40002), ESTABLISHED. */
function announced(): Buffer[] {
  const m = configure(director({ seed: 1 }));
  const cap = capture();
  m.sync.startMaster({ syncid: 9, maxlen: 1472 }, cap.sink);
  send(m, tcp(CLIENT, 40001, 'S', VIP, 80), T0);
  send(m, ipv4({ src: RS1, dst: CLIENT }).tcp({ sport: 8080, dport: 40001, flags: 'SA' }).build(), T0);
  for (const f of ['A', 'PA']) send(m, tcp(CLIENT, 40001, f, VIP, 80), T0);
  for (const f of ['S', 'A', 'PA']) send(m, tcp(CLIENT, 40002, f, VIP, 81), T0);
  m.sync.flush();
  assert.ok(cap.datagrams.length > 0);
  return cap.datagrams;
}

/** `n` mid-stream packets of each flow through engine d (a request, and for NAT a reply). */
function traffic(d: Director, n: number, now: number): number[] {
  const v: number[] = [];
  for (let i = 0; i < n; i++) {
    v.push(send(d, tcp(CLIENT, 40001, 'PA', VIP, 80), now).v);
    v.push(send(d, ipv4({ src: RS1, dst: CLIENT }).tcp({ sport: 8080, dport: 40001, flags: 'PA' }).build(), now).v);
    v.push(send(d, tcp(CLIENT, 40002, 'PA', VIP, 81), now).v);
  }
  return v;
}

test('backup: a synced DR entry gets its way out when applied; synced entries are offered after `after` packets', () => {
  const datagrams = announced();
  const { b, port } = backup();
  for (const g of datagrams) assert.equal(b.sync.receive(g, 0, g.length, 9, T0), SyncReason.Ok);
  assert.deepEqual(port.log, ['route 40002'], 'applied: the DR entry routed, before any packet; the NAT one needs nothing');
  port.log.length = 0;
  // the takeover: packets of both flows reach the backup's engine
  const v = traffic(b, AFTER + 2, T0 + 1000);
  assert.ok(v.every((x) => x === Verdict.Forward), `every packet forwarded: ${v.join(',')}`);
  assert.deepEqual(port.log.sort(), ['offer 40001', 'offer 40002'], 'each offered once, after its first packets');
  assert.equal(b.counters()['offloaded'], 2);
});

test('control: a backup without the records routes and offers nothing for those packets', () => {
  const { b, port } = backup();
  const v = traffic(b, AFTER + 2, T0 + 1000);
  assert.ok(v.every((x) => x !== Verdict.Forward), `nothing forwarded: ${v.join(',')}`);
  assert.deepEqual(port.log, []);
  assert.equal(b.counters()['offloaded'], 0);
});
