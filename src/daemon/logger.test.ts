import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('./logger.js', import.meta.url));

test('JSON lines with level, kind, fields; a burst beyond 20 of one kind is held back and counted', () => {
  const script = `
    import { createLogger } from ${JSON.stringify(here)};
    let t = 0;
    const l = createLogger('json', () => t);
    for (let i = 0; i < 25; i++) l.log('info', 'health', 'real server down', { server: '192.0.2.11:8080', i });
    l.log('warn', 'other', 'another kind');
    t += 1000;
    l.log('info', 'health', 'after a second');
  `;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  const lines = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.equal(lines.length, 22);
  assert.deepEqual([lines[0]!['level'], lines[0]!['kind'], lines[0]!['msg'], lines[0]!['server'], lines[0]!['name']], [30, 'health', 'real server down', '192.0.2.11:8080', 'ulvsd']);
  assert.equal(typeof lines[0]!['time'], 'string');
  assert.deepEqual([lines[20]!['level'], lines[20]!['kind']], [40, 'other']);
  assert.deepEqual([lines[21]!['msg'], lines[21]!['suppressed']], ['after a second', 5]);
});
