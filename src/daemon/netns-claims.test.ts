import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClaimError, takeClaims, type ClaimWant } from './netns-claims.js';

// flock(2) locks belong to open file descriptions, so two takeClaims in one process conflict
// exactly as two processes do.
const want = (o: Partial<ClaimWant> = {}): ClaimWant => ({ dev: 'hD0', table: 4200, pref: 4200, socket: '/run/hD/a.sock', sharedSysctls: ['net.ipv4.ip_forward'], ...o });
const withDir = (f: (dir: string) => Promise<void> | void) => async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hD-claims-'));
  try {
    await f(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

test('a second claim of the same device, table and preferences is refused, naming the holder', withDir((dir) => {
  const a = takeClaims(want(), dir);
  assert.throws(
    () => takeClaims(want({ socket: '/run/hD/b.sock' }), dir),
    (e: Error) => e instanceof ClaimError && e.message.includes(`another ulvsd (pid ${process.pid}, admin socket /run/hD/a.sock) uses TUN device hD0, routing table 4200, rule preference 4200, rule preference 4201 in this network namespace`) && /own --dev, --table and --pref/.test(e.message),
  );
  a.release(true);
  const b = takeClaims(want({ socket: '/run/hD/b.sock' }), dir);
  b.sysctlsToRestore([], []); // a final stop asks first: it is the last
  b.release(true);
  assert.deepEqual(readdirSync(dir), [], 'every file removed by the last final stop');
}));

test('its own device, table and preferences: both hold; an overlap of one preference is named alone; a refusal takes nothing', withDir((dir) => {
  const a = takeClaims(want(), dir);
  const b = takeClaims(want({ dev: 'hD1', table: 4201, pref: 4300, socket: '/run/hD/b.sock' }), dir);
  assert.throws(() => takeClaims(want({ dev: 'hD2', table: 4202, pref: 4201 }), dir), /uses rule preference 4201 in this/);
  // the refused one held hD2 and table 4202 for a moment: they are free again
  const c = takeClaims(want({ dev: 'hD2', table: 4202, pref: 4400 }), dir);
  for (const x of [a, b, c]) x.release(true);
  assert.deepEqual(readdirSync(dir).filter((f) => !f.endsWith('.present.lock')), [], 'the claims are unlinked at release');
}));

test('a claim of a process killed with SIGKILL is free at once (the kernel drops its flock)', withDir(async (dir) => {
  const mod = new URL('./netns-claims.js', import.meta.url).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(mod)}); m.takeClaims({ dev: 'hD0', table: 4200, pref: 4200, socket: '/run/hD/child.sock', sharedSysctls: [] }, ${JSON.stringify(dir)}); console.log('held'); setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
      child.on('exit', (c) => reject(new Error(`child exited ${c}`)));
    });
    assert.throws(() => takeClaims(want(), dir), new RegExp(`pid ${child.pid}, admin socket /run/hD/child.sock`));
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await gone;
    assert.ok(readdirSync(dir).some((f) => f.endsWith('.dev-hD0.lock')), 'its file is left behind (not unlinked by a crash)');
    const a = takeClaims(want(), dir); // taken over: no pid check, no staleness rule needed
    assert.match(readFileSync(join(dir, readdirSync(dir).find((f) => f.endsWith('.dev-hD0.lock'))!), 'utf8'), new RegExp(`"pid":${process.pid}`));
    a.release(true);
  } finally {
    child.kill('SIGKILL');
  }
}));

test('shared sysctls: the first to stop leaves them; the last restores the values from before the first start', withDir((dir) => {
  const now = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  const a = takeClaims(want(), dir); // records ip_forward as found now
  const b = takeClaims(want({ dev: 'hD1', table: 4201, pref: 4300 }), dir);
  const own: [string, string][] = [
    ['net.ipv4.ip_forward', 'B-found'],
    ['net.ipv4.conf.hD1.rp_filter', '2'],
  ];
  const shared = ['net.ipv4.ip_forward'];
  assert.deepEqual(a.sysctlsToRestore(own, shared), [['net.ipv4.conf.hD1.rp_filter', '2']], 'another ulvsd still here: the shared one is left');
  a.release(true);
  assert.deepEqual(b.sysctlsToRestore(own, shared), [['net.ipv4.ip_forward', now], ['net.ipv4.conf.hD1.rp_filter', '2']], 'the last one: the first start\'s value, not what it found itself');
  b.release(true);
  assert.deepEqual(readdirSync(dir), []);
}));

test('a hand-over keeps the first start\'s values for the next process', withDir((dir) => {
  const a = takeClaims(want(), dir);
  const presence = join(dir, readdirSync(dir).find((f) => f.endsWith('.present.lock'))!);
  writeFileSync(presence, JSON.stringify([['net.ipv4.ip_forward', 'before-first']]));
  a.release(false); // hand-over
  const a2 = takeClaims(want(), dir);
  assert.deepEqual(a2.sysctlsToRestore([['net.ipv4.ip_forward', '1']], ['net.ipv4.ip_forward']), [['net.ipv4.ip_forward', 'before-first']]);
  a2.release(true);
}));

/** A child process holding the claims of want() (as a ulvsd would), marked stopping; it exits after `exitMs` (0: never). */
async function stoppingHolder(dir: string, exitMs: number) {
  const mod = new URL('./netns-claims.js', import.meta.url).href;
  const child = spawn(process.execPath, ['--input-type=module', '-e', `const m = await import(${JSON.stringify(mod)}); const c = m.takeClaims({ dev: 'hD0', table: 4200, pref: 4200, socket: '/run/hD/old.sock', sharedSysctls: [] }, ${JSON.stringify(dir)}); c.markStopping(); console.log('held'); ${exitMs ? `setTimeout(() => process.exit(0), ${exitMs});` : ''} setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
    child.on('exit', (c) => reject(new Error(`child exited ${c}`)));
  });
  return child;
}

test('a start while the holder is stopping (a hand-over) waits for its exit, then takes over', withDir(async (dir) => {
  const child = await stoppingHolder(dir, 700);
  try {
    let waited = 0;
    const t0 = Date.now();
    const c = takeClaims(want(), dir, 10_000, (pid) => (waited = pid));
    assert.equal(waited, child.pid, 'told whom it waited for');
    assert.ok(Date.now() - t0 >= 300, 'it did wait');
    c.release(false);
  } finally {
    child.kill('SIGKILL');
  }
}));

test('a holder stopping for longer than the wait: refused, saying so', withDir(async (dir) => {
  const child = await stoppingHolder(dir, 0);
  try {
    assert.throws(() => takeClaims(want(), dir, 300), new RegExp(`another ulvsd \\(pid ${child.pid}, admin socket /run/hD/old\\.sock, stopping for over 0\\.3 s\\) uses TUN device hD0`));
  } finally {
    child.kill('SIGKILL');
  }
}));
