/**
 * The remaining checkers against real servers in the test bed: SSL_GET (TLS, status list),
 * UDP_CHECK (reply required; ICMP port unreachable), DNS_CHECK (a DNS answer, and a reply that
 * is not one), TCP_CHECK with connect_port.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const [R1, R2, R3] = [0, 1, 2].map(LAB.realServer);
const conf = `
virtual_server ${V} 443 {
  delay_loop 1
  connect_timeout 1
  lvs_sched rr
  real_server ${R1} 8443 { SSL_GET { url { path / } } }
  real_server ${R2} 8443 { SSL_GET {
      url {
        path /
        status_code 404
      }
  } }
}
virtual_server ${V} 53 {
  protocol UDP
  delay_loop 1
  connect_timeout 1
  lvs_sched rr
  real_server ${R1} 5353 { UDP_CHECK {
      payload 616263
      require_reply
  } }
  real_server ${R2} 5999 { UDP_CHECK { payload 616263 } }
}
virtual_server ${V} 54 {
  protocol UDP
  delay_loop 1
  connect_timeout 1
  lvs_sched rr
  real_server ${R1} 5300 { DNS_CHECK {
      type A
      name health.example.
  } }
  real_server ${R2} 5353 { DNS_CHECK { type A } }
  real_server ${R3} 5300 { TCP_CHECK { connect_port 8443 } }
}
`;

describe('SSL_GET, UDP_CHECK, DNS_CHECK and connect_port against real servers', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const saved = () => spawnSync(process.execPath, [ULVSADM, '-S', '-n'], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' }).stdout;
  before(async () => {
    bed = await new DirectorBed({ keepalived: conf, realServers: 3, httpPort: 8080, udpPort: 5353, httpsPort: 8443, dnsPort: 5300 }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('each checker decides as keepalived would', async () => {
    const want = [`:443 -r ${R1}:8443 -m -w 1`, `:53 -r ${R1}:5353 -m -w 1`, `:54 -r ${R1}:5300 -m -w 1`, `:54 -r ${R3}:5300 -m -w 1`];
    const gone = [`:443 -r ${R2}:`, `:53 -r ${R2}:`, `:54 -r ${R2}:`];
    const t0 = Date.now();
    let s = saved();
    while (!(want.every((w) => s.includes(w)) && gone.every((g) => !s.includes(g))) && Date.now() - t0 < 15_000) {
      await new Promise((r) => setTimeout(r, 200));
      s = saved();
    }
    for (const w of want) assert.ok(s.includes(w), `${w} in\n${s}\n${bed.ulvsdLog.slice(-1500)}`);
    for (const g of gone) assert.ok(!s.includes(g), `${g} not in\n${s}`);
    await bed.logged(/SSL_GET: HTTP status 200 for \//);
    await bed.logged(/UDP_CHECK: UDP ECONNREFUSED/);
    await bed.logged(/DNS_CHECK: no DNS answer within 1s/);
    const r = bed.client(['--udp', '53', '--queries', '2']);
    assert.ok(r.every((x) => x['server'] === 'rs1'), JSON.stringify(r));
  });
});
