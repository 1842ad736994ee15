/**
 * SMTP_CHECK and PING_CHECK against real servers in the test bed (ulvsd --keepalived).
 *
 * SMTP: a scripted SMTP server (test/support/smtp-responder.ts) in each real server's
 * namespace, first answering well everywhere (all servers in), then given new scripts (its
 * port stays open, so the only failure a check can see is the scripted one). rs1 greets with a multi-line 220 and answers 250 only to `HELO probe.example`: it
 * stays in (the helo_name reached it). The controls, each of which must leave the service:
 * rs2 greets with 554, rs3 answers HELO with 550, rs4 wants the name probe.example but its
 * checker sends keepalived's default name (so a checker that ignored helo_name would fail rs1
 * like rs4). Host blocks: on :26 rs1 is checked through two host blocks, the second of which
 * is rs2's server, so rs1 leaves :26; on :27 the same with only the first block keeps it.
 *
 * PING: rs1 answers echoes: in; a PING_CHECK of an address nobody has (192.0.2.99) is the
 * control: out. Then rs1's link is cut (rs1 leaves :80) and restored (it comes back).
 * Waits poll the saved rules for up to 30 s (no timing assumption).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DirectorBed, waitFor } from '../../src/lab/director-bed.js';
import { run } from '../../src/lab/shell.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';
import type { SmtpScript } from '../support/smtp-responder.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const RESPONDER = fileURLToPath(new URL('../support/smtp-responder.js', import.meta.url));
const V = LAB.VIP;
const [R1, R2, R3, R4] = [0, 1, 2, 3].map(LAB.realServer);
const NOBODY = '192.0.2.99';
const conf = `
virtual_server ${V} 25 {
  delay_loop 1
  connect_timeout 2
  lvs_sched rr
  real_server ${R1} 25 { SMTP_CHECK {
      helo_name probe.example
      retry 0
  } }
  real_server ${R2} 25 { SMTP_CHECK {
      helo_name probe.example
      retry 0
  } }
  real_server ${R3} 25 { SMTP_CHECK {
      helo_name probe.example
      retry 0
  } }
  real_server ${R4} 25 { SMTP_CHECK { retry 0 } }
}
virtual_server ${V} 26 {
  delay_loop 1
  connect_timeout 2
  lvs_sched rr
  real_server ${R1} 25 { SMTP_CHECK {
      helo_name probe.example
      retry 0
      host {
        connect_port 25
      }
      host {
        connect_ip ${R2}
      }
  } }
}
virtual_server ${V} 27 {
  delay_loop 1
  connect_timeout 2
  lvs_sched rr
  real_server ${R1} 25 { SMTP_CHECK {
      helo_name probe.example
      retry 0
      host {
        connect_port 25
      }
  } }
}
virtual_server ${V} 80 {
  delay_loop 1
  connect_timeout 1
  lvs_sched rr
  real_server ${R1} 80 { PING_CHECK {
      retry 1
      delay_before_retry 1
  } }
  real_server ${R2} 80 { PING_CHECK {
      connect_ip ${NOBODY}
      retry 0
  } }
}
`;

describe('SMTP_CHECK and PING_CHECK against real servers', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const saved = () => spawnSync(process.execPath, [ULVSADM, '-S', '-n'], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' }).stdout;
  /** wait until every `present` is in the saved rules and no `absent` is */
  const until = async (present: string[], absent: string[]) => {
    const t0 = Date.now();
    let s = saved();
    while (!(present.every((w) => s.includes(w)) && absent.every((g) => !s.includes(g))) && Date.now() - t0 < 30_000) {
      await new Promise((r) => setTimeout(r, 200));
      s = saved();
    }
    for (const w of present) assert.ok(s.includes(w), `${w} in\n${s}\n${bed.ulvsdLog.slice(-2000)}`);
    for (const g of absent) assert.ok(!s.includes(g), `${g} not in\n${s}\n${bed.ulvsdLog.slice(-2000)}`);
  };
  let scripts = '';
  /** give real server i's SMTP server a new script (an atomic rename: its port stays open) */
  const script = (i: number, o: Partial<SmtpScript>) => {
    const file = join(scripts, `rs${i}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify({ greeting: ['220 test.example ESMTP'], heloReply: '250 hello', ...o }));
    renameSync(`${file}.tmp`, file);
    return file;
  };
  before(async () => {
    scripts = mkdtempSync(join(tmpdir(), 'hk-smtp-'));
    bed = await new DirectorBed({ keepalived: conf, realServers: 4, httpPort: 8080, prefix: `hk-${randomBytes(2).toString('hex')}` }).start();
    const first: Partial<SmtpScript>[] = [{ greeting: ['220-first.example ESMTP', '220 more text'], heloName: 'probe.example' }, {}, {}, {}];
    for (const [i, o] of first.entries()) {
      const p = spawn('ip', ['netns', 'exec', bed.bed.realServers[i]!, process.execPath, RESPONDER, '--port', '25', '--script', script(i, o)], { stdio: ['ignore', 'pipe', 'pipe'] });
      bed.procs.push(p);
      await waitFor(p, /ready/);
    }
  });
  after(async () => {
    await bed?.stop();
    if (scripts) rmSync(scripts, { recursive: true, force: true });
  });

  test('SMTP_CHECK: 220 greeting, HELO helo_name, 250, QUIT; a bad greeting, a 5xx to HELO or a refused name take the server out', async () => {
    // first every server answers well: all in
    await until([R1, R2, R3, R4].map((r) => `-t ${V}:25 -r ${r}:25 -m -w 1`).concat([`-t ${V}:26 -r ${R1}:25 -m -w 1`, `-t ${V}:27 -r ${R1}:25 -m -w 1`]), []);
    script(1, { greeting: ['554 go away'] });
    script(2, { heloReply: '550 no' });
    script(3, { heloName: 'probe.example' });
    await until([`-t ${V}:25 -r ${R1}:25 -m -w 1`, `-t ${V}:27 -r ${R1}:25 -m -w 1`], [`${V}:25 -r ${R2}:`, `${V}:25 -r ${R3}:`, `${V}:25 -r ${R4}:`, `${V}:26 -r ${R1}:`]);
    await bed.logged(/SMTP_CHECK: bad SMTP greeting from 192\.0\.2\.12:25: \\?"554 go away/);
    await bed.logged(/SMTP_CHECK: bad HELO reply from 192\.0\.2\.13:25: \\?"550 no/);
    await bed.logged(/SMTP_CHECK: bad HELO reply from 192\.0\.2\.14:25: \\?"501 wrong HELO name/);
  });

  test('PING_CHECK: an echo reply keeps a server in; a cut link takes it out, its return brings it back', async () => {
    await until([`-t ${V}:80 -r ${R1}:80 -m -w 1`], [`${V}:80 -r ${R2}:`]);
    await bed.logged(/PING_CHECK: no ICMP echo reply from 192\.0\.2\.99/);
    const rs1 = bed.bed.realServers[0]!;
    run(['ip', 'netns', 'exec', rs1, 'ip', 'link', 'set', 'eth0', 'down']);
    try {
      await until([], [`${V}:80 -r ${R1}:`]);
    } finally {
      run(['ip', 'netns', 'exec', rs1, 'ip', 'link', 'set', 'eth0', 'up']);
      run(['ip', 'netns', 'exec', rs1, 'ip', 'route', 'replace', 'default', 'via', LAB.DIP]);
    }
    await until([`-t ${V}:80 -r ${R1}:80 -m -w 1`], []);
  });
});
