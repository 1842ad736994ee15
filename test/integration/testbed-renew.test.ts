/**
 * TestBed.renewDirector (src/lab/testbed.ts), which the benchmark uses before every set-up: the
 * director's namespace is made anew, wired as before (clients and real servers reach each other
 * through it), with no policy rule but the kernel's three, while the other namespaces, and the
 * processes and listening sockets in them, stay.
 */
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { TestBed, LAB } from '../../src/lab/testbed.js';
import { run, tryRun } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';

describe('test bed: a new director namespace', { skip: needsRoot }, () => {
  const bed = new TestBed({ realServers: 1, clients: 1, prefix: `ulvstr${process.pid % 100000}` });
  after(() => bed.down());

  test('renewDirector: the policy rules are gone, the wiring and the other namespaces stay', async () => {
    bed.up();
    const c = bed.clients[0]!;
    const rs = bed.realServers[0]!;
    const reach = () => tryRun(['ip', 'netns', 'exec', c, 'ping', '-c', '1', '-W', '2', LAB.realServer(0)]);
    run(['ip', '-n', c, 'route', 'replace', '192.0.2.0/24', 'via', LAB.DIRECTOR_PUBLIC]);
    assert.ok(reach(), 'the client reaches the real server through the director');
    // a process in a real server's namespace, and a rule in the director's
    const sleeper = spawn('ip', ['netns', 'exec', rs, 'sleep', '30'], { stdio: 'ignore' });
    try {
      await new Promise((r) => setTimeout(r, 200));
      bed.ip(bed.director, ['rule', 'add', 'pref', '100', 'to', '203.0.113.99', 'lookup', 'main']);
      assert.equal(JSON.parse(bed.ip(bed.director, ['-j', 'rule', 'show'])).length, 4);

      bed.renewDirector();
      assert.deepEqual((JSON.parse(bed.ip(bed.director, ['-j', 'rule', 'show'])) as { priority: number }[]).map((r) => r.priority), [0, 32766, 32767]);
      assert.equal(sleeper.exitCode, null, "a process in a real server's namespace still runs");
      assert.ok(!reach(), "the client's own routes through the old director are gone with its link");
      run(['ip', '-n', c, 'route', 'replace', '192.0.2.0/24', 'via', LAB.DIRECTOR_PUBLIC]);
      assert.ok(reach(), 'the new director forwards between them');
    } finally {
      sleeper.kill('SIGKILL');
    }
  });
});
