/** The monitor's keepalived semantics on a fake clock with scripted check results. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { HealthMonitor, type ServerHealth } from './monitor.js';
import type { CheckerSpec } from './checker-spec.js';
import type { CheckResult } from './checks.js';

class FakeClock {
  now = 0;
  timers: { at: number; fn: () => void; id: number }[] = [];
  #id = 0;
  setTimeout(fn: () => void, ms: number) {
    const t = { at: this.now + ms, fn, id: ++this.#id };
    this.timers.push(t);
    return t.id;
  }
  clearTimeout(id: unknown) {
    this.timers = this.timers.filter((t) => t.id !== id);
  }
  /** Run timers up to `ms` later, letting the async checks settle. */
  async advance(ms: number) {
    const end = this.now + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const t = this.timers[0];
      if (!t || t.at > end) break;
      this.timers.shift();
      this.now = t.at;
      t.fn();
      for (let k = 0; k < 5; k++) await Promise.resolve();
    }
    this.now = end;
  }
}

const checker = (o: Partial<CheckerSpec> = {}): CheckerSpec => ({ type: 'TCP_CHECK', connectIp: 1, connectPort: 80, connectTimeout: 1, retry: 2, delayBeforeRetry: 1, delayLoop: 5, warmup: 0, alpha: false, urls: [], miscTimeout: 5, miscDynamic: false, requireReply: false, dnsType: 'A', dnsName: '.', heloName: 'x', ...o });

test('an up checker is retried `retry` times before it goes down; the first success brings it back', async () => {
  const clock = new FakeClock();
  const results: boolean[] = [true, false, false, false, false, true];
  const calls: number[] = [];
  const events: [number, ServerHealth][] = [];
  const m = new HealthMonitor(
    async (): Promise<CheckResult> => {
      calls.push(clock.now);
      const ok = results.shift() ?? true;
      return { ok, reason: ok ? 'ok' : 'refused' };
    },
    (_k, h) => events.push([clock.now, h]),
    clock,
  );
  assert.equal(m.add('rs', [checker()], false).alive, true);
  await clock.advance(30_000);
  // t=0 ok; t=5 fail (retry 1 after 1 s); t=6 fail (retry 2); t=7 fail -> down; t=12 fail; t=17 ok -> up
  assert.deepEqual(calls.slice(0, 6), [0, 5000, 6000, 7000, 12000, 17000]);
  assert.deepEqual(events.map(([t, h]) => [t, h.alive, h.reason]), [
    [7000, false, 'TCP_CHECK: refused'],
    [17000, true, 'TCP_CHECK: ok'],
  ]);
  m.stop();
});

test('alpha starts down; all checkers must pass; a dynamic MISC_CHECK weight is reported', async () => {
  const clock = new FakeClock();
  const events: ServerHealth[] = [];
  let miscCode = 7;
  const m = new HealthMonitor(
    async (c): Promise<CheckResult> => (c.type === 'MISC_CHECK' ? { ok: true, reason: `exit ${miscCode}`, weight: miscCode === 0 ? null : miscCode - 2 } : { ok: true, reason: 'ok' }),
    (_k, h) => events.push(h),
    clock,
  );
  assert.equal(m.add('rs', [checker({ delayLoop: 2 }), checker({ type: 'MISC_CHECK', miscDynamic: true, delayLoop: 2 })], true).alive, false);
  await clock.advance(1);
  assert.equal(events.at(-1)?.alive, true, 'up once every checker passed');
  assert.equal(events.at(-1)?.dynamicWeight, 5);
  const n = events.length;
  await clock.advance(4000);
  assert.equal(events.length, n, 'no event while nothing changes');
  miscCode = 3;
  await clock.advance(2000);
  assert.equal(events.at(-1)?.dynamicWeight, 1);
  miscCode = 0; // exit 0: back to the configured weight
  await clock.advance(2000);
  assert.equal(events.at(-1)?.alive, true);
  assert.equal(events.at(-1)?.dynamicWeight, undefined);
  m.stop();
});

test('a check not run for want of the director\'s resources (EMFILE) keeps the state, uses no retry, is counted; the next run decides', async () => {
  const clock = new FakeClock();
  // up; then 3 runs without a file descriptor; then a real failure and its retries
  const script: CheckResult[] = [
    { ok: true, reason: 'ok' },
    { ok: false, notRun: 'EMFILE', reason: 'TCP_CHECK not run: EMFILE' },
    { ok: false, notRun: 'EMFILE', reason: 'TCP_CHECK not run: EMFILE' },
    { ok: false, notRun: 'ENFILE', reason: 'TCP_CHECK not run: ENFILE' },
    { ok: false, reason: 'refused' },
    { ok: false, reason: 'refused' },
    { ok: false, reason: 'refused' },
  ];
  const calls: number[] = [];
  const events: [number, boolean][] = [];
  const notRun: Record<string, number> = {};
  const m = new HealthMonitor(
    async () => {
      calls.push(clock.now);
      return script.shift() ?? { ok: true, reason: 'ok' };
    },
    (_k, h) => events.push([clock.now, h.alive]),
    clock,
    notRun,
  );
  m.add('rs', [checker()], false);
  await clock.advance(40_000);
  // t=0 ok; t=5,10,15 not run (delay_loop each, no retry used); t=20 refused -> retry at 21, 22 -> down at 22
  assert.deepEqual(calls.slice(0, 7), [0, 5000, 10000, 15000, 20000, 21000, 22000]);
  assert.deepEqual(events[0], [22000, false], 'never marked down by the checks that did not run');
  assert.deepEqual(notRun, { EMFILE: 2, ENFILE: 1 });
  m.stop();
});

test('control: the same failures without notRun take the server down at the third', async () => {
  const clock = new FakeClock();
  const script: CheckResult[] = [{ ok: true, reason: 'ok' }, ...Array.from({ length: 3 }, () => ({ ok: false, reason: 'EMFILE' }))];
  const events: [number, boolean][] = [];
  const m = new HealthMonitor(async () => script.shift() ?? { ok: true, reason: 'ok' }, (_k, h) => events.push([clock.now, h.alive]), clock);
  m.add('rs', [checker()], false);
  await clock.advance(8_000);
  assert.deepEqual(events, [[7000, false]]);
  m.stop();
});
