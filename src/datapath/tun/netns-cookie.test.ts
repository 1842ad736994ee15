import { test } from 'node:test';
import assert from 'node:assert/strict';
import { netnsCookie } from './netns-cookie.js';

test('the namespace cookie: a decimal number, the same on every call in one namespace', () => {
  const c = netnsCookie();
  assert.ok(c !== null, 'this kernel (5.14+) has namespace cookies');
  assert.match(c, /^[1-9]\d*$/);
  assert.equal(netnsCookie(), c);
});
