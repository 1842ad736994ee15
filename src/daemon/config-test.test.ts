/**
 * `ulvsd -t`: keepalived -t's exit statuses (0 good, 4 cannot run, 5 runs with unknown keywords)
 * and findings with file:line:col, for keepalived.conf and rules files; and the command itself,
 * which starts nothing (it runs without root here and leaves no socket behind).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configTest, type ConfigTestOptions } from './config-test.js';
import type { DataPathCaps } from './data-path-limits.js';

const ULVSD = fileURLToPath(new URL('../cli/ulvsd.js', import.meta.url));
const onlink: DataPathCaps = { dr: null, route: () => ({ kind: 'onlink', dev: 'eth0' }) };
const VS = (body: string) => `virtual_server 203.0.113.10 80 {\n  lb_algo rr\n${body}\n}\n`;

function inDir<T>(files: Record<string, string>, f: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), 'hk-t-'));
  try {
    for (const [n, t] of Object.entries(files)) writeFileSync(join(dir, n), t);
    return f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
const ka = (file: string, configId = 'ulvs'): ConfigTestOptions => ({ source: { kind: 'keepalived', file }, configId, capture: 'tc', fastPath: 'tc' });
const rules = (file: string): ConfigTestOptions => ({ source: { kind: 'rules', file }, configId: 'ulvs', capture: 'tc', fastPath: 'tc' });

test('keepalived.conf: 0 good, 5 unknown keywords (warnings with their place), 4 refused or unreadable', () => {
  inDir(
    {
      'good.conf': VS('  real_server 192.0.2.11 80 {\n    SMTP_CHECK {\n    }\n  }'),
      'unknown.conf': VS('  no_such_keyword 1\n  real_server 192.0.2.11 80 {\n  }'),
      'bad.conf': `$SCHED=nosuch\n${VS('  lb_algo ${SCHED}')}`,
      'dr.conf': `${VS('  real_server 192.0.2.11 80 {\n  }')}virtual_server 203.0.113.11 80 {\n  lb_kind DR\n  real_server 192.0.2.12 80 {\n  }\n}\n`,
    },
    (dir) => {
      const good = configTest(ka(join(dir, 'good.conf')), onlink);
      assert.deepEqual([good.code, good.findings], [0, []]);
      assert.match(good.summary!, /good\.conf: configuration OK \(1 virtual servers, 1 real servers, config id ulvs\)/);
      const unknown = configTest(ka(join(dir, 'unknown.conf')), onlink);
      assert.equal(unknown.code, 5);
      assert.deepEqual(unknown.findings, [`${join(dir, 'unknown.conf')}:3:3: warning: unknown keyword no_such_keyword in virtual_server, ignored`]);
      const bad = configTest(ka(join(dir, 'bad.conf')), onlink);
      assert.equal(bad.code, 4);
      assert.match(bad.findings[0]!, /bad\.conf:4:3: lb_algo: unknown scheduler "nosuch"/);
      // a refusal of the rule set names the virtual_server it comes from (here: DR without a fast path)
      const dr = configTest(ka(join(dir, 'dr.conf')), { dr: 'no fast path here' });
      assert.equal(dr.code, 4);
      assert.match(dr.findings[0]!, /dr\.conf:6:1: Direct routing .* is not available: no fast path here/);
      assert.equal(configTest(ka(join(dir, 'dr.conf')), onlink).code, 0, 'control: the same file with a fast path');
      const missing = configTest(ka(join(dir, 'missing.conf')), onlink);
      assert.equal(missing.code, 4);
      assert.match(missing.findings[0]!, /cannot read .*missing\.conf/);
    },
  );
});

test('rules files: 0 good, 4 with file:line:col for a bad line', () => {
  inDir({ 'good.rules': '-A -t 203.0.113.10:80 -s rr\n-a -t 203.0.113.10:80 -r 192.0.2.11:80 -m\n', 'bad.rules': '-A -t 203.0.113.10:80 -s rr\n-a -t 203.0.113.10:80 -r 192.0.2.11:80 -x\n' }, (dir) => {
    const good = configTest(rules(join(dir, 'good.rules')), onlink);
    assert.equal(good.code, 0, good.findings.join('\n'));
    const bad = configTest(rules(join(dir, 'bad.rules')), onlink);
    assert.equal(bad.code, 4);
    assert.match(bad.findings[0]!, /bad\.rules:2:1: /);
  });
});

test('ulvsd -t and --config-test: the exit status and stderr, nothing started', () => {
  inDir({ 'k.conf': VS('  real_server 192.0.2.11 80 {\n  }\n  bogus_kw') }, (dir) => {
    const sock = join(dir, 'ulvs.sock');
    for (const flag of ['-t', '--config-test']) {
      const r = spawnSync(process.execPath, [ULVSD, flag, '--keepalived', join(dir, 'k.conf'), '--socket', sock], { encoding: 'utf8', timeout: 30_000 });
      assert.equal(r.status, 5, `${flag}: ${r.stderr}`);
      assert.match(r.stderr, /k\.conf:5:3: warning: unknown keyword bogus_kw in virtual_server, ignored/);
      assert.match(r.stdout, /ulvsd: .*k\.conf: configuration runs, with unknown keywords ignored/);
    }
    assert.ok(!existsSync(sock), 'no admin socket: nothing was started');
  });
});
