/**
 * A changed `@ulvs lvs_sync_daemon` line takes effect at ulvsd's reload (SIGHUP), in the role
 * the VRRP state gives now, without waiting for the next VRRP role change (daemon/sync-role.ts
 * reconfigure). ulvsd --keepalived in the test bed, the VRRP state written to its notify FIFO
 * as keepalived writes it (no keepalived needed):
 *   1. VI_INT MASTER -> the master sync daemon runs with id 52;
 *   2. the line changed to id 53, maxlen 1200; SIGHUP -> the master runs with id 53, maxlen 1200
 *      (control: before this change ulvsd kept id 52 until a role change; the same check then
 *      fails — verified by running this test with the reconfigure call taken out);
 *   3. VI_INT BACKUP -> the backup runs with id 53 (the role still follows VRRP);
 *   4. the line removed; SIGHUP -> no daemon runs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a changed lvs_sync_daemon line applies at reload, in the current role', { skip: needsRoot }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'hC-reload-'));
  const fifo = join(dir, 'vrrp.fifo');
  const conf = (line: string) => `
global_defs {
  router_id lb1
  notify_fifo ${fifo}
  ${line}
}
vrrp_instance VI_INT {
  interface pubbr
  virtual_router_id 52
}
virtual_server ${LAB.VIP} 80 {
  lb_algo rr
  lb_kind NAT
  real_server ${LAB.realServer(0)} 8080 { weight 1 }
}
`;
  let bed: DirectorBed;
  const daemons = () => {
    const r = spawnSync(process.execPath, [ULVSADM, '-L', '--daemon'], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return r.stdout;
  };
  /** the daemon listing once it matches `re` (role changes run in the background), or fail */
  const until = async (re: RegExp, what: string) => {
    let last = '';
    for (let t0 = Date.now(); Date.now() - t0 < 8000; await sleep(100)) if (re.test((last = daemons()))) return last;
    assert.fail(`${what}: -L --daemon says ${JSON.stringify(last)}`);
  };
  const vrrp = (state: string) => writeFileSync(fifo, `INSTANCE "VI_INT" ${state} 150\n`);

  before(async () => {
    bed = await new DirectorBed({ prefix: `hC-${randomBytes(2).toString('hex')}`, keepalived: conf('@ulvs lvs_sync_daemon pubbr VI_INT id 52'), realServers: 1, clients: 1, httpPort: 8080 }).start();
  });
  after(async () => {
    await bed?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('MASTER: the master runs with id 52', async () => {
    vrrp('MASTER');
    await until(/^master sync daemon \(mcast=pubbr, syncid=52, maxlen=1472,/m, 'master with id 52');
  });

  test('line changed, SIGHUP: the master runs with id 53, maxlen 1200 at once', async () => {
    assert.match(await bed.reload(conf('@ulvs lvs_sync_daemon pubbr VI_INT id 53 maxlen 1200')), /reloaded/);
    const l = await until(/^master sync daemon \(mcast=pubbr, syncid=53, maxlen=1200,/m, 'restarted with the new line');
    assert.doesNotMatch(l, /backup sync daemon/, 'still in its role: no backup');
  });

  test('the role still follows VRRP: BACKUP -> the backup with id 53', async () => {
    vrrp('BACKUP');
    const l = await until(/^backup sync daemon \(mcast=pubbr, syncid=53,/m, 'backup with id 53');
    assert.doesNotMatch(l, /master sync daemon/);
  });

  test('line removed, SIGHUP: the daemon it started stops', async () => {
    assert.match(await bed.reload(conf('')), /reloaded/);
    await until(/^$/, 'no daemon');
  });
});
