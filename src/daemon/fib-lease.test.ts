import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import { FibLease, SETTLE_MS, type LeaseIo, type LeaseMaps } from './fib-lease.js';

const KERNEL = [
  { priority: 0, src: 'all', table: 'local' },
  { priority: 32766, src: 'all', table: 'main' },
  { priority: 32767, src: 'all', table: 'default' },
];
const plan = () => ({ pref: 1000, services: [{ addr: 0xcb00710a }], servers: [{ addr: 0xc000020b }] });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Fake maps (the lease's last value), `ip` (rules the test sets; a gate to hold a check) and monitor. */
function harness() {
  const maps = { until: -1n, locals: [] as number[], closed: false } as { until: bigint; locals: number[]; closed: boolean };
  const m: LeaseMaps = {
    lease: (u) => void (maps.until = u),
    setLocals: (a) => void (maps.locals = [...a]),
    close: () => void (maps.closed = true),
  };
  let rules: object[] = KERNEL;
  let gate: Promise<void> | null = null;
  let monitor: (EventEmitter & { stdout: EventEmitter; kill(): void }) | null = null;
  const io: LeaseIo = {
    ipJson: async <T>(args: string[]) => {
      const printed = args[0] === 'rule' ? rules : [{ ifname: 'eth0', addr_info: [{ family: 'inet', local: '192.0.2.1' }] }]; // read now ...
      if (gate) await gate; // ... returned later
      return printed as T;
    },
    monitor: () => {
      const p = Object.assign(new EventEmitter(), { stdout: new EventEmitter(), kill: () => p.emit('exit', null) });
      monitor = p;
      return p as unknown as ChildProcess;
    },
  };
  const logs: string[] = [];
  const lease = new FibLease(m, plan, { info: (x) => logs.push(x), warn: (x) => logs.push(x) }, io);
  return {
    lease,
    maps,
    logs,
    setRules: (r: object[]) => void (rules = r),
    hold: () => {
      let open!: () => void;
      gate = new Promise((r) => (open = r));
      return () => {
        gate = null;
        open();
      };
    },
    line: () => monitor!.stdout.emit('data', Buffer.from('change\n')),
    die: () => monitor!.emit('exit', 1),
  };
}
const granted = (u: bigint) => u > process.hrtime.bigint();
/** A harness whose lease was started and has finished its first check. */
async function started() {
  const h = harness();
  h.lease.start();
  await h.lease.recheck();
  return h;
}

test('granted after a check that passes; the local set written; stop revokes and closes', async () => {
  const h = await started();
  assert.ok(granted(h.maps.until), 'a lease in the future');
  assert.deepEqual(h.maps.locals, [0xc0000201]);
  assert.equal(h.lease.counters()['fib_direct'], 1);
  h.lease.stop();
  assert.equal(h.maps.until, 0n);
  assert.ok(h.maps.closed);
});

test('a monitor line revokes at once; the settled check grants again, or not when a rule came', async () => {
  const h = await started();
  h.line();
  assert.equal(h.maps.until, 0n, 'revoked at once');
  await sleep(SETTLE_MS + 50);
  assert.ok(granted(h.maps.until), 'granted again: nothing changed that matters');
  h.setRules([...KERNEL, { priority: 100, src: 'all', dst: '192.0.2.11', action: 'blackhole' }]);
  h.line();
  await sleep(SETTLE_MS + 50);
  assert.equal(h.maps.until, 0n, 'a foreign rule keeps it revoked');
  assert.match(h.logs.at(-1)!, /walk the policy rules \(policy rule 100/);
  assert.equal(h.lease.counters()['fib_revokes'], 2);
  h.lease.stop();
});

test('a check that a change overtook grants nothing; the check the change scheduled decides', async () => {
  const h = await started();
  h.line();
  const open = h.hold(); // the settled check's `ip` hangs ...
  await sleep(SETTLE_MS + 30);
  h.setRules([...KERNEL, { priority: 5, src: 'all', table: 'main' }]);
  h.line(); // ... while a rule is added
  open(); // what that `ip` printed predates the rule
  await sleep(10);
  assert.equal(h.maps.until, 0n, 'no lease from the overtaken check');
  await sleep(SETTLE_MS + 50);
  assert.equal(h.maps.until, 0n, 'the next check sees the rule');
  h.lease.stop();
});

test('no lease while the monitor is gone; it comes back with the monitor', async () => {
  const h = await started();
  h.die();
  assert.equal(h.maps.until, 0n, 'revoked when the monitor ended');
  await h.lease.recheck();
  assert.equal(h.maps.until, 0n, 'not granted unwatched');
  await sleep(1100); // restarted after a second, then checked
  await h.lease.recheck();
  assert.ok(granted(h.maps.until));
  h.lease.stop();
});
