/**
 * ulvsd --keepalived in the test bed: real checkers against real servers. A stopped service
 * leaves the pool within delay_loop + connect_timeout (+ retries) and returns with it;
 * inhibit_on_failure shows weight 0; quorum loss sends clients to the sorry server and back;
 * MISC_CHECK exit codes (down, dynamic weight); HTTP_GET against a wrong status and a wrong
 * digest.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { fillPattern } from '../../src/lab/pattern.js';
import { needsRoot } from '../support/root.js';
import { run } from '../../src/lab/shell.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const [R1, R2, R3] = [0, 1, 2].map(LAB.realServer);
const md5of16 = (() => {
  const b = Buffer.alloc(16);
  fillPattern(b, 0);
  return createHash('md5').update(b).digest('hex');
})();

describe('keepalived.conf with health checkers', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const dir = mkdtempSync(join(tmpdir(), 'ulvs-misc-'));
  const miscFile = join(dir, 'code');
  const notes = join(dir, 'notes');
  const conf = (w83 = 1) => `
global_defs { router_id lb1 }
virtual_server ${V} 80 {
  omega
  quorum_down "sh -c 'echo vs80 quorum_down >> ${notes}'"
  delay_loop 1
  lb_algo rr
  lb_kind NAT
  connect_timeout 1
  retry 1
  delay_before_retry 1
  real_server ${R1} 8080 { weight 1
    notify_down "sh -c 'echo rs1 down >> ${notes}'"
    notify_up "sh -c 'echo rs1 up >> ${notes}'"
    TCP_CHECK { }
  }
  real_server ${R2} 8080 { weight 1
    inhibit_on_failure
    HTTP_GET {
      url {
        path /
        status_code 200
      }
    }
  }
}
virtual_server ${V} 81 {
  delay_loop 1
  lvs_sched rr
  connect_timeout 1
  retry 0
  quorum 2
  sorry_server ${R3} 8080
  real_server ${R1} 8080 { weight 1
    TCP_CHECK { }
  }
  real_server ${R2} 8080 { weight 1
    TCP_CHECK { }
  }
}
virtual_server ${V} 82 {
  delay_loop 1
  lvs_sched rr
  real_server ${R3} 8080 { weight 1
    MISC_CHECK {
      misc_path "sh -c 'exit $(cat ${miscFile})'"
      misc_dynamic
      misc_timeout 2
    }
  }
}
virtual_server ${V} 83 {
  delay_loop 1
  lvs_sched rr
  real_server ${R1} 8080 { HTTP_GET { url { path /status/503 } } }
  real_server ${R2} 8080 { weight W83
    HTTP_GET {
      url {
        path /bytes/16
        digest ${md5of16}
      }
  } }`.replace('W83', String(w83)) + `
  real_server ${R3} 8080 { HTTP_GET {
      url {
        path /bytes/16
        digest 0123456789abcdef0123456789abcdef
      }
  } }
}
`;
  const saved = () => spawnSync(process.execPath, [ULVSADM, '-S', '-n'], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' }).stdout;
  const listed = () => spawnSync(process.execPath, [ULVSADM, '-L', '-n'], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' }).stdout;
  const until = async (what: string, f: () => boolean, ms = 15_000) => {
    const t0 = Date.now();
    while (!f()) {
      if (Date.now() - t0 > ms) assert.fail(`timed out waiting for ${what}\n${bed.ulvsdLog.slice(-2000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return Date.now() - t0;
  };
  const servers = (port: number, n = 6) => new Set(bed.client(['--http', String(port), '--requests', String(n), '--timeout', '2000']).map((x) => x['server']));

  before(async () => {
    writeFileSync(miscFile, '5'); // misc_dynamic: up with weight 3
    bed = await new DirectorBed({ keepalived: conf(), realServers: 3, httpPort: 8080, ulvsdArgs: ['--metrics', '127.0.0.1:9640'] }).start();
  });
  after(async () => {
    await bed?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('start-up: warnings for skipped sections; HTTP_GET status and digest; MISC dynamic weight', async () => {
    await bed.logged(/keepalived\.conf: .*global_defs: left to keepalived: router_id/);
    await until('HTTP checks on :83 and the MISC weight on :82', () => {
      const s = saved();
      return !s.includes(`:83 -r ${R1}:`) && s.includes(`:83 -r ${R2}:8080 -m -w 1`) && !s.includes(`:83 -r ${R3}:`) && s.includes(`:82 -r ${R3}:8080 -m -w 3`);
    });
    await bed.logged(new RegExp(`${R1.replace(/\./g, '\\.')}:8080 of TCP ${V.replace(/\./g, '\\.')}:83 is down: HTTP_GET: HTTP status 503`));
    await bed.logged(/MD5 digest [0-9a-f]{32} for \/bytes\/16, expected 0123456789abcdef0123456789abcdef/);
    assert.deepEqual([...servers(83)], ['rs2']);
  });

  test('a stopped service leaves in time and comes back; inhibit_on_failure keeps weight 0', async () => {
    assert.deepEqual([...servers(80)].sort(), ['rs1', 'rs2']);
    await bed.stopServer(0);
    const left = await until('rs1 to leave :80', () => !saved().includes(`:80 -r ${R1}:`));
    // delay_loop 1 + connect_timeout 1 + one retry after 1 s, plus scheduling slack
    assert.ok(left <= 4500, `left after ${left} ms`);
    assert.deepEqual([...servers(80)], ['rs2'], 'no new connection reaches it');
    await bed.stopServer(1);
    await until('rs2 inhibited on :80', () => saved().includes(`:80 -r ${R2}:8080 -m -w 0`));
    assert.match(listed(), new RegExp(`-> ${R2.replace(/\./g, '\\.')}:8080 +Masq +0 `), 'ulvsadm -L -n shows weight 0');
    await bed.startServer(0);
    await bed.startServer(1);
    await until('both back on :80', () => saved().includes(`:80 -r ${R1}:8080 -m -w 1`) && saved().includes(`:80 -r ${R2}:8080 -m -w 1`));
    await bed.logged(/is up: TCP_CHECK: TCP connect ok/);
    await until('notify scripts', () => {
      try {
        return /rs1 down\n(?:.*\n)*rs1 up/.test(readFileSync(notes, 'utf8')); // quorum_down may come between
      } catch {
        return false;
      }
    });
    await bed.logged(/"kind":"health".*"state":"down"/);
    const line = bed.ulvsdLog.split('\n').find((l) => l.includes('"kind":"health"') && l.includes('"state":"down"') && l.includes(`"service":"TCP ${V}:80"`) && l.includes(`${R1}:8080`));
    assert.ok(line, 'a structured health line');
    const j = JSON.parse(line!) as Record<string, unknown>;
    assert.deepEqual([j['level'], j['server'], j['action']], [30, `${R1}:8080`, 'removed']);
    assert.match(String(j['reason']), /^TCP_CHECK: TCP connect failed: ECONNREFUSED/);
  });

  test('checker and quorum state in /metrics; a SIGHUP reload of keepalived.conf applies the difference', async () => {
    const metrics = run(['ip', 'netns', 'exec', bed.bed.director, process.execPath, '-e', "fetch('http://127.0.0.1:9640/metrics').then(r => r.text()).then(t => process.stdout.write(t))"]);
    assert.match(metrics, new RegExp(`ulvs_real_server_up\\{local_address="${V.replace(/\./g, '\\.')}",local_port="83",proto="TCP",remote_address="${R1.replace(/\./g, '\\.')}",remote_port="8080"\\} 0`));
    assert.match(metrics, new RegExp(`ulvs_real_server_up\\{local_address="${V.replace(/\./g, '\\.')}",local_port="83",proto="TCP",remote_address="${R2.replace(/\./g, '\\.')}",remote_port="8080"\\} 1`));
    assert.match(metrics, /ulvs_quorum_up\{local_address="203\.0\.113\.10",local_port="81",proto="TCP"\} 1/);
    const log = await bed.reload(conf(4));
    assert.match(log, /applied: services \+0 -0 ~0, real servers \+0 -0 ~1/);
    assert.match(saved(), new RegExp(`:83 -r ${R2.replace(/\./g, '\\.')}:8080 -m -w 4`));
    assert.doesNotMatch(saved(), new RegExp(`:83 -r ${R1.replace(/\./g, '\\.')}:`), 'the failed server stays out after the reload');
  });

  test('quorum loss sends clients to the sorry server, and back', async () => {
    await until(':81 served by rs1 and rs2', () => saved().includes(`:81 -r ${R1}:8080`) && saved().includes(`:81 -r ${R2}:8080`));
    await bed.stopServer(1);
    await until('the sorry server alone on :81', () => saved().includes(`:81 -r ${R3}:8080 -m -w 1`) && !saved().includes(`:81 -r ${R1}:`));
    await bed.logged(/quorum lost for 203\.0\.113\.10:81 .*sorry server 192\.0\.2\.13:8080 takes over/);
    assert.deepEqual([...servers(81)], ['rs3']);
    await bed.startServer(1);
    await until('quorum back on :81', () => !saved().includes(`:81 -r ${R3}:`) && saved().includes(`:81 -r ${R2}:8080`));
    assert.deepEqual([...servers(81)].sort(), ['rs1', 'rs2']);
  });

  test('MISC_CHECK: exit 1 takes the server down, exit 0 brings it back at its configured weight', async () => {
    writeFileSync(miscFile, '1');
    await until(':82 empty', () => !saved().includes(`:82 -r`));
    writeFileSync(miscFile, '0');
    await until(':82 back with weight 1', () => saved().includes(`:82 -r ${R3}:8080 -m -w 1`));
  });

  test('omega: stopping ulvsd runs notify_down of alive servers and quorum_down', async () => {
    writeFileSync(notes, '');
    assert.equal(await bed.stopDirector(), 0);
    await until('omega scripts', () => {
      const n = readFileSync(notes, 'utf8');
      return n.includes('rs1 down') && n.includes('vs80 quorum_down');
    });
  });
});
