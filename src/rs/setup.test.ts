import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runRsSetup } from './setup.js';

/** runRsSetup with the streams captured; isRoot false, so nothing on this host can change. */
const call = (argv: string[], isRoot = false) => {
  const out: string[] = [], err: string[] = [];
  const status = runRsSetup(argv, (l) => out.push(l), (l) => err.push(l), isRoot);
  return { status, out: out.join('\n'), err: err.join('\n') };
};

test('not root: refused clearly with status 1, before anything is looked at', () => {
  for (const argv of [['dr', '203.0.113.10'], ['tun', '203.0.113.10'], ['--remove'], ['--status']]) {
    const r = call(argv);
    assert.equal(r.status, 1, argv.join(' '));
    assert.match(r.err, /must be run as root.*nothing was changed/);
    assert.equal(r.out, '');
  }
});

test('bad input: status 2 with the reason and the usage, root or not', () => {
  for (const isRoot of [false, true]) {
    const r = call(['tun', '--tun-type', 'gue', '203.0.113.10'], isRoot);
    assert.equal(r.status, 2);
    assert.match(r.err, /^ulvs rs-setup: --tun-type gue needs --tun-port PORT/);
    assert.match(r.err, /usage: ulvs rs-setup dr/);
  }
  assert.equal(call(['dr', 'not-an-address'], true).status, 2);
  assert.equal(call(['--help']).status, 0);
});
