/**
 * contrib/systemd/ulvsd.service passes `systemd-analyze verify` (with ExecStart pointed at this
 * tree's bin/ulvsd, which the check requires to exist), is Type=notify with a HUP reload, and
 * /etc/default/ulvsd's example options are ones ulvsd accepts. Control: the same unit with a
 * misspelt Type= makes systemd-analyze complain, so a silent pass means something.
 * (systemd is not PID 1 on the test machine: the unit is verified, not started.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseOptions } from '../src/daemon/options.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const unit = readFileSync(join(root, 'contrib/systemd/ulvsd.service'), 'utf8');
const analyze = spawnSync('systemd-analyze', ['--version']).status === 0;

const verify = (text: string): string => {
  const dir = mkdtempSync(join(tmpdir(), 'hs-unit-'));
  try {
    writeFileSync(join(dir, 'ulvsd.service'), text);
    const r = spawnSync('systemd-analyze', ['verify', join(dir, 'ulvsd.service')], { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('ulvsd.service')).join('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

test('the unit: notify, reload by SIGHUP, ExecStart of ulvsd', () => {
  assert.match(unit, /^Type=notify$/m);
  assert.match(unit, /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m);
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/ulvsd \$ULVSD_OPTIONS$/m);
  assert.ok(existsSync(join(root, 'bin/ulvsd')));
});

test('systemd-analyze verify: no complaint about the unit; control: a bad Type= is reported', { skip: analyze ? false : 'systemd-analyze is not installed' }, () => {
  const mine = unit.replace('/usr/local/bin/ulvsd', join(root, 'bin/ulvsd'));
  assert.equal(verify(mine), '');
  assert.match(verify(mine.replace('Type=notify', 'Type=notifyy')), /Failed to parse service type/);
});

test('the options in contrib/systemd/ulvsd.default parse', () => {
  const lines = readFileSync(join(root, 'contrib/systemd/ulvsd.default'), 'utf8').split('\n').filter((l) => /^#?ULVSD_OPTIONS="/.test(l));
  assert.ok(lines.length >= 3);
  for (const l of lines) {
    const words = /"(.*)"/.exec(l)![1]!.split(' ').filter(Boolean);
    const r = parseOptions(words, 2);
    assert.ok(!r.help && !r.version, l);
  }
});
