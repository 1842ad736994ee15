/** Rules files: scheduler-flag names map to the same bits as ipvsadm's -b; other names are refused. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRules, RulesError } from './rules.js';
import { SvcFlag } from '../core/service.js';

test('-b names set their bits; unknown and Object.prototype names are refused with file:line', () => {
  const r = parseRules('-A -t 203.0.113.10:80 -s sh -b sh-fallback,sh-port\n', 'rules');
  assert.equal(r.services[0]!.schedFlags, SvcFlag.SCHED1 | SvcFlag.SCHED2);
  for (const name of ['nosuch', 'toString', 'constructor', '__proto__'])
    assert.throws(() => parseRules(`-A -t 203.0.113.10:80 -s rr\n-A -t 203.0.113.10:81 -s rr -b ${name}\n`, 'rules'), (e: unknown) => e instanceof RulesError && /rules:2/.test(e.message) && e.message.includes(`invalid scheduler flag \`${name}'`), name);
});
