/**
 * SYN cookies and a client that reuses its source port (syn_cookies=1, core/syn-proxy.ts):
 * ten HTTP/1.0 requests in a row from one client port to the VIP. The server closes first, so
 * the client keeps no TIME_WAIT and may take the port again at once, while ulvsd's entry for
 * the previous connection is still in TIME_WAIT and the real server still holds the previous
 * connection in its own TIME_WAIT. Both used to break the new connection:
 *   - the kernel answered the new SYN with a cookie, and the client's checked ACK found the old
 *     entry and was forwarded on it (the server answered with the old connection's ACK);
 *   - the proxied SYN to the server carries no timestamp, so the server's TIME_WAIT takes it
 *     only if its sequence number is above the old connection's; otherwise it answers with the
 *     old connection's ACK, and the handshake never completed.
 * Found by `npm run bench:flood -- --shapes few --ulvs-sysctl syn_cookies=2` (3 of 20 runs lost
 * 5-12 probes 3-4 s after the flood: the probes' client ports came round again). Now the ACK
 * opens a new connection (the old entry expired, counted as rescheduled) and the server's old
 * ACK is answered with a reset (send_synproxy_rst). Control: the same sequence through the tree
 * before the change answered 1 of 10 (run by hand: the first request only); syn_cookies=0
 * below answers all ten without any proxied SYN, so the check is of the cookie path.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';
import { engineCounters } from '../support/flood-client.js';

const V = LAB.VIP;
const RS = [0, 1].map(LAB.realServer);
const rules = [`-A -t ${V}:80 -s rr`, ...RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m`)].join('\n');
const PORT = 41234;

/** n requests one after another from client port PORT; each one's outcome (true: a 200 within 3 s). */
function sameport(bed: DirectorBed, n: number): boolean[] {
  const script = `
const net = require('node:net');
const one = () => new Promise((resolve) => {
  let data = '';
  const s = net.connect({ host: '${V}', port: 80, localPort: ${PORT} }, () => s.write('GET / HTTP/1.0\\r\\n\\r\\n'));
  const t = setTimeout(() => (s.destroy(), resolve(false)), 3000);
  s.on('data', (d) => (data += d));
  s.on('error', () => (clearTimeout(t), resolve(false)));
  s.on('close', () => (clearTimeout(t), resolve(/^HTTP\\/1\\.[01] 200/.test(data))));
});
(async () => { const r = []; for (let i = 0; i < ${n}; i++) { r.push(await one()); await new Promise((x) => setTimeout(x, 50)); } console.log(JSON.stringify(r)); })();
`;
  return JSON.parse(run(['ip', 'netns', 'exec', bed.bed.clients[0]!, process.execPath, '-e', script]).trim()) as boolean[];
}

describe('SYN cookies: a client port used again at once', { skip: needsRoot }, () => {
  for (const mode of [1, 0]) {
    test(`syn_cookies=${mode}: ten requests from one client port, all answered`, async () => {
      const bed = await new DirectorBed({ rules, realServers: 2, httpPort: 8080, prefix: `qr${mode}${process.pid % 10000}`, ulvsdArgs: ['--sysctl', `syn_cookies=${mode}`] }).start();
      try {
        const r = sameport(bed, 10);
        const c = await engineCounters(bed);
        assert.deepEqual(r, Array(10).fill(true), `answered: ${JSON.stringify(r)}; counters ${JSON.stringify({ syn: c['send_synproxy_syn'], rst: c['send_synproxy_rst'], rescheduled: c['rescheduled'] })}`);
        if (mode === 1) {
          assert.equal(c['send_synproxy_syn'], 10, 'every connection went through the cookie handshake');
          assert.ok(c['rescheduled']! >= 9, `the old entry expired for each reuse (${c['rescheduled']})`);
        } else assert.equal(c['send_synproxy_syn'] ?? 0, 0);
      } finally {
        await bed.stop();
      }
    });
  }
});
