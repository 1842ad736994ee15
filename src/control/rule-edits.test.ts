/** The ipvsadm commands as pure edits: ipvsadm's error for each refusal, the input never changed. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addDest, addService, deleteDest, deleteService, editDest, editService } from './rule-edits.js';
import { formatRules, parseRules } from './rules.js';

const base = () => parseRules('-A -t 203.0.113.10:80 -s rr\n-a -t 203.0.113.10:80 -r 192.0.2.11:8080 -m -w 1\n-A -u 203.0.113.10:53 -s rr\n');
const svc80 = { proto: 6, addr: 0xcb00710a, port: 80 };
const svc81 = { ...svc80, port: 81 };
const rs = (last: number, weight = 1) => ({ addr: 0xc0000200 + last, port: 8080, fwd: 0, weight });

test('each edit returns the next rules and leaves its input alone', () => {
  const r = base();
  const before = formatRules(r);
  const steps = [
    addService(r, { ...svc81, scheduler: 'wlc' }),
    editService(r, { ...svc80, scheduler: 'wrr' }),
    deleteService(r, svc80),
    addDest(r, svc80, rs(12, 3)),
    editDest(r, svc80, rs(11, 0)),
    deleteDest(r, svc80, rs(11).addr, 8080),
  ].map(formatRules);
  assert.equal(formatRules(r), before);
  assert.match(steps[0]!, /^-A -t 203\.0\.113\.10:81 -s wlc$/m);
  assert.match(steps[1]!, /^-A -t 203\.0\.113\.10:80 -s wrr$/m);
  assert.doesNotMatch(steps[2]!, /:80 /, 'the service and its servers');
  assert.match(steps[3]!, /^-a -t 203\.0\.113\.10:80 -r 192\.0\.2\.12:8080 -m -w 3$/m);
  assert.match(steps[4]!, /^-a -t 203\.0\.113\.10:80 -r 192\.0\.2\.11:8080 -m -w 0$/m);
  assert.doesNotMatch(steps[5]!, /192\.0\.2\.11/);
});

test('refusals carry ipvsadm errno and message', () => {
  const r = base();
  const cases: [() => unknown, string, string][] = [
    [() => addService(r, { ...svc80 }), 'EEXIST', 'Service already exists'],
    [() => editService(r, { ...svc81 }), 'ESRCH', 'No such service'],
    [() => deleteService(r, svc81), 'ESRCH', 'No such service'],
    [() => addDest(r, svc81, rs(12)), 'ESRCH', 'Service not defined'],
    [() => addDest(r, svc80, rs(11)), 'EEXIST', 'Destination already exists'],
    [() => editDest(r, svc80, rs(12)), 'ENOENT', 'No such destination'],
    [() => deleteDest(r, svc80, rs(12).addr, 8080), 'ENOENT', 'No such destination'],
    [() => deleteDest(r, { ...svc80, proto: 17 }, rs(11).addr, 8080), 'ESRCH', 'Service not defined'],
  ];
  for (const [f, code, message] of cases) assert.throws(f, { code, message });
});
