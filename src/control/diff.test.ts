import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyOps, diffRules, loadRules } from './diff.js';
import { parseRules } from './rules.js';
import { director, ip } from '../../test/support/bed.js';
import { listServices } from './listing.js';

const A = parseRules(['-A -t 203.0.113.10:80 -s rr', '-a -t 203.0.113.10:80 -r 192.0.2.11:8080 -m', '-a -t 203.0.113.10:80 -r 192.0.2.12:8080 -m', '-A -u 203.0.113.10:53 -s rr', '-a -u 203.0.113.10:53 -r 192.0.2.11:5353 -m'].join('\n'));
const B = parseRules(['-A -t 203.0.113.10:80 -s wlc', '-a -t 203.0.113.10:80 -r 192.0.2.11:8080 -m -w 0', '-a -t 203.0.113.10:80 -r 192.0.2.13:8080 -m', '-A -t 203.0.113.10:443 -s sh -p 60', '-a -t 203.0.113.10:443 -r 192.0.2.11:443 -m'].join('\n'));

test('a diff applied to a director holding the old rules gives the same state as loading the new ones', () => {
  const d1 = director();
  loadRules(d1, A);
  const ops = diffRules(A, B);
  assert.deepEqual(ops.map((o) => o.op), ['deleteDest', 'deleteService', 'editService', 'addService', 'editDest', 'addDest', 'addDest']);
  applyOps(d1, ops);
  const d2 = director();
  loadRules(d2, B);
  const norm = (s: string) => s.split('\n').sort().join('\n');
  assert.equal(norm(listServices(d1.snapshot())), norm(listServices(d2.snapshot())));
  assert.deepEqual(diffRules(B, B), []);
});

test('a reload that only changes a weight leaves the server object (and its connections) alone', () => {
  const d = director();
  loadRules(d, A);
  const before = d.services[0]!.dests.find((x) => x.addr === ip('192.0.2.11'))!;
  const C = parseRules(['-A -t 203.0.113.10:80 -s rr', '-a -t 203.0.113.10:80 -r 192.0.2.11:8080 -m -w 0', '-a -t 203.0.113.10:80 -r 192.0.2.12:8080 -m', '-A -u 203.0.113.10:53 -s rr', '-a -u 203.0.113.10:53 -r 192.0.2.11:5353 -m'].join('\n'));
  const ops = diffRules(A, C);
  assert.deepEqual(ops, [{ op: 'editDest', service: { proto: 6, addr: ip('203.0.113.10'), port: 80 }, dest: C.dests[0]!.dest }]);
  applyOps(d, ops);
  assert.equal(d.services[0]!.dests.find((x) => x.addr === ip('192.0.2.11')), before);
  assert.equal(before.weight, 0);
});
