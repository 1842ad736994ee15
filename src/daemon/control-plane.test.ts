/**
 * The control plane without root: fake workers and kernel, the real diff, validation and
 * scheduler slots. A refused change (by the mutation, validation, staging or a worker) changes
 * nothing and rolls back what was staged; the queue goes on after a failure.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IpvsError } from '../core/errors.js';
import type { RuleOp } from '../core/rule-ops.js';
import { addDest, addService } from '../control/rule-edits.js';
import { parseRules, type Rules } from '../control/rules.js';
import { SchedStateSlots } from '../control/sched-slots.js';
import { ControlPlane, validateOnScratch, type ControlTargets } from './control-plane.js';

const V = 0xcb00710a; // 203.0.113.10
const initial = () => parseRules('-A -t 203.0.113.10:80 -s rr\n-a -t 203.0.113.10:80 -r 192.0.2.11:8080 -m\n');

/** Fakes that record what happened, and fail where told to. */
function harness(o: { failApply?: boolean; failStage?: boolean } = {}) {
  const calls: string[] = [];
  const applied: RuleOp[][] = [];
  const slots = new SchedStateSlots(4);
  slots.assign([{ op: 'addService', spec: initial().services[0]! }]).commit();
  const targets: ControlTargets = {
    validate: (r) => {
      calls.push('validate');
      validateOnScratch(r);
    },
    stageSteering: () => {
      calls.push('stage');
      if (o.failStage) throw new Error('steering program refused by the verifier');
      return { commit: () => calls.push('steering commit'), discard: () => calls.push('steering discard') };
    },
    applyOps: async (ops) => {
      calls.push('apply');
      await new Promise((r) => setTimeout(r, 1));
      if (o.failApply) throw new IpvsError('internal', 'worker 1 refused');
      applied.push(ops);
    },
    route: () => {
      calls.push('route');
      return { added: 1, removed: 0 };
    },
    log: (s) => calls.push(`log ${s}`),
  };
  return { cp: new ControlPlane(initial(), targets, slots), calls, applied, slots, o, targets };
}
const svc = (port: number, scheduler = 'rr') => ({ proto: 6, addr: V, port, scheduler });

test('a change is validated, staged, applied, committed, routed and logged, in that order', async () => {
  const h = harness();
  const ops = await h.cp.mutate((r) => addService(r, svc(81)));
  assert.deepEqual(ops.map((x) => x.op), ['addService']);
  assert.deepEqual(h.calls, ['validate', 'stage', 'apply', 'steering commit', 'route', 'log applied: services +1 -0 ~0, real servers +0 -0 ~0; routing rules +1 -0']);
  assert.equal(h.cp.rules().services.length, 2);
  assert.equal(h.slots.used, 2);
  const slot = (h.applied[0]![0] as { spec: { stateSlot?: number } }).spec.stateSlot;
  assert.equal(typeof slot, 'number', 'the worker gets the service with its scheduler slot');
});

test('a mutation that refuses changes nothing and rejects with its own error', async () => {
  const h = harness();
  const before = h.cp.rules();
  await assert.rejects(h.cp.mutate((r) => addService(r, svc(80))), { code: 'EEXIST', message: 'Service already exists' });
  assert.deepEqual(h.calls, []);
  assert.equal(h.cp.rules(), before);
});

test('a result that does not validate changes nothing', async () => {
  const h = harness();
  await assert.rejects(h.cp.mutate((r) => addService(r, svc(81, 'nosuch'))), { code: 'ENOENT' });
  assert.deepEqual(h.calls, ['validate']);
  assert.equal(h.slots.used, 1);
});

test('steering that cannot be staged changes nothing: no worker is asked', async () => {
  const h = harness({ failStage: true });
  await assert.rejects(h.cp.mutate((r) => addService(r, svc(81))), /refused by the verifier/);
  assert.deepEqual(h.calls, ['validate', 'stage']);
  assert.equal(h.slots.used, 1);
  assert.equal(h.cp.rules().services.length, 1);
});

test('a worker refusing the change rolls back steering and slots; the rules stay; the queue goes on', async () => {
  const h = harness({ failApply: true });
  const before = h.cp.rules();
  await assert.rejects(h.cp.mutate((r) => addService(r, svc(81))), /worker 1 refused/);
  assert.deepEqual(h.calls, ['validate', 'stage', 'apply', 'steering discard']);
  assert.equal(h.cp.rules(), before);
  assert.equal(h.slots.used, 1, 'the slot taken for the service is free again');
  // slots: 4 in all, 1 used; three more services fit only if the failed one gave its slot back
  h.o.failApply = false;
  for (const p of [81, 82, 83]) await h.cp.mutate((r) => addService(r, svc(p)));
  assert.equal(h.slots.used, 4);
  await assert.rejects(h.cp.mutate((r) => addService(r, svc(84))), /no scheduler state slot left/);
  assert.equal(h.calls.at(-1), 'steering discard', 'staged steering released when slots run out');
});

test('no difference, nothing applied and nothing logged', async () => {
  const h = harness();
  assert.deepEqual(await h.cp.mutate((r) => r), []);
  assert.deepEqual(await h.cp.replace(initial()), []);
  assert.deepEqual(h.calls, ['validate', 'validate']);
});

test('concurrent mutations each see the rules the one before left', async () => {
  const h = harness();
  const dest = (i: number) => ({ addr: 0xc0000200 + i, port: 8080, fwd: 0, weight: 1 });
  const key = { proto: 6, addr: V, port: 80 };
  const results = await Promise.allSettled([...Array.from({ length: 20 }, (_, i) => h.cp.mutate((r) => addDest(r, key, dest(20 + i)))), h.cp.mutate((r) => addDest(r, key, dest(11)))]);
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 20);
  const last = results.at(-1)!;
  assert.equal(last.status === 'rejected' && (last.reason as IpvsError).code, 'EEXIST');
  assert.equal(h.cp.rules().dests.length, 21);
  const replaced: Rules = { services: [], dests: [] };
  await h.cp.replace(replaced);
  assert.equal(h.cp.rules(), replaced);
  assert.equal(h.slots.used, 0);
});

test('serial runs steps one at a time, in order, past a failing one', async () => {
  const h = harness();
  const seen: number[] = [];
  const step = (i: number, fail = false) =>
    h.cp.serial(async () => {
      seen.push(i);
      await new Promise((r) => setTimeout(r, 3 - i));
      seen.push(i);
      if (fail) throw new Error(`step ${i}`);
    });
  const r = await Promise.allSettled([step(0), step(1, true), step(2)]);
  assert.deepEqual(seen, [0, 0, 1, 1, 2, 2]);
  assert.deepEqual(r.map((x) => x.status), ['fulfilled', 'rejected', 'fulfilled']);
});

test('published (the kernel set-up tables) follows a change after the workers applied it, with their ops; not after a refusal', async () => {
  const h = harness();
  const seen: { ops: RuleOp[]; services: number }[] = [];
  const cp = new ControlPlane(initial(), { ...h.targets, published: (ops, next) => (h.calls.push('published'), seen.push({ ops, services: next.services.length })) }, h.slots);
  await cp.mutate((r) => addService(r, svc(82)));
  assert.deepEqual(h.calls.filter((c) => !c.startsWith('log')), ['validate', 'stage', 'apply', 'steering commit', 'published', 'route']);
  assert.equal(seen[0]!.ops, h.applied[0], 'the very operations the workers were given (with their scheduler slots)');
  assert.equal(seen[0]!.services, 2);
  h.o.failApply = true;
  await assert.rejects(cp.mutate((r) => addService(r, svc(83))));
  assert.equal(seen.length, 1, 'a refused change publishes nothing');
});
