/**
 * Live changes never disturb existing connections: while 200 keep-alive connections stream
 * data through the director, real servers are added, edited, quiesced and removed, the
 * scheduler is changed and the rules file is reloaded. Every stream must finish without an
 * error and on the TCP connection it started with.
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

describe('live changes under load', { skip: needsRoot }, () => {
  let bed: DirectorBed;
  const adm = (args: string) => {
    const r = spawnSync(process.execPath, [ULVSADM, ...args.split(' ')], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
    assert.equal(r.status, 0, `ulvsadm ${args}: ${r.stderr}`);
  };
  before(async () => {
    bed = await new DirectorBed({ rules: `-A -t ${V}:80 -s rr\n-a -t ${V}:80 -r ${R1}:8080 -m\n-a -t ${V}:80 -r ${R2}:8080 -m\n`, realServers: 3, httpPort: 8080 }).start();
  });
  after(async () => {
    await bed?.stop();
  });

  test('200 streaming connections survive add/edit/quiesce/remove, a scheduler change and a reload', async () => {
    const streams = bed.clientAsync(['--streams', '200', '--duration', '8000', '--timeout', '15000']);
    await new Promise((r) => setTimeout(r, 2000)); // all 200 connections open and streaming
    adm(`-a -t ${V}:80 -r ${R3}:8080 -m -w 1`);
    adm(`-e -t ${V}:80 -r ${R1}:8080 -m -w 3`);
    adm(`-E -t ${V}:80 -s wlc`);
    adm(`-e -t ${V}:80 -r ${R2}:8080 -m -w 0`);
    const log = await bed.reload(`-A -t ${V}:80 -s wlc\n-a -t ${V}:80 -r ${R1}:8080 -m -w 3\n-a -t ${V}:80 -r ${R2}:8080 -m -w 0\n-a -t ${V}:80 -r ${R3}:8080 -m -w 2\n-A -u ${V}:53 -s rr\n-a -u ${V}:53 -r ${R1}:5353 -m\n`);
    assert.match(log, /applied: services \+1 -0 ~0, real servers \+1 -0 ~1/);
    adm(`-d -t ${V}:80 -r ${R3}:8080`); // carries no connection: the streams were opened before it existed
    const [r] = await streams;
    assert.equal(r?.['ok'], true, JSON.stringify(r));
    assert.equal(r?.['failures'], 0);
    assert.equal(r?.['changedSocket'], 0, 'every stream kept its TCP connection');
    assert.ok(Number(r?.['requests']) > 400, `requests: ${r?.['requests']}`);
    const fresh = bed.client(['--requests', '6']);
    assert.ok(fresh.every((x) => x['server'] === 'rs1'), 'new connections follow the new settings (rs2 quiesced, rs3 removed)');
  });
});
