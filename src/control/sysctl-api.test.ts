/**
 * GET/PUT /v1/sysctl through the real admin server (no root): the backend is two engines' sysctl
 * objects (as two workers hold) changed by applySysctls, as the workers' setSysctls does, inside
 * a serial section that counts its entries. A refused request (unknown name, bad value, bad
 * type) answers 400 naming the sysctl, never enters the serial section, and changes nothing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { createAdminServer, type AdminControlPlane } from './admin.js';
import { callAdmin } from './admin-client.js';
import { defaultSysctls, type Sysctls } from '../core/sysctl.js';
import { applySysctls } from '../core/sysctl-names.js';

describe('admin API /v1/sysctl', () => {
  let dir: string;
  let socket: string;
  let server: Server;
  const engines: Sysctls[] = [defaultSysctls(), defaultSysctls()];
  let serialEntries = 0;
  const api = (m: string, b?: object | string) => callAdmin(socket, m, '/v1/sysctl', b);
  const unused = () => Promise.reject(new Error('not used here'));

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'ulvs-sysctl-'));
    socket = join(dir, 'admin.sock');
    const cp: AdminControlPlane = {
      rules: () => ({ services: [], timeouts: null }) as never,
      mutate: unused,
      snapshot: unused,
      connections: unused,
      timeouts: unused,
      setTimeouts: unused,
      zero: unused,
      counters: unused,
      reload: unused,
      sysctls: {
        values: async () => ({ ...engines[0]! }),
        set: async (p) => {
          serialEntries++;
          for (const e of engines) applySysctls(e, p);
        },
      },
    };
    server = createAdminServer(cp);
    await new Promise<void>((r) => server.listen(socket, r));
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('GET: every sysctl under its IPVS name', async () => {
    const r = await api('GET');
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { amemthresh: 1024, am_droprate: 10, drop_entry: 0, drop_packet: 0, conn_reuse_mode: 1, expire_nodest_conn: 0, sloppy_tcp: 0, expire_quiescent_template: 0, sync_threshold: '3 50', sync_refresh_period: 0, sync_retries: 0, sync_version: 1, sync_persist_mode: 0, sync_ports: 1, sync_qlen_max: 4096, sync_sock_size: 0, secure_tcp: 0, lblc_expiration: 86400, lblcr_expiration: 86400, backup_only: 0, evict_embryonic: 1, syn_cookies: 0, kernel_setup: 0 });
  });

  test('PUT: the named ones change on every engine; the answer is the new GET', async () => {
    const r = await api('PUT', { sync_refresh_period: 10, sync_threshold: '3 0', sync_retries: '1' });
    assert.equal(r.status, 200, JSON.stringify(r.json));
    assert.equal((r.json as Record<string, unknown>)['sync_threshold'], '3 0');
    assert.equal((r.json as Record<string, unknown>)['sync_refresh_period'], 10);
    for (const e of engines) assert.deepEqual([e.syncRefreshPeriod, e.syncThreshold, e.syncPeriod, e.syncRetries], [10, 3, 0, 1]);
    assert.equal(serialEntries, 1);
    // what GET answers is accepted back unchanged
    const again = await api('PUT', (await api('GET')).json as object);
    assert.equal(again.status, 200);
    assert.deepEqual(again.json, r.json);
  });

  test('refusals: 400 naming the sysctl, nothing changed on any engine, the serial section not entered', async () => {
    const before = engines.map((e) => ({ ...e }));
    const entries = serialEntries;
    const cases: [object | string, number, string, RegExp][] = [
      [{ sync_refresh_period: 20, sync_retries: 4 }, 400, 'EINVAL', /^sysctl sync_retries: is 0\.\.3, not 4$/],
      [{ sync_refresh_period: 20, cache_bypass: 1 }, 400, 'EINVAL', /^unknown sysctl "cache_bypass"/],
      [{ sync_threshold: '50 50' }, 400, 'EINVAL', /sync_threshold: the threshold is below the period/],
      [{ sync_version: 2 }, 400, 'EINVAL', /sync_version: is 0\.\.1/],
      [{ sloppy_tcp: true }, 400, 'validation', /^sloppy_tcp: /],
      [{ sync_threshold: [1, 2, 3] }, 400, 'validation', /^sync_threshold: /],
      [[1, 2], 400, 'validation', /^body: /],
      ['{"sync_retries": ', 400, 'bad_json', /not JSON/],
    ];
    for (const [body, status, code, msg] of cases) {
      const r = await api('PUT', body);
      const err = (r.json as { error: { code: string; message: string } }).error;
      assert.equal(r.status, status, JSON.stringify(body));
      assert.equal(err.code, code, JSON.stringify(body));
      assert.match(err.message, msg);
    }
    assert.deepEqual(engines, before);
    assert.equal(serialEntries, entries);
  });

  test('other methods: 404 not_found', async () => {
    const r = await api('DELETE');
    assert.equal(r.status, 404);
  });
});
