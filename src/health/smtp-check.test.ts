/**
 * SMTP replies (RFC 5321 §4.2.1) as smtp-check.ts reads them, and pingCheck's command line and
 * its answer when `ping` is missing (not run, not a failure of the server).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { smtpReplyCode } from './smtp-check.js';
import { pingArgs, pingCheck } from './ping-check.js';
import type { CheckerSpec } from './checker-spec.js';

test('an SMTP reply ends at its line without a hyphen; anything else is not a reply', () => {
  const cases: [string, number | 'more' | null][] = [
    ['220 mx.example ESMTP\r\n', 220],
    ['220\r\n', 220],
    ['250 ok\n', 250],
    ['220-first\r\n', 'more'],
    ['220-first\r\n220-second\r\n220 last\r\n', 220],
    ['220-first\r\n554 last\r\n', 554],
    ['22', 'more'],
    ['220 partial', 'more'],
    ['', 'more'],
    ['hello\r\n', null],
    ['2200 x\r\n', null],
    ['ab', null],
    ['220-first\r\nnot a reply\r\n', null],
  ];
  for (const [buf, want] of cases) assert.equal(smtpReplyCode(buf), want, JSON.stringify(buf));
});

const spec = (o: Partial<CheckerSpec> = {}): CheckerSpec => ({ type: 'PING_CHECK', connectIp: 0xc000020b, connectPort: 0, connectTimeout: 2.5, retry: 1, delayBeforeRetry: 1, delayLoop: 5, warmup: 0, alpha: false, urls: [], miscTimeout: 5, miscDynamic: false, requireReply: false, dnsType: 'A', dnsName: '.', heloName: 'x', ...o });

test('PING_CHECK runs one ping of 128 bytes waiting connect_timeout, from bindto if given', () => {
  assert.deepEqual(pingArgs(spec()), ['-n', '-q', '-c', '1', '-s', '128', '-W', '2.5', '192.0.2.11']);
  assert.deepEqual(pingArgs(spec({ bindTo: 0xc0000201 })), ['-n', '-q', '-c', '1', '-s', '128', '-W', '2.5', '-I', '192.0.2.1', '192.0.2.11']);
});

test('no ping program: the check is not run (the director lacks it), not failed', async () => {
  const r = await pingCheck(spec(), '/nonexistent/hk-ping');
  assert.equal(r.notRun, 'ENOENT');
  assert.match(r.reason, /no \/nonexistent\/hk-ping program on this director/);
});
