/**
 * ulvsadm's commands against a fake admin API (no daemon, no root): the requests each ipvsadm
 * command makes, and ipvsadm's message and exit status for the director's refusals.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { AdminReply } from '../admin-client.js';
import { parseIpvsadm } from './parse.js';
import { DirectorError, ipvsadmRunner } from './run.js';

const argv = (s: string) => s.split(' ').filter(Boolean);
const reply = (status: number, json: unknown = null): AdminReply => ({ status, json, text: JSON.stringify(json) });

function fake(answers: AdminReply[] = [], stdin = '') {
  const calls: string[] = [];
  const out: string[] = [];
  const err: string[] = [];
  const runner = ipvsadmRunner(
    async (method, path, body) => {
      calls.push(`${method} ${path}${body ? ` ${JSON.stringify(body)}` : ''}`);
      return answers.shift() ?? reply(200, {});
    },
    { out: (s) => out.push(s), err: (s) => err.push(s), stdin: () => stdin },
  );
  return { runner, calls, out, err };
}

test('-a without a method asks for direct routing, ipvsadm default; -m for masquerading', async () => {
  const f = fake();
  await f.runner.execute(parseIpvsadm(argv('-a -t 203.0.113.10:80 -r 192.0.2.11:8080 -w 3')));
  await f.runner.execute(parseIpvsadm(argv('-a -t 203.0.113.10:80 -r 192.0.2.12:8080 -m')));
  assert.deepEqual(f.calls, [
    'POST /v1/services/tcp/203.0.113.10/80/servers {"address":"192.0.2.11","port":80,"weight":3,"method":"route","uThreshold":0,"lThreshold":0}',
    'POST /v1/services/tcp/203.0.113.10/80/servers {"address":"192.0.2.12","port":8080,"weight":1,"method":"masq","uThreshold":0,"lThreshold":0}',
  ]);
});

test("a refusal becomes ipvsadm's per-operation message with exit 255", async () => {
  const f = fake([reply(404, { error: { code: 'ESRCH', message: 'Service not defined' } })]);
  await assert.rejects(f.runner.execute(parseIpvsadm(argv('-d -t 203.0.113.10:81 -r 192.0.2.11'))), (e: unknown) => e instanceof DirectorError && e.message === 'Service not defined' && e.exit === 255);
});

test('-R runs every line, prints a refusal and goes on; the status is the last line', async () => {
  const f = fake([reply(409, { error: { code: 'EEXIST', message: 'x' } }), reply(201, {})], '-A -t 203.0.113.10:80 -s rr\n\n-A -t 203.0.113.10:81\n');
  assert.equal(await f.runner.execute(parseIpvsadm(['-R'])), '');
  assert.deepEqual(f.err, ['Service already exists\n']);
  assert.equal(f.calls.length, 2);
});
