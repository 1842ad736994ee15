/**
 * syn_cookies=2: the decision from the counters, and the guard carrying it out on the map.
 * Controls: without TUN drops nothing switches on; the guard in mode 1 or 0 ignores the watch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { QUIET_S, SynCookieAuto, SynCookieWatch, UNANSWERED_PER_S, type CookieSample } from './syn-cookie-auto.js';
import { SynCookieGuard } from './syn-cookies.js';
import { parseRules } from '../control/rules.js';
import type { CookieService } from '../datapath/tun/syncookie-map.js';

const s = (tunDropped: number, cookiesSent = 0, cookiesValid = 0): CookieSample => ({ tunDropped, cookiesSent, cookiesValid });

test('on at the first period with TUN drops, held while cookies go unanswered, off after QUIET_S quiet periods', () => {
  const a = new SynCookieAuto();
  assert.equal(a.feed(s(0)), false, 'the first sample is the baseline');
  assert.equal(a.feed(s(0, 0, 0)), false, 'control: no drops, nothing happens');
  assert.equal(a.feed(s(500)), true, 'the queue overflowed: on');
  // the kernel now answers the flood: no more drops, many unanswered cookies
  let sent = 0;
  for (let i = 0; i < 30; i++) assert.equal(a.feed(s(500, (sent += 50_000), 10)), true, `flood period ${i}`);
  // the flood stops: real clients only (their cookies answered)
  let valid = 10;
  for (let i = 1; i < QUIET_S; i++) assert.equal(a.feed(s(500, (sent += 20), (valid += 20))), true, `quiet period ${i}: still on`);
  assert.equal(a.feed(s(500, (sent += 20), (valid += 20))), false, `off after ${QUIET_S} quiet periods`);
});

test('unanswered cookies below UNANSWERED_PER_S do not hold it; a drop in a quiet stretch restarts the count', () => {
  const a = new SynCookieAuto();
  a.feed(s(0));
  assert.equal(a.feed(s(1)), true);
  let sent = 0;
  for (let i = 1; i < QUIET_S; i++) a.feed(s(1, (sent += UNANSWERED_PER_S - 1)));
  assert.equal(a.feed(s(2, (sent += 1))), true, 'a drop at the last quiet period keeps it on');
  for (let i = 1; i < QUIET_S; i++) assert.equal(a.feed(s(2, sent)), true);
  assert.equal(a.feed(s(2, sent)), false);
});

test('counters that went down (a new program, a new device) only reset the baseline', () => {
  const a = new SynCookieAuto();
  a.feed(s(1000, 5000, 0));
  assert.equal(a.feed(s(0, 0, 0)), false);
  assert.equal(a.feed(s(3, 0, 0)), true);
});

test('the guard in mode 2 writes the NAT TCP services while on, none while off; a DR service is left out, not refused', () => {
  const rules = parseRules('-A -t 203.0.113.10:80 -s rr\n-a -t 203.0.113.10:80 -r 192.0.2.11:8080 -m\n-A -t 203.0.113.10:443 -s rr\n-a -t 203.0.113.10:443 -r 192.0.2.12:443 -g\n');
  const writes: CookieService[][] = [];
  const lines: string[] = [];
  let t = 0;
  const g = new SynCookieGuard(7, '', (m) => lines.push(m), () => (t += 20_000), (_fd, want) => writes.push([...want]));
  assert.throws(() => g.setMode(1, rules), /direct-routing/, 'mode 1 refuses the DR service');
  g.setMode(2, rules);
  assert.deepEqual(writes.at(-1), [], 'mode 2, no flood yet: no service');
  const w = new SynCookieWatch(g, () => sample);
  let sample: CookieSample = s(0);
  w.tick();
  sample = s(10);
  w.tick();
  assert.equal(g.active, true);
  assert.deepEqual(writes.at(-1), [{ addr: rules.services[0]!.addr, port: 80 }], 'only the NAT service');
  assert.match(lines.at(-1)!, /syn_cookies 2: on/);
  for (let i = 0; i < QUIET_S; i++) w.tick();
  assert.equal(g.active, false);
  assert.deepEqual(writes.at(-1), []);
  assert.match(lines.at(-1)!, /syn_cookies 2: off/);
  assert.deepEqual(g.counters(), { syncookie_active: 0, syncookie_auto_switches: 2 });
  // control: in mode 0 the watch does nothing even with drops
  g.setMode(0, rules);
  const n = writes.length;
  sample = s(100);
  w.tick();
  sample = s(200);
  w.tick();
  assert.equal(g.active, false);
  assert.equal(writes.length, n);
});
