/**
 * ulvsd --metrics in the test bed: /metrics after real traffic, parsed by prometheus_client,
 * and the /proc/net texts over HTTP and through `ulvsadm --proc`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { DirectorBed } from '../../src/lab/director-bed.js';
import { LAB } from '../../src/lab/testbed.js';
import { run } from '../../src/lab/shell.js';
import { needsRoot } from '../support/root.js';

const ULVSADM = fileURLToPath(new URL('../../src/cli/ulvsadm.js', import.meta.url));
const PY = '/usr/bin/python3';
const parser = spawnSync(PY, ['-c', 'import prometheus_client.parser'], { encoding: 'utf8' }).status === 0;
const V = LAB.VIP;
const RS = [0, 1].map(LAB.realServer);

describe('metrics and /proc texts of a running ulvsd', { skip: needsRoot || (parser ? false : 'needs python3-prometheus-client (apt)') }, () => {
  let bed: DirectorBed;
  /** GET a URL from inside the director's namespace (the listener is on its loopback). */
  const get = (path: string) => run(['ip', 'netns', 'exec', bed.bed.director, process.execPath, '-e', `fetch('http://127.0.0.1:9640${path}').then(r => r.text()).then(t => process.stdout.write(t))`]);
  before(async () => {
    bed = await new DirectorBed({ rules: `-A -t ${V}:80 -s rr\n${RS.map((a) => `-a -t ${V}:80 -r ${a}:8080 -m -w 2`).join('\n')}\n`, realServers: 2, httpPort: 8080, ulvsdArgs: ['--metrics', '127.0.0.1:9640', '--sysctl', 'kernel_setup=0'] }).start(); // every packet read (ulvs_datapath_reads), the engine's path
    assert.equal(bed.client(['--requests', '5']).filter((x) => x['ok']).length, 5);
  });
  after(async () => {
    await bed?.stop();
  });

  test('/metrics parses and counts the traffic', () => {
    const text = get('/metrics');
    const r = spawnSync(PY, ['-c', 'import sys,json\nfrom prometheus_client.parser import text_string_to_metric_families as p\nprint(json.dumps({f.name: [[s.name, s.labels, s.value] for s in f.samples] for f in p(sys.stdin.read())}))'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const fam = JSON.parse(r.stdout) as Record<string, [string, Record<string, string>, number][]>;
    assert.equal(fam['node_ipvs_connections']![0]![2], 5);
    assert.ok(fam['node_ipvs_incoming_packets']![0]![2] >= 25);
    assert.deepEqual(fam['node_ipvs_backend_weight']!.map((s) => s[2]), [2, 2]);
    assert.equal(fam['node_ipvs_backend_connections_inactive']!.reduce((n, s) => n + s[2], 0), 5);
    assert.ok(fam['ulvs_datapath_reads']![0]![2] >= 50);
    assert.equal(fam['ulvs_workers']![0]![2], 2);
  });

  test('/proc texts over HTTP and from ulvsadm --proc', () => {
    const ipvs = get('/proc/net/ip_vs');
    assert.match(ipvs, /^IP Virtual Server version 1\.2\.1 \(size=\d+\)\nProt LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\nTCP  CB00710A:0050 rr  \n  -> C000020C:1F90      Masq    2 /);
    const adm = (arg: string) => spawnSync(process.execPath, [ULVSADM, '--proc', arg], { env: { ...process.env, ULVS_SOCKET: bed.socket }, encoding: 'utf8' });
    assert.equal(adm('ip_vs').stdout, ipvs);
    const conn = adm('ip_vs_conn').stdout.split('\n');
    assert.equal(conn[0], 'Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Expires PEName PEData');
    assert.equal(conn.filter((l) => /^TCP C6336402 [0-9A-F]{4} CB00710A 0050 C00002(0B|0C) 1F90 TIME_WAIT +\d+$/.test(l)).length, 5);
    assert.match(adm('ip_vs_stats').stdout, /^   Total Incoming Outgoing/);
    assert.equal(adm('nosuch').status, 2);
  });
});
