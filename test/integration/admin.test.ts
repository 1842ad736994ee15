/**
 * The admin API of a running ulvsd, over its Unix socket: live changes that really move
 * packets, save/restore, timeouts, zeroing, and malformed requests that change nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';
import { callAdmin as call } from '../../src/control/admin-client.js';

const V = LAB.VIP;
const RS = [0, 1].map(LAB.realServer);
const rules = [`-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m -w 1`)].join('\n');

describe('admin API', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const api = (m: string, p: string, b?: string | object) => call(bed.socket, m, p, b);
  before(async () => {
    bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080 }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('the socket is root-only (0600) and lists the services', async () => {
    assert.equal(statSync(bed.socket).mode & 0o777, 0o600);
    const r = await api('GET', '/v1/services');
    assert.equal(r.status, 200);
    assert.equal(r.json.length, 1);
    assert.deepEqual(
      r.json[0].servers.map((s: { address: string; port: number; method: string }) => `${s.address}:${s.port}/${s.method}`).sort(),
      RS.map((a) => `${a}:8080/masq`),
    );
  });

  test('a service added through the API forwards at once; deleting it stops it', async () => {
    assert.equal((await api('POST', '/v1/services', { protocol: 'tcp', address: V, port: 81, scheduler: 'wrr' })).status, 201);
    assert.equal((await api('POST', `/v1/services/tcp/${V}/81/servers`, { address: RS[1], port: 8080, weight: 2 })).status, 201);
    const r = bed.client(['--http', '81', '--requests', '4']);
    assert.deepEqual(r.map((x) => x['server']), ['rs2', 'rs2', 'rs2', 'rs2']);
    assert.equal((await api('DELETE', `/v1/services/tcp/${V}/81`)).status, 200);
    const gone = bed.client(['--http', '81', '--requests', '1', '--timeout', '1500']);
    assert.equal(gone[0]?.['ok'], false);
  });

  test('editing a server (weight 0) takes effect for new connections', async () => {
    assert.equal((await api('PUT', `/v1/services/tcp/${V}/80/servers/${RS[0]}/8080`, { weight: 0 })).status, 200);
    const r = bed.client(['--requests', '4']);
    assert.ok(r.every((x) => x['server'] === 'rs2'), JSON.stringify(r));
    assert.equal((await api('PUT', `/v1/services/tcp/${V}/80/servers/${RS[0]}/8080`, { weight: 1 })).status, 200);
  });

  test('malformed or refused requests get a clear error and change nothing', async () => {
    const before = (await api('GET', '/v1/rules')).text;
    const cases: [string, string, string | object | undefined, number, string][] = [
      ['POST', '/v1/services', { protocol: 'tcp', address: V, port: 80 }, 409, 'EEXIST'],
      ['POST', '/v1/services', '{"protocol": "tcp",', 400, 'bad_json'],
      ['POST', '/v1/services', { protocol: 'tcp', address: V, port: 82, colour: 'blue' }, 400, 'validation'],
      ['POST', '/v1/services', { protocol: 'tcp', address: V, port: 70000 }, 400, 'validation'],
      ['POST', '/v1/services', { protocol: 'tcp', address: '203.0.113.300', port: 82 }, 400, 'validation'],
      ['POST', '/v1/services', { protocol: 'tcp', address: V, port: '82' }, 400, 'validation'],
      ['POST', '/v1/services', { protocol: 'sctp', address: V, port: 82 }, 400, 'validation'],
      ['POST', '/v1/services', { protocol: 'tcp', address: V, port: 82, scheduler: 'nosuch' }, 400, 'ENOENT'],
      ['POST', '/v1/services', { protocol: 'tcp', address: V, port: 0 }, 400, 'EINVAL'],
      ['POST', `/v1/services/tcp/${V}/80/servers`, { address: RS[0], port: 8080 }, 409, 'EEXIST'],
      ['POST', `/v1/services/tcp/${V}/80/servers`, { address: RS[0], port: 9090, weight: 70000 }, 400, 'validation'],
      ['POST', `/v1/services/tcp/${V}/80/servers`, { address: LAB.DIP, port: 80, method: 'route' }, 400, 'ENETUNREACH'],
      ['POST', `/v1/services/tcp/${V}/80/servers`, { address: RS[0], port: 80, method: 'tunnel', tunType: 'gre', tunCsum: 'csum' }, 400, 'EOPNOTSUPP'],
      ['POST', `/v1/services/tcp/${V}/80/servers`, { address: RS[0], port: 9090, method: 'route' }, 400, 'EINVAL'],
      ['POST', `/v1/services/tcp/${V}/80/servers`, { address: RS[0], port: 9090, uThreshold: 1, lThreshold: 5 }, 400, 'ERANGE'],
      ['POST', `/v1/services/tcp/${V}/99/servers`, { address: RS[0] }, 404, 'ESRCH'],
      ['PUT', `/v1/services/tcp/${V}/99`, {}, 404, 'ESRCH'],
      ['PUT', `/v1/services/tcp/${V}/80/servers/${RS[0]}/1`, {}, 404, 'ENOENT'],
      ['DELETE', `/v1/services/tcp/${V}/80/servers/192.0.2.99/8080`, undefined, 404, 'ENOENT'],
      ['PUT', '/v1/timeouts', { tcp: -5 }, 400, 'validation'],
      ['PUT', '/v1/timeouts', { tcp: 9999999999 }, 400, 'EINVAL'],
      ['PUT', '/v1/rules', '-A -t 203.0.113.10:80 -s rr -q\n', 400, 'validation'],
      ['PATCH', '/v1/services', {}, 405, 'bad_method'],
      ['GET', '/v1/nothing', undefined, 404, 'not_found'],
      ['GET', '/v2/services', undefined, 404, 'not_found'],
    ];
    for (const [m, p, b, status, code] of cases) {
      const r = await api(m, p, b);
      assert.equal(r.status, status, `${m} ${p} ${JSON.stringify(b)}: ${r.text}`);
      assert.equal(r.json?.error?.code, code, `${m} ${p}: ${r.text}`);
      assert.ok(typeof r.json.error.message === 'string' && r.json.error.message.length > 0);
    }
    const huge = await api('POST', '/v1/services', `{"x": "${'a'.repeat(2 << 20)}"}`);
    assert.equal(huge.status, 413);
    assert.equal((await api('GET', '/v1/rules')).text, before, 'nothing changed');
    assert.deepEqual((await api('GET', '/v1/timeouts')).json, { tcp: 900, tcpfin: 120, udp: 300 });
  });

  test('reload through the API: the file is applied, a broken file is refused whole', async () => {
    const { writeFileSync } = await import('node:fs');
    writeFileSync(bed.rulesFile, `${rules}\n-A -u ${V}:53 -s rr\n`);
    const ok = await api('POST', '/v1/reload');
    assert.equal(ok.status, 200, ok.text);
    assert.match((await api('GET', '/v1/rules')).text, /-A -u 203\.0\.113\.10:53 -s rr/);
    writeFileSync(bed.rulesFile, `${rules}\n-A -u ${V}:53 -s nosuch\n`);
    const bad = await api('POST', '/v1/reload');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.code, 'rules_invalid');
    assert.match(bad.json.error.message, /Scheduler or persistence engine not found/);
    assert.match((await api('GET', '/v1/rules')).text, /-A -u 203\.0\.113\.10:53 -s rr/, 'running rules unchanged');
    writeFileSync(bed.rulesFile, rules);
    assert.equal((await api('POST', '/v1/reload')).status, 200);
  });

  test('save, clear and restore give back the same rules; timeouts and zero work', async () => {
    const saved = (await api('GET', '/v1/rules')).text;
    assert.equal(saved, `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${RS[0]}:8080 -m -w 1\n-a -t ${V}:80 -r ${RS[1]}:8080 -m -w 1\n`);
    assert.equal((await api('DELETE', '/v1/services')).status, 200);
    assert.equal((await api('GET', '/v1/rules')).text, '');
    assert.equal((await api('PUT', '/v1/rules', saved)).status, 200);
    assert.equal((await api('GET', '/v1/rules')).text, saved);
    assert.equal(bed.client(['--requests', '2']).filter((x) => x['ok']).length, 2, 'forwarding again after restore');
    assert.deepEqual((await api('PUT', '/v1/timeouts', { tcp: 600, udp: 0 })).json, { tcp: 600, tcpfin: 120, udp: 300 });
    const conns = (await api('GET', '/v1/connections')).json as { client: string; state: string }[];
    assert.ok(conns.length > 0 && conns.every((c) => c.client.startsWith(LAB.client(0))));
    const s1 = (await api('GET', `/v1/services/tcp/${V}/80`)).json;
    assert.ok(s1.counters[0] > 0);
    assert.equal((await api('POST', '/v1/zero', { service: { protocol: 'tcp', address: V, port: 80 } })).status, 200);
    assert.equal((await api('GET', `/v1/services/tcp/${V}/80`)).json.counters[0], 0);
  });
});
