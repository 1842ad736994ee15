/**
 * /metrics parsed by a real Prometheus text parser (the official Python client's, Debian's
 * python3-prometheus-client; .ci/run installs it): node_exporter's families with their types
 * and labels, and ulvs's own, with the values of a director that forwarded packets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createMetrics } from './prometheus.js';
import { director, ip, key, RS1, RS2, TCP, VIP } from '../../test/support/bed.js';
import { ipv4 } from '../wire/build.js';

const PY = '/usr/bin/python3';
const parserMissing = spawnSync(PY, ['-c', 'import prometheus_client.parser'], { encoding: 'utf8' }).status === 0 ? false : 'needs python3-prometheus-client (apt) for its text-format parser';
const PARSE = `
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = {}
for f in text_string_to_metric_families(sys.stdin.read()):
    out[f.name] = {"type": f.type, "samples": [[s.name, s.labels, s.value] for s in f.samples]}
print(json.dumps(out))
`;

test('/metrics: node_exporter ipvs families and ulvs families, parsed by prometheus_client', { skip: parserMissing }, async () => {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080, weight: 3 });
  d.addDest(k, { addr: ip(RS2), port: 8080, weight: 0 });
  d.process(ipv4({ src: '198.51.100.2', dst: VIP }).tcp({ sport: 1, dport: 80, flags: 'S' }).build(), 0, 40, 0, 0);
  d.process(ipv4({ src: '198.51.100.2', dst: VIP }).tcp({ sport: 1, dport: 80, flags: 'A' }).payload('x'.repeat(60)).build(), 0, 100, 1, 0);
  d.process(Buffer.alloc(10), 0, 10, 2, 0); // a truncated packet: a drop
  const m = createMetrics(async () => ({ snapshot: d.snapshot(), engine: d.counters(), datapath: { reads: 7, writes: 6, gso_packets: 2, csum_partial: 5, write_errors: 0 }, workers: 1 }));
  const text = await m.scrape();
  const r = spawnSync(PY, ['-c', PARSE], { input: text, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const fam = JSON.parse(r.stdout) as Record<string, { type: string; samples: [string, Record<string, string>, number][] }>;
  // node_exporter's families: same names (the parser strips _total from counter family names), types, labels
  for (const n of ['node_ipvs_connections', 'node_ipvs_incoming_packets', 'node_ipvs_outgoing_packets', 'node_ipvs_incoming_bytes', 'node_ipvs_outgoing_bytes'])
    assert.equal(fam[n]?.type, 'counter', n);
  assert.deepEqual(fam['node_ipvs_connections']!.samples, [['node_ipvs_connections_total', {}, 1]]);
  assert.deepEqual(fam['node_ipvs_incoming_bytes']!.samples, [['node_ipvs_incoming_bytes_total', {}, 140]]);
  const w = fam['node_ipvs_backend_weight']!;
  assert.equal(w.type, 'gauge');
  assert.deepEqual(
    w.samples.map((s) => [s[1], s[2]]).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    [
      [{ local_address: VIP, local_mark: '', local_port: '80', proto: 'TCP', remote_address: RS1, remote_port: '8080' }, 3],
      [{ local_address: VIP, local_mark: '', local_port: '80', proto: 'TCP', remote_address: RS2, remote_port: '8080' }, 0],
    ],
  );
  assert.equal(fam['node_ipvs_backend_connections_active']!.samples.find((s) => s[1]['remote_address'] === RS1)![2], 1);
  assert.equal(fam['node_ipvs_backend_connections_inactive']!.type, 'gauge');
  // ulvs's own
  const pk = fam['ulvs_packets']!.samples;
  assert.equal(pk.find((s) => s[1]['outcome'] === 'forward_in')![2], 2);
  assert.equal(pk.find((s) => s[1]['outcome'] === 'drop_truncated')![1]['verdict'], 'drop');
  assert.equal(pk.find((s) => s[1]['outcome'] === 'drop_truncated')![2], 1);
  assert.equal(fam['ulvs_events']!.samples.find((s) => s[1]['event'] === 'conns_created')![2], 1);
  assert.equal(fam['ulvs_datapath_gso_packets']!.samples[0]![2], 2);
  assert.equal(fam['ulvs_connections']!.samples[0]![2], 1);
  assert.equal(fam['ulvs_connections_limit']!.samples[0]![2], d.conns.capacity);
  assert.equal(fam['ulvs_backend_bytes']!.samples.find((s) => s[1]['remote_address'] === RS1 && s[1]['direction'] === 'in')![2], 140);
  // connections a server did not answer through the director (core/proto/tcp.ts): none here
  assert.equal(fam['ulvs_backend_unanswered']!.type, 'counter');
  assert.equal(fam['ulvs_backend_unanswered']!.samples.find((s) => s[1]['remote_address'] === RS1)![2], 0);
});

test('/metrics: ulvs_backend_unanswered_total counts a client SYN sent again without a reply', { skip: parserMissing }, async () => {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080 });
  const syn = () => ipv4({ src: '198.51.100.2', dst: VIP }).tcp({ sport: 1, dport: 80, flags: 'S' }).build();
  for (const t of [0, 1000]) d.process(syn(), 0, 40, t, 0);
  const m = createMetrics(async () => ({ snapshot: d.snapshot(), engine: d.counters(), datapath: {}, workers: 1 }));
  const r = spawnSync(PY, ['-c', PARSE], { input: await m.scrape(), encoding: 'utf8' });
  const fam = JSON.parse(r.stdout) as Record<string, { samples: [string, Record<string, string>, number][] }>;
  assert.deepEqual(fam['ulvs_backend_unanswered']!.samples.map((s) => [s[0], s[1]['remote_address'], s[2]]), [['ulvs_backend_unanswered_total', RS1, 1]]);
});

test('/metrics: VRRP states, sync role and notify-line counters (keepalived mode), parsed by prometheus_client', { skip: parserMissing }, async () => {
  const d = director();
  const vrrp = {
    instances: [{ name: 'VI_EXT', state: 'MASTER' }, { name: 'VI_INT', state: null }],
    groups: [{ name: 'G_NAT', state: 'FAULT' }],
    syncDaemon: { role: 'master' },
    counters: { lines: 9, transitions: 5, events: 1, ignored: 1, malformed: 2, unknownNames: 1, roleChanges: 2 },
  };
  const m = createMetrics(async () => ({ snapshot: d.snapshot(), engine: d.counters(), datapath: {}, workers: 1, vrrp }));
  const r = spawnSync(PY, ['-c', PARSE], { input: await m.scrape(), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const fam = JSON.parse(r.stdout) as Record<string, { type: string; samples: [string, Record<string, string>, number][] }>;
  const on = (f: string) => fam[f]!.samples.filter((s) => s[2] === 1).map((s) => s[1]);
  assert.deepEqual(on('ulvs_vrrp_state'), [{ kind: 'instance', name: 'VI_EXT', state: 'MASTER' }, { kind: 'instance', name: 'VI_INT', state: 'UNKNOWN' }, { kind: 'group', name: 'G_NAT', state: 'FAULT' }]);
  assert.equal(fam['ulvs_vrrp_state']!.samples.length, 18, 'one series per state for each of 3');
  assert.deepEqual(on('ulvs_sync_role'), [{ role: 'master' }]);
  const lines = Object.fromEntries(fam['ulvs_vrrp_notify_lines']!.samples.filter((s) => s[0].endsWith('_total')).map((s) => [s[1]['result'], s[2]]));
  assert.deepEqual(lines, { state: 4, event: 1, ignored: 1, malformed: 2, unknown_name: 1 });
  assert.equal(fam['ulvs_vrrp_transitions']!.samples[0]![2], 5);
  assert.equal(fam['ulvs_sync_role_changes']!.samples[0]![2], 2);
  // without keepalived's VRRP the families are empty
  const none = createMetrics(async () => ({ snapshot: d.snapshot(), engine: d.counters(), datapath: {}, workers: 1 }));
  assert.doesNotMatch(await none.scrape(), /^ulvs_vrrp_state\{/m);
});

test('/metrics: connection-sync families from the engines\' and the daemon\'s counters, parsed by prometheus_client', { skip: parserMissing }, async () => {
  const d = director();
  const sync = { sync_tx_Records: 40, sync_daemon_tx_datagrams: 2, sync_daemon_tx_bytes: 1448, sync_daemon_tx_dropped_queue: 1, sync_daemon_tx_errors: 0, sync_daemon_rx_Ok: 7, sync_daemon_rx_DropSyncId: 3, sync_daemon_rx_own: 1, sync_daemon_rx_SkipBadState: 4, sync_daemon_rx_RecordsRouted: 9, sync_apply_Created: 5, sync_apply_Updated: 2, sync_apply_SkipIpv6: 1 };
  const m = createMetrics(async () => ({ snapshot: d.snapshot(), engine: d.counters(), datapath: {}, workers: 1, sync }));
  const r = spawnSync(PY, ['-c', PARSE], { input: await m.scrape(), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const fam = JSON.parse(r.stdout) as Record<string, { samples: [string, Record<string, string>, number][] }>;
  const by = (f: string, l: string) => Object.fromEntries(fam[f]!.samples.filter((s) => s[0].endsWith('_total')).map((s) => [s[1][l], s[2]]));
  assert.deepEqual(by('ulvs_sync_sent_datagrams', 'result'), { sent: 2, dropped: 1, failed: 0 });
  assert.equal(fam['ulvs_sync_sent_records']!.samples[0]![2], 40);
  assert.equal(fam['ulvs_sync_sent_bytes']!.samples[0]![2], 1448);
  assert.deepEqual(by('ulvs_sync_received_datagrams', 'result'), { Ok: 7, DropSyncId: 3, own: 1 });
  assert.deepEqual(by('ulvs_sync_received_records_skipped', 'reason'), { SkipBadState: 4, SkipIpv6: 1 });
  assert.deepEqual(by('ulvs_sync_entries', 'action'), { Created: 5, Updated: 2 });
});

test('/metrics: the fast path\'s frames by interface and verdict, as the source gives them', { skip: parserMissing }, async () => {
  const d = director();
  const fastVerdicts = [
    { interface: 'eth0', verdict: 'next', frames: 10 },
    { interface: 'eth0', verdict: 'redirect', frames: 2 ** 40 },
    { interface: 'br0', verdict: 'ok', frames: 3 },
  ];
  const m = createMetrics(async () => ({ snapshot: d.snapshot(), engine: d.counters(), datapath: {}, workers: 1, fastVerdicts }));
  const r = spawnSync(PY, ['-c', PARSE], { input: await m.scrape(), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const fam = JSON.parse(r.stdout) as Record<string, { type: string; samples: [string, Record<string, string>, number][] }>;
  assert.equal(fam['ulvs_fastpath_frames']!.type, 'counter');
  assert.deepEqual(
    fam['ulvs_fastpath_frames']!.samples.map((s) => [s[1]['interface'], s[1]['verdict'], s[2]]),
    fastVerdicts.map((v) => [v.interface, v.verdict, v.frames]),
  );
});

test('/metrics: the kernel set-up program counts, by result, from the data-path counters (ksetup_*), parsed by prometheus_client', { skip: parserMissing }, async () => {
  const d = director();
  const datapath = { ksetup_made: 90, ksetup_user: 1, ksetup_no_route: 3, ksetup_stale: 7, ksetup_segments: 200, ksetup_segment_ring_full: 2 };
  const m = createMetrics(async () => ({ snapshot: d.snapshot(), engine: d.counters(), datapath, workers: 1 }));
  const r = spawnSync(PY, ['-c', PARSE], { input: await m.scrape(), encoding: 'utf8' });
  const fam = JSON.parse(r.stdout) as Record<string, { samples: [string, Record<string, string>, number][] }>;
  const by = (f: string) => Object.fromEntries(fam[f]!.samples.filter((s) => s[0].endsWith('_total')).map((s) => [s[1]['result'], s[2]]));
  assert.deepEqual(by('ulvs_ksetup_syns'), { made: 90, user: 1, no_worker: 0, ring_full: 0, no_slot: 0, no_route: 3, race: 0, stale: 7 });
  assert.deepEqual(by('ulvs_ksetup_segments'), { reported: 200, ring_full: 2, no_owner: 0 });
});
