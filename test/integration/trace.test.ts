/**
 * `ulvsadm --trace` on a live director (NAT, two workers, the kernel fast path on):
 *   - a client's HTTP request: its SYN (a new connection scheduled to the real server, NONE ->
 *     SYN_RECV, destination VIP:80 rewritten to RIP:8080, sent with a route), the server's
 *     SYN-ACK (a reply, source rewritten back to VIP:80), and the client's FIN;
 *   - control: a trace whose client matches nobody shows no packet while the same request runs;
 *   - a long keep-alive stream: the connection offered to the kernel fast path, then kernel
 *     records with the slot counters' packets and bytes (packets ulvsd never saw).
 * The trace runs as a child process (the CLI streaming from the admin socket) while the client
 * runs; its JSON lines are read after it ends by its --seconds bound.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { needsRoot } from '../support/root.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const V = LAB.VIP;
const RS = LAB.realServer(0);
const C = LAB.client(0);

type Line = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe('ulvsadm --trace on a live director', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  /** Start a trace; resolves once ulvsd streams (workers recording), with its end as a promise
   *  (in an object: a promise resolved with a promise would wait for that one). */
  const trace = (args: string[]): Promise<{ ended: Promise<{ code: number | null; lines: Line[]; err: string }> }> =>
    new Promise((started, fail) => {
      const p = spawn(process.execPath, [ULVSADM, '--trace', '--json', ...args], { env: { ...process.env, ULVS_SOCKET: bed.socket }, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      let begun = false;
      const ended = new Promise<{ code: number | null; lines: Line[]; err: string }>((resolve) => p.on('exit', (code) => resolve({ code, err, lines: out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Line) })));
      p.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (!begun && out.includes('\n')) {
          begun = true;
          started({ ended });
        }
      });
      p.stderr.on('data', (d: Buffer) => (err += d.toString()));
      p.on('exit', (code) => !begun && fail(new Error(`trace exited ${code}: ${err}`)));
    });
  const request = () => {
    const r = bed.client(['--requests', '1']);
    assert.equal(r.filter((x) => x['ok']).length, 1, JSON.stringify(r));
  };

  before(async () => {
    bed = await new DirectorBed({ prefix: `ht-${randomBytes(2).toString('hex')}`, rules: `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${RS}:8080 -m -w 1\n`, realServers: 1, httpPort: 8080, ulvsdArgs: ['--workers', '2'] }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('control: a filter for another client shows nothing while a request runs; a second trace meanwhile is refused', async () => {
    // long enough for a second ulvsadm to start on a loaded machine
    const other = await trace(['--client', '198.51.100.77', '--seconds', '8']);
    const busy = spawnSync(process.execPath, [ULVSADM, '--trace', '--client', C, '--seconds', '1'], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
    assert.equal(busy.status, 255, `${busy.stdout} ${busy.stderr}`);
    assert.match(busy.stderr, /a trace is already running/);
    request();
    const o = await other.ended;
    assert.equal(o.code, 0, o.err);
    assert.equal(o.lines.filter((l) => l['kind'] === 'packet').length, 0, 'nothing for a client that sent nothing');
    assert.deepEqual([o.lines.at(-1)!['kind'], o.lines.at(-1)!['reason']], ['end', 'time is up']);
  });

  test("a client's HTTP request: SYN scheduled and rewritten, the SYN-ACK rewritten back, the client's FIN", async () => {
    const t = await trace(['--client', C, '-t', `${V}:80`, '--seconds', '3']);
    request();
    const { code, lines, err } = await t.ended;
    assert.equal(code, 0, err);
    const packets = lines.filter((l) => l['kind'] === 'packet');
    const syn = packets.find((l) => l['before'].flags === 'S');
    assert.ok(syn, JSON.stringify(packets, null, 1));
    assert.equal(syn['before'].dst, `${V}:80`);
    assert.equal(syn['after'].dst, `${RS}:8080`, 'destination rewritten to the real server');
    assert.equal(syn['after'].src, syn['before'].src, 'source kept (NAT)');
    assert.deepEqual([syn['outcome'], syn['connection'].new, syn['connection'].stateBefore, syn['connection'].state, syn['connection'].server], ['forward_in', true, 'NONE', 'SYN_RECV', `${RS}:8080`]);
    assert.match(syn['step'], new RegExp(`^new connection: scheduled -> ${RS.replace(/\./g, '\\.')}:8080 \\(Masq\\)`));
    assert.match(syn['sent'], new RegExp(`routed to ${RS.replace(/\./g, '\\.')}, dev \\S+`), 'sent with the route to the real server');
    const synAck = packets.find((l) => l['before'].flags === 'S.');
    assert.ok(synAck);
    assert.deepEqual([synAck['before'].src, synAck['after'].src, synAck['after'].dst, synAck['outcome']], [`${RS}:8080`, `${V}:80`, syn['before'].src, 'forward_out'], 'the reply rewritten back to VIP:80');
    assert.equal(synAck['connection'].stateBefore, 'SYN_RECV');
    const fin = packets.find((l) => l['before'].src === syn['before'].src && /F/.test(l['before'].flags));
    assert.ok(fin, "the client's FIN");
    assert.match(fin['connection'].stateBefore + fin['connection'].state, /ESTABLISHED|FIN_WAIT|CLOSE_WAIT|TIME_WAIT|LAST_ACK|CLOSE/);
    assert.equal(lines.at(-1)!['lost'], 0);
  });

  test('a long stream: offered to the kernel fast path, then its slot counters as kernel records', async () => {
    const t = await trace(['--client', C, '--seconds', '6', '--count', '5000']);
    const streams = await bed.clientAsync(['--streams', '1', '--duration', '3000']);
    assert.ok(streams.every((x) => x['ok']), JSON.stringify(streams));
    const { code, lines, err } = await t.ended;
    assert.equal(code, 0, err);
    const offered = lines.filter((l) => l['kind'] === 'packet' && l['connection']?.offeredNow);
    assert.ok(offered.length > 0, `a packet offered the connection to the kernel: ${JSON.stringify(lines.filter((l) => l['kind'] === 'packet').slice(0, 12))}`);
    assert.equal(offered[0]!['connection'].offloaded, true);
    const kernel = lines.filter((l) => l['kind'] === 'kernel');
    assert.ok(kernel.length > 0, 'kernel fast path records');
    const pk = kernel.reduce((n, l) => n + l['in'].packets + l['out'].packets, 0);
    assert.ok(pk > 100, `the kernel forwarded the stream's packets (${pk})`);
    assert.match(kernel[0]!['connection'], new RegExp(`> ${V.replace(/\./g, '\\.')}:80 -> ${RS.replace(/\./g, '\\.')}:8080$`));
  });
});
