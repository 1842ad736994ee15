/**
 * contrib/grafana/ulvs.json, the Grafana dashboard over ulvsd's /metrics: every metric name in
 * every query (panels and template variables) is a family that ulvsd exposes, every label a
 * query selects or groups by is a label of that family (or one Prometheus adds at scrape:
 * instance, job), and every query uses at least one node_ipvs_* or ulvs_* family. The families
 * and labels come from a scrape of createMetrics (prometheus.ts) fed with every optional
 * source, so a renamed family or label fails here. Control: the same check reports a misspelt
 * name, an unknown label and a query over no ulvs metric.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createMetrics } from './prometheus.js';
import { director, ip, key, RS1, TCP, VIP } from '../../test/support/bed.js';

const DASHBOARD = fileURLToPath(new URL('../../../contrib/grafana/ulvs.json', import.meta.url));
/** labels Prometheus attaches to every series at scrape time */
const TARGET_LABELS = new Set(['instance', 'job']);

/** family name -> its labels, from a scrape with every optional source filled. */
async function exposed(): Promise<Map<string, Set<string>>> {
  const d = director();
  const k = key(TCP, VIP, 80);
  d.addService({ ...k, scheduler: 'rr' });
  d.addDest(k, { addr: ip(RS1), port: 8080, weight: 1 });
  const m = createMetrics(async () => ({
    snapshot: d.snapshot(),
    engine: d.counters(),
    datapath: { fastpath_active: 1, tun_queue_dropped: 1 },
    workers: 1,
    health: [{ proto: TCP, vaddr: ip(VIP), vport: 80, raddr: ip(RS1), rport: 8080, up: true }],
    quorum: [{ proto: TCP, vaddr: ip(VIP), vport: 80, up: true }],
    vrrp: { instances: [{ name: 'VI_1', state: 'MASTER' }], groups: [], syncDaemon: { role: 'master' }, counters: { lines: 1, transitions: 1, events: 0, ignored: 0, malformed: 0, unknownNames: 0, roleChanges: 1 } },
    sync: { sync_tx_Records: 1, sync_daemon_tx_datagrams: 1, sync_daemon_rx_Ok: 1, sync_daemon_rx_SkipBadState: 1, sync_apply_Created: 1 },
    defense: { mode: { drop_entry: 1, drop_packet: 0, secure_tcp: 0 }, on: { drop_entry: 0, drop_packet: 0, secure_tcp: 0 }, dropRate: 0, availPages: 100, memPages: 100, tablePages: 100, memLow: 0, tableLow: 0 },
    admin: { too_busy: 1 },
    fastVerdicts: [{ interface: 'eth0', verdict: 'pass', frames: 1 }],
    dashboard: { streams: 1, opened: 1, refused: 0, dropped: 0, failed: 0 },
  }));
  const text = await m.scrape();
  const fams = new Map<string, Set<string>>();
  for (const [, name] of text.matchAll(/^# TYPE (\S+) /gm)) fams.set(name!, new Set());
  for (const [, name, labels] of text.matchAll(/^([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\} /gm))
    for (const [, l] of labels!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) fams.get(name!)?.add(l!);
  return fams;
}

interface Query {
  where: string;
  expr: string;
}
/** Every PromQL text in the dashboard: panel targets (rows' nested panels too) and query variables. */
function queries(dash: { panels?: unknown[]; templating?: { list?: { name: string; type: string; query?: unknown }[] } }): Query[] {
  const out: Query[] = [];
  const walk = (panels: unknown[] = []) => {
    for (const p of panels as { title?: string; targets?: { expr?: string }[]; panels?: unknown[] }[]) {
      for (const t of p.targets ?? []) if (t.expr !== undefined) out.push({ where: `panel "${p.title}"`, expr: t.expr });
      walk(p.panels);
    }
  };
  walk(dash.panels);
  for (const v of dash.templating?.list ?? []) {
    if (v.type !== 'query') continue;
    const q = typeof v.query === 'string' ? v.query : (v.query as { query: string }).query;
    out.push({ where: `variable $${v.name}`, expr: q });
  }
  return out;
}

/** What is wrong with the dashboard's queries against the exposed families; [] when nothing. */
function problems(qs: Query[], fams: Map<string, Set<string>>): string[] {
  const bad: string[] = [];
  for (const { where, expr } of qs) {
    const used = [...expr.matchAll(/\b((?:node_ipvs|ulvs)_[A-Za-z0-9_]*)\s*(\{[^}]*\})?/g)];
    if (used.length === 0) bad.push(`${where}: no node_ipvs_* or ulvs_* metric in ${expr}`);
    const labelsHere = new Set<string>(TARGET_LABELS);
    for (const [, name, sel] of used) {
      const labels = fams.get(name!);
      if (!labels) {
        bad.push(`${where}: ${name} is not exposed by ulvsd`);
        continue;
      }
      for (const l of labels) labelsHere.add(l);
      for (const [, l] of (sel ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)/g))
        if (!labels.has(l!) && !TARGET_LABELS.has(l!)) bad.push(`${where}: ${name} has no label ${l}`);
    }
    for (const [, list] of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g))
      for (const l of list!.split(',').map((s) => s.trim()).filter(Boolean)) if (!labelsHere.has(l)) bad.push(`${where}: grouping by ${l}, a label none of its metrics has`);
  }
  return bad;
}

test('grafana dashboard: every metric and label in every query is one ulvsd exposes', async () => {
  const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Parameters<typeof queries>[0];
  const qs = queries(dash);
  assert.ok(qs.length >= 20, `${qs.length} queries`);
  const fams = await exposed();
  assert.deepEqual(problems(qs, fams), []);
  // both naming families are used
  assert.ok(qs.some((q) => q.expr.includes('node_ipvs_')) && qs.some((q) => q.expr.includes('ulvs_')));
});

test('grafana dashboard check (control): a misspelt metric, an unknown label, a query over no ulvs metric are reported', async () => {
  const fams = await exposed();
  assert.deepEqual(problems([{ where: 'p', expr: 'rate(node_ipvs_conections_total[1m])' }], fams), ['p: node_ipvs_conections_total is not exposed by ulvsd']);
  assert.deepEqual(problems([{ where: 'p', expr: 'ulvs_packets_total{verdict="drop", reason="x"}' }], fams), ['p: ulvs_packets_total has no label reason']);
  assert.deepEqual(problems([{ where: 'p', expr: 'sum by (outcome) (ulvs_connections)' }], fams), ['p: grouping by outcome, a label none of its metrics has']);
  assert.deepEqual(problems([{ where: 'p', expr: 'up' }], fams), ['p: no node_ipvs_* or ulvs_* metric in up']);
  // the dashboard itself, with one name misspelt
  const text = readFileSync(DASHBOARD, 'utf8').replace('node_ipvs_backend_weight', 'node_ipvs_backend_wieght');
  const found = problems(queries(JSON.parse(text) as Parameters<typeof queries>[0]), fams);
  assert.equal(found[0], 'panel "Weight and health": node_ipvs_backend_wieght is not exposed by ulvsd', found.join('\n'));
});
