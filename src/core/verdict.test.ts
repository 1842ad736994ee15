import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Outcome, OUTCOME_NAMES, OUTCOME_VERDICT, VERDICT_NAMES } from './verdict.js';

test('every outcome has a verdict, and its name starts with that verdict (the counters read so)', () => {
  assert.equal(OUTCOME_VERDICT.length, OUTCOME_NAMES.length);
  assert.equal(Object.keys(Outcome).length, OUTCOME_NAMES.length);
  OUTCOME_NAMES.forEach((n, i) => assert.ok(n.startsWith(VERDICT_NAMES[OUTCOME_VERDICT[i]!]!), `${n}: ${VERDICT_NAMES[OUTCOME_VERDICT[i]!]}`));
});
