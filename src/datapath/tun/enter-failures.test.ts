import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EnterFailures } from './enter-failures.js';
import { EAGAIN, EBUSY, EINVAL, ENOMEM } from './syscalls.js';

test('transient enter failures are retried until they last giveUpMs; a success restarts the count; a hard one falls back at once', () => {
  const f = new EnterFailures(1000);
  assert.equal(f.failed(EAGAIN, 0), 'retry');
  assert.equal(f.failed(ENOMEM, 500), 'retry');
  assert.equal(f.failed(EBUSY, 999), 'retry');
  f.ok();
  assert.equal(f.failed(EAGAIN, 1500), 'retry', 'a success in between: a new run of failures');
  assert.equal(f.failed(EAGAIN, 2499), 'retry');
  assert.equal(f.failed(EAGAIN, 2500), 'fallback');
  assert.equal(new EnterFailures().failed(EINVAL, 0), 'fallback');
});
