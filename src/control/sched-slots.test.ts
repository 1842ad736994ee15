import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SchedStateSlots } from './sched-slots.js';
import { SLOT_INTS } from '../core/sched-state.js';
import type { RuleOp } from '../core/rule-ops.js';

const svc = (port: number, scheduler = 'rr') => ({ proto: 6, addr: 0xcb00710a, port, scheduler });
const slotOf = (o: RuleOp) => ('spec' in o && 'stateSlot' in o.spec ? o.spec.stateSlot : undefined);

test('scheduler state slots: fresh zeroed slot per new scheduler, kept across edits, released after commit', () => {
  const s = new SchedStateSlots(3);
  const a = s.assign([
    { op: 'addService', spec: svc(80) },
    { op: 'addService', spec: svc(81, 'wrr') },
  ]);
  assert.deepEqual(a.ops.map(slotOf), [0, 1]);
  a.commit();
  s.state[0 * SLOT_INTS] = 7; // slot 0 in use by :80
  const e = s.assign([{ op: 'editService', spec: { ...svc(80), persistent: 60 } }]);
  assert.deepEqual(e.ops.map(slotOf), [0], 'same scheduler: same slot');
  e.commit();
  const c = s.assign([{ op: 'editService', spec: svc(80, 'wrr') }]);
  assert.deepEqual(c.ops.map(slotOf), [2], 'new scheduler: new slot');
  assert.throws(() => s.assign([{ op: 'addService', spec: svc(82) }]), { name: 'IpvsError', code: 'ENOSPC', message: /^No space left on device \(no scheduler state slot left \(3 in all/ });
  c.commit(); // slot 0 released
  const d = s.assign([{ op: 'addService', spec: svc(82) }]);
  assert.deepEqual(d.ops.map(slotOf), [0]);
  assert.equal(s.state[0 * SLOT_INTS], 0, 'a reused slot starts zeroed');
  d.rollback();
  const del = s.assign([{ op: 'deleteService', service: svc(81) }]);
  del.commit();
  assert.equal(s.used, 1);
  assert.deepEqual(
    s.assign([
      { op: 'addService', spec: svc(90) },
      { op: 'addService', spec: svc(91) },
    ]).ops.map(slotOf),
    [1, 0],
  );
});
