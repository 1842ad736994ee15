/** ulvsadm --sysctl against a fake /v1/sysctl: listing, one name, setting (one PUT, all or
 *  nothing), and refusals naming the sysctl with exit 2 and no request. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sysctlCommand, type SysctlApi } from './sysctl-cli.js';
import { defaultSysctls } from '../core/sysctl.js';
import { applySysctls, ipvsSysctls, parseSysctls } from '../core/sysctl-names.js';
import { IpvsError } from '../core/errors.js';

function fake() {
  const s = defaultSysctls();
  const calls: string[] = [];
  const api: SysctlApi = async (method, path, body) => {
    calls.push(`${method} ${path} ${body ? JSON.stringify(body) : ''}`.trim());
    if (method === 'PUT') {
      try {
        applySysctls(s, parseSysctls(body as Record<string, unknown>));
      } catch (e) {
        const err = e as IpvsError;
        return { status: 400, json: { error: { code: err.code, message: err.message } }, text: '' };
      }
    }
    return { status: 200, json: ipvsSysctls(s), text: '' };
  };
  return { s, calls, api };
}
async function run(args: string[], f = fake()) {
  let out = '';
  let err = '';
  const code = await sysctlCommand(args, f.api, { out: (x) => (out += x), err: (x) => (err += x) });
  return { code, out, err, ...f };
}

test('--sysctl lists every sysctl as sysctl(8) prints them', async () => {
  const r = await run([]);
  assert.equal(r.code, 0);
  assert.equal(r.out.split('\n').length - 1, 23);
  assert.match(r.out, /\nnet\.ipv4\.vs\.kernel_setup = 0\n/);
  assert.match(r.out, /^net\.ipv4\.vs\.amemthresh = 1024\nnet\.ipv4\.vs\.am_droprate = 10\nnet\.ipv4\.vs\.drop_entry = 0\nnet\.ipv4\.vs\.drop_packet = 0\nnet\.ipv4\.vs\.conn_reuse_mode = 1\n/);
  assert.match(r.out, /\nnet\.ipv4\.vs\.sync_threshold = 3\t50\n/);
  assert.deepEqual(r.calls, ['GET /v1/sysctl']);
});

test('--sysctl NAME prints that one; NAME=VALUE sets them in one PUT', async () => {
  assert.equal((await run(['net.ipv4.vs.sync_retries'])).out, 'net.ipv4.vs.sync_retries = 0\n');
  const r = await run(['sync_refresh_period=10', 'sync_threshold=3 0']);
  assert.equal(r.code, 0, r.err);
  assert.equal(r.out, 'net.ipv4.vs.sync_refresh_period = 10\nnet.ipv4.vs.sync_threshold = 3\t0\n');
  assert.deepEqual(r.calls, ['PUT /v1/sysctl {"sync_refresh_period":"10","sync_threshold":"3 0"}']);
  assert.deepEqual([r.s.syncRefreshPeriod, r.s.syncThreshold, r.s.syncPeriod], [10, 3, 0]);
});

test('refusals: exit 2, the sysctl named, nothing sent or nothing changed', async () => {
  const a = await run(['sync_refresh_period=10', 'sync_retries=7']);
  assert.deepEqual([a.code, a.err, a.calls], [2, 'ulvsadm --sysctl: sysctl sync_retries: is 0..3, not 7\n', []]);
  const b = await run(['cache_bypass']);
  assert.equal(b.code, 2);
  assert.match(b.err, /unknown sysctl "cache_bypass"/);
  // checked here before asking (the same checks as the API's): no request
  const c = await run(['sync_threshold=9 5']);
  assert.equal(c.code, 2);
  assert.match(c.err, /sync_threshold: the threshold is below the period/);
  assert.deepEqual(c.calls, []);
  // what ulvsd refuses (an older ulvsd without a name, say) is printed as it says
  const refusing: SysctlApi = async () => ({ status: 400, json: { error: { code: 'EINVAL', message: 'unknown sysctl "sloppy_tcp"' } }, text: '' });
  let err = '';
  assert.equal(await sysctlCommand(['sloppy_tcp=1'], refusing, { out: () => undefined, err: (x) => (err += x) }), 2);
  assert.equal(err, 'ulvsadm --sysctl: unknown sysctl "sloppy_tcp"\n');
});
