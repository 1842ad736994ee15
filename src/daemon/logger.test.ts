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

test('journal format when $JOURNAL_STREAM names stdout: <priority>message, no time, no name; control: another inode gives JSON', async () => {
  const { mkdtempSync, openSync, readFileSync, rmSync, statSync, closeSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'hs-journal-'));
  try {
    const script = `
      import { createLogger } from ${JSON.stringify(here)};
      const l = createLogger('auto');
      l.log('info', 'daemon', 'forwarding');
      l.log('warn', 'health', 'real server down\\nsecond line');
      l.log('error', 'daemon', 'fatal');
    `;
    const runWith = (streamOf: string) => {
      const out = join(dir, `out-${streamOf}`);
      const err = join(dir, `err-${streamOf}`);
      const [o, e] = [openSync(out, 'w'), openSync(err, 'w')];
      const st = statSync(streamOf === 'stdout' ? out : join(dir, 'elsewhere-' + String(Date.now())), { throwIfNoEntry: false }) ?? statSync(dir);
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', o, e], env: { ...process.env, JOURNAL_STREAM: `${st.dev}:${st.ino}` } });
      closeSync(o);
      closeSync(e);
      assert.equal(r.status, 0);
      return { out: readFileSync(out, 'utf8'), err: readFileSync(err, 'utf8') };
    };
    const j = runWith('stdout');
    assert.equal(j.out, '<6>forwarding\n');
    assert.equal(j.err, '<4>real server down | second line\n<3>fatal\n');
    const other = runWith('elsewhere'); // JOURNAL_STREAM names the directory, not fd 1 or 2
    assert.equal(JSON.parse(other.out.split('\n')[0]!).msg, 'forwarding');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
