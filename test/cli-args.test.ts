/**
 * Bad command lines get a clear message and exit status 2, and change nothing (no root needed:
 * the checks come before anything is created).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TestBed } from '../src/lab/testbed.js';

const bin = (name: string) => fileURLToPath(new URL(`../../bin/${name}`, import.meta.url));
const runBin = (name: string, args: string[]) => spawnSync(process.execPath, [bin(name), ...args], { encoding: 'utf8' });

test('ulvs lab up refuses a bad -n before building anything', () => {
  for (const args of [['-n', 'x'], ['-n', '0'], ['-n', '1000'], ['-n'], ['--bogus']]) {
    const r = runBin('ulvs', ['lab', 'up', ...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /-n takes a number of real servers from 1 to 100/);
    assert.doesNotMatch(r.stdout, /test bed up/);
  }
  assert.throws(() => new TestBed({ realServers: 0 }), /realServers must be an integer from 1 to 100/);
  assert.throws(() => new TestBed({ clients: 1.5 }), /clients must be an integer/);
  assert.throws(() => new TestBed({ rsMtu: 100 }), /rsMtu must be 576..65535/);
});

test('ulvsd: an unknown option or a missing value is a usage error, not a stack trace', () => {
  for (const args of [['--bogus'], ['--rules'], ['--rules', '/dev/null', '--busy-poll', '-5']]) {
    const r = runBin('ulvsd', args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, /^ulvsd: .+\nusage: ulvsd \[--rules FILE \| --keepalived FILE\]/);
    assert.doesNotMatch(r.stderr, /at parseArgs|node:internal/);
  }
});

test('ulvsd: a bad fast-path setting is refused with its range, before anything is set up', () => {
  const cases: [string[], RegExp][] = [
    [['--fast-path', 'xdp'], /--fast-path is tc or off/],
    [['--fast-path-after', '0'], /--fast-path-after is 1..255 packets/],
    [['--fast-path-after', '2.5'], /--fast-path-after is 1..255 packets/],
    [['--fast-path-conns', '1e9'], /--fast-path-conns is 1..16777216/],
  ];
  for (const [args, msg] of cases) {
    const r = runBin('ulvsd', ['--rules', '/dev/null', ...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, msg);
  }
});
