/**
 * Real packets through a real director (ulvsd in the test bed): schedulers spread HTTP as they
 * should, real servers see the client's own address, port mapping, persistence, UDP, and an
 * ICMP port unreachable from a real server reaching the client translated.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';

const V = LAB.VIP;
const RS = [0, 1, 2].map(LAB.realServer);
const rules = [
  `-A -t ${V}:80 -s rr`,
  ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`),
  `-A -t ${V}:81 -s wrr`,
  ...RS.map((a, i) => `-a -t ${V}:81 -r ${a}:8080 -m -w ${3 - i}`),
  `-A -t ${V}:82 -s sh`,
  ...RS.map((a) => `-a -t ${V}:82 -r ${a}:8080 -m`),
  `-A -t ${V}:443 -s rr -p 300`,
  ...RS.map((a) => `-a -t ${V}:443 -r ${a}:8080 -m`),
  `-A -u ${V}:53 -s rr`,
  ...RS.map((a) => `-a -u ${V}:53 -r ${a}:5353 -m`),
  `-A -u ${V}:54 -s rr`,
  `-a -u ${V}:54 -r ${RS[0]}:5999 -m`,
].join('\n');

const tally = (rs: Record<string, unknown>[]) => {
  const m: Record<string, number> = {};
  for (const r of rs) m[String(r['server'])] = (m[String(r['server'])] ?? 0) + 1;
  return m;
};

describe('VS/NAT through ulvsd in network namespaces', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  before(async () => {
    bed = await new DirectorBed({ rules, realServers: 3, httpPort: 8080, udpPort: 5353 }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('rr: 30 HTTP requests, 10 per real server; each saw the client itself (port 80 -> 8080)', () => {
    const r = bed.client(['--http', '80', '--requests', '30']);
    assert.equal(r.filter((x) => x['ok']).length, 30, JSON.stringify(r.filter((x) => !x['ok'])));
    assert.deepEqual(tally(r), { rs1: 10, rs2: 10, rs3: 10 });
    for (const x of r) assert.match(String(x['client']), new RegExp(`^${LAB.client(0).replace(/\./g, '\\.')}:\\d+$`));
  });

  test('wrr: weights 3,2,1 give 15,10,5 of 30', () => {
    const r = bed.client(['--http', '81', '--requests', '30']);
    assert.deepEqual(tally(r), { rs1: 15, rs2: 10, rs3: 5 });
  });

  test('sh: one client address always gets the same real server', () => {
    const r = bed.client(['--http', '82', '--requests', '12']);
    assert.equal(Object.keys(tally(r)).length, 1, JSON.stringify(tally(r)));
    assert.equal(r.filter((x) => x['ok']).length, 12);
  });

  test('persistence: rr with -p 300 keeps a client on one real server', () => {
    const r = bed.client(['--http', '443', '--requests', '12']);
    assert.equal(r.filter((x) => x['ok']).length, 12);
    assert.equal(Object.keys(tally(r)).length, 1, JSON.stringify(tally(r)));
  });

  test('UDP request/response, 53 -> 5353, spread by rr, client address preserved', () => {
    const r = bed.client(['--udp', '53', '--queries', '9']);
    assert.equal(r.filter((x) => x['ok']).length, 9, JSON.stringify(r));
    assert.deepEqual(tally(r), { rs1: 3, rs2: 3, rs3: 3 });
    for (const x of r) assert.ok(String(x['client']).startsWith(`${LAB.client(0)}:`));
  });

  test('ICMP port unreachable from a real server reaches the client as its own (ECONNREFUSED)', async () => {
    const r = bed.client(['--udp', '54', '--queries', '2', '--connected', '--timeout', '3000']);
    assert.deepEqual(r.map((x) => x['error']), ['ECONNREFUSED', 'ECONNREFUSED'], JSON.stringify(r));
    assert.match(await bed.dump(), /forward_icmp_out=[1-9]/);
  });
});
