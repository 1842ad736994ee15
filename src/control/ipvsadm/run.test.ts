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

test('--start-daemon / --stop-daemon / -L --daemon: the requests, the defaults, ipvsadm 1.31 lines and messages', async () => {
  const st = [
    { state: 'backup', iface: 'i0', syncid: 52, maxlen: 1472, group: '224.0.0.81', port: 8848, ttl: 1, addr: '192.0.2.3' },
    { state: 'master', iface: 'i0', syncid: 52, maxlen: 1472, group: '224.0.0.81', port: 8848, ttl: 1, addr: '192.0.2.3' },
  ];
  const f = fake([reply(201, {}), reply(201, {}), reply(200, st), reply(409, { error: { code: 'EEXIST', message: 'x' } }), reply(404, { error: { code: 'ESRCH', message: 'x' } })]);
  await f.runner.execute(parseIpvsadm(argv('--start-daemon master --mcast-interface i0 --syncid 52')));
  await f.runner.execute(parseIpvsadm(argv('--start-daemon backup --mcast-interface i0 --syncid 52 --sync-maxlen 9000 --mcast-group 239.1.2.3 --mcast-port 9000 --mcast-ttl 4')));
  assert.equal(await f.runner.execute(parseIpvsadm(argv('-L --daemon'))), 'master sync daemon (mcast=i0, syncid=52, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\nbackup sync daemon (mcast=i0, syncid=52, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n');
  await assert.rejects(f.runner.execute(parseIpvsadm(argv('--start-daemon master'))), (e: unknown) => e instanceof DirectorError && e.message === 'Daemon has already run' && e.exit === 255);
  await assert.rejects(f.runner.execute(parseIpvsadm(argv('--stop-daemon backup'))), (e: unknown) => e instanceof DirectorError && e.message === 'No daemon is running');
  assert.deepEqual(f.calls, [
    'POST /v1/daemon {"state":"master","iface":"i0","syncid":52,"maxlen":0,"group":"224.0.0.81","port":8848,"ttl":1}',
    'POST /v1/daemon {"state":"backup","iface":"i0","syncid":52,"maxlen":9000,"group":"239.1.2.3","port":9000,"ttl":4}',
    'GET /v1/daemon',
    'POST /v1/daemon {"state":"master","iface":"eth0","syncid":0,"maxlen":0,"group":"224.0.0.81","port":8848,"ttl":1}',
    'DELETE /v1/daemon/backup',
  ]);
});
