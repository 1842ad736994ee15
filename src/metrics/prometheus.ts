/**
 * Prometheus exposition (issue 5): node_exporter's `node_ipvs_*` families with the same names,
 * types and labels (ecosystem.md §2.1; HELP texts are ulvs's own), plus ulvs's own families:
 * packets by outcome (every drop reason among them), engine events, data-path counters
 * (reads, writes, GSO super-packets, partial checksums), connection-table size and limit, and
 * per-backend traffic. One snapshot is fetched per scrape and feeds every family.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { DEFENSES, type DefenseStatus } from '../core/defense.js';
import type { DirectorSnapshot } from '../core/director.js';
import { FWMARK_PROTO } from '../core/service.js';
import { EVENT_NAMES, OUTCOME_NAMES, OUTCOME_VERDICT, VERDICT_NAMES } from '../core/verdict.js';
import { formatIPv4 } from '../wire/addr.js';

export interface MetricsSource {
  snapshot: DirectorSnapshot;
  /** engine counters by name (outcomes and events), summed over workers */
  engine: Record<string, number>;
  /** data-path counters by name, summed over workers */
  datapath: Record<string, number>;
  workers: number;
  /** keepalived mode: health of each real server, and quorum of each service */
  health?: { proto: number; vaddr: number; vport: number; raddr: number; rport: number; up: boolean }[];
  quorum?: { proto: number; vaddr: number; vport: number; up: boolean }[];
  /** keepalived mode with a notify FIFO: VRRP states as keepalived reported them, the sync role */
  vrrp?: VrrpMetrics;
  /** connection sync: the engines' sync_* counters and the daemon's sync_daemon_* counters by name */
  sync?: Record<string, number>;
  /** IPVS's flood defences over the engines (core/defense.ts mergeDefense) */
  defense?: DefenseStatus;
  /** the admin API's refusals by cause (control/admin-limits.ts AdminCounters) */
  admin?: Record<string, number>;
  /** the kernel fast path's verdict counters (bpf/ulvs_maps.h enum fast_verdict) by interface */
  fastVerdicts?: { interface: string; verdict: string; frames: number }[];
  /** the dashboard's live streams (daemon/dashboard-stream.ts): connected now, and counters */
  dashboard?: { streams: number; opened: number; refused: number; dropped: number; failed: number };
}

/** What ulvsd follows of keepalived's VRRP (daemon/vrrp-roles.ts VrrpStatus has this shape). */
export interface VrrpMetrics {
  instances: { name: string; state: string | null }[];
  groups: { name: string; state: string | null }[];
  syncDaemon: { role: string } | null;
  counters: { lines: number; transitions: number; events: number; ignored: number; malformed: number; unknownNames: number; roleChanges: number };
}
const VRRP_STATE_NAMES = ['MASTER', 'BACKUP', 'FAULT', 'STOP', 'DELETED', 'UNKNOWN'] as const;

const BACKEND_LABELS = ['local_address', 'local_port', 'remote_address', 'remote_port', 'proto', 'local_mark'] as const;

function backends(s: DirectorSnapshot) {
  return s.services.flatMap((v) =>
    v.dests.map((d) => ({
      // node_exporter: a fwmark service has no local address or port, its mark as /proc shows it
      labels: {
        local_address: v.proto === FWMARK_PROTO ? '' : formatIPv4(v.addr),
        local_port: v.proto === FWMARK_PROTO ? '' : String(v.port),
        remote_address: formatIPv4(d.addr),
        remote_port: String(d.port),
        proto: v.proto === 6 ? 'TCP' : v.proto === 17 ? 'UDP' : v.proto === FWMARK_PROTO ? 'FWM' : 'SCTP',
        local_mark: v.proto === FWMARK_PROTO ? (v.addr >>> 0).toString(16).toUpperCase().padStart(8, '0') : '',
      },
      d,
    })),
  );
}

/** A registry whose families read `current` (set by scrape()). */
export function createMetrics(fetch: () => Promise<MetricsSource>): { registry: Registry; scrape: () => Promise<string> } {
  const registry = new Registry();
  let cur: MetricsSource | null = null;
  const src = () => cur!;
  /** An unlabelled counter whose value is read from the scrape's source. */
  const counter = (name: string, help: string, read: (s: MetricsSource) => number) =>
    new Counter({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        this.inc(read(src()));
      },
    });
  const totalCounter = (name: string, help: string, index: number) => counter(name, help, (s) => s.snapshot.totals.counters[index]!);
  totalCounter('node_ipvs_connections_total', 'Connections scheduled by the director (IPVS: Total Conns).', 0);
  totalCounter('node_ipvs_incoming_packets_total', 'Packets from clients handled by the director.', 1);
  totalCounter('node_ipvs_outgoing_packets_total', 'Packets from real servers handled by the director.', 2);
  totalCounter('node_ipvs_incoming_bytes_total', 'Bytes from clients handled by the director.', 3);
  totalCounter('node_ipvs_outgoing_bytes_total', 'Bytes from real servers handled by the director.', 4);
  const backendGauge = (name: string, help: string, value: (d: DirectorSnapshot['services'][number]['dests'][number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: BACKEND_LABELS,
      registers: [registry],
      collect() {
        this.reset();
        for (const b of backends(src().snapshot)) this.set(b.labels, value(b.d));
      },
    });
  backendGauge('node_ipvs_backend_connections_active', 'Active connections (TCP ESTABLISHED, SYN states) per real server of a service.', (d) => d.activeConns);
  backendGauge('node_ipvs_backend_connections_inactive', 'Inactive connections (other TCP states, all UDP) per real server of a service.', (d) => d.inactConns);
  backendGauge('node_ipvs_backend_weight', 'Weight of a real server in a service (0 = quiesced).', (d) => d.weight);

  const backendCounter = (name: string, help: string, extra: string[], fill: (c: Counter<string>, labels: Record<string, string>, d: DirectorSnapshot['services'][number]['dests'][number]) => void) =>
    new Counter({
      name,
      help,
      labelNames: [...BACKEND_LABELS, ...extra],
      registers: [registry],
      collect() {
        this.reset();
        for (const b of backends(src().snapshot)) fill(this, b.labels, b.d);
      },
    });
  backendCounter('ulvs_backend_connections_total', 'Connections scheduled to a real server of a service.', [], (c, l, d) => c.inc(l, d.counters[0]!));
  backendCounter('ulvs_backend_packets_total', 'Packets forwarded for a real server of a service, by direction.', ['direction'], (c, l, d) => {
    c.inc({ ...l, direction: 'in' }, d.counters[1]!);
    c.inc({ ...l, direction: 'out' }, d.counters[2]!);
  });
  backendCounter('ulvs_backend_bytes_total', 'Bytes forwarded for a real server of a service, by direction.', ['direction'], (c, l, d) => {
    c.inc({ ...l, direction: 'in' }, d.counters[3]!);
    c.inc({ ...l, direction: 'out' }, d.counters[4]!);
  });
  backendCounter('ulvs_backend_unanswered_total', 'Masqueraded TCP connections whose client sent its SYN again before any reply of the real server came through the director (its default gateway is probably not the DIP, or the client is on its segment).', [], (c, l, d) => c.inc(l, d.unanswered));
  backendGauge('ulvs_backend_persistent_connections', 'Persistence templates pointing to a real server.', (d) => d.persistConns);

  new Counter({
    name: 'ulvs_packets_total',
    help: 'Packets seen by the engine, by verdict and outcome (each drop reason is an outcome).',
    labelNames: ['verdict', 'outcome'],
    registers: [registry],
    collect() {
      this.reset();
      OUTCOME_NAMES.forEach((o, i) => this.inc({ verdict: VERDICT_NAMES[OUTCOME_VERDICT[i]!]!, outcome: o }, src().engine[o] ?? 0));
    },
  });
  new Counter({
    name: 'ulvs_events_total',
    help: 'Engine events: connections and templates created and expired, rescheduling, no usable server, connections handed to the kernel fast path and taken back.',
    labelNames: ['event'],
    registers: [registry],
    collect() {
      this.reset();
      for (const e of EVENT_NAMES) this.inc({ event: e }, src().engine[e] ?? 0);
    },
  });
  // Flood defences (core/defense.ts): what they dropped, and their state as of the last second
  new Counter({
    name: 'ulvs_opening_packets_dropped_total',
    help: 'Packets that would open a connection (TCP SYN, a new UDP flow) dropped, by reason: drop_packet (IPVS drop_packet defence) or table_full (no free entry, none evicted); also in ulvs_packets_total.',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ reason: 'drop_packet' }, src().engine['drop_defense'] ?? 0);
      this.inc({ reason: 'table_full' }, src().engine['drop_conn_table_full'] ?? 0);
    },
  });
  counter('ulvs_defense_entries_dropped_total', 'Connection entries dropped by the drop_entry defence (ip_vs_random_dropentry); also ulvs_events_total{event="defense_entry_dropped"}.', (s) => s.engine['defense_entry_dropped'] ?? 0);
  const defenseGauge = (name: string, help: string, labelNames: string[], fill: (g: Gauge<string>, d: DefenseStatus) => void) =>
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        const d = src().defense;
        if (d) fill(this, d);
      },
    });
  defenseGauge('ulvs_defense_mode', 'Each defence sysctl as IPVS shows it: 0 off, 1 automatic and off, 2 automatic and on, 3 always (highest over the workers).', ['defense'], (g, d) => DEFENSES.forEach((k) => g.set({ defense: k }, d.mode[k])));
  defenseGauge('ulvs_defense_active', 'Whether each defence acts now (1) or not (0), on any worker.', ['defense'], (g, d) => DEFENSES.forEach((k) => g.set({ defense: k }, d.on[k])));
  defenseGauge('ulvs_defense_drop_rate', 'drop_packet: one of this many connection-opening packets is dropped (0: none).', [], (g, d) => g.set(d.dropRate));
  defenseGauge('ulvs_defense_available_pages', 'The defence level: memory available for new entries, 4096-byte pages, the smaller of the host (MemAvailable) and the connection table (free entries); below amemthresh the automatic modes switch on.', [], (g, d) => g.set(d.availPages));
  defenseGauge('ulvs_defense_memory_low', 'Whether each source of memory is below amemthresh: host (MemAvailable) or table (free connection entries).', ['source'], (g, d) => (g.set({ source: 'host' }, d.memLow), g.set({ source: 'table' }, d.tableLow)));
  new Counter({
    name: 'ulvs_fastpath_frames_total',
    help: 'Frames the kernel fast path saw at the ingress of an interface, by its verdict: next (on to the capture, the TUN or the IP stack), redirect (forwarded by the program), ok (another host\'s frame, to the IP stack past tc), shot (dropped); every frame in exactly one. Since the program was loaded.',
    labelNames: ['interface', 'verdict'],
    registers: [registry],
    collect() {
      this.reset();
      for (const v of src().fastVerdicts ?? []) this.inc({ interface: v.interface, verdict: v.verdict }, v.frames);
    },
  });
  const dp = (name: string, key: string, help: string) => counter(name, help, (s) => s.datapath[key] ?? 0);
  dp('ulvs_datapath_reads_total', 'reads', 'Packets (or GSO super-packets) read from the TUN.');
  dp('ulvs_datapath_writes_total', 'writes', 'Packets written back to the TUN.');
  dp('ulvs_datapath_write_errors_total', 'write_errors', 'Failed writes to the TUN.');
  dp('ulvs_datapath_gso_packets_total', 'gso_packets', 'GSO super-packets read (offloads in use).');
  dp('ulvs_datapath_csum_partial_total', 'csum_partial', 'Packets read with a partial checksum (NEEDS_CSUM).');
  dp('ulvs_datapath_read_errors_total', 'read_errors', 'Failed reads from the TUN.');
  counter('ulvs_datapath_dropped_pass_no_conn_total', 'TCP segments to a service without a connection, dropped (the kernel would answer them from a local VIP); also ulvs_packets_total{outcome="drop_no_conn"}.', (s) => s.engine['drop_no_conn'] ?? 0);
  dp('ulvs_fastpath_fib_revokes_total', 'fib_revokes', 'Times the fast path went back to walking the policy rules (a rule or address change, a failed check).');
  dp('ulvs_syncookies_sent_total', 'syncookie_sent', 'SYNs the kernel fast path answered with a SYN cookie (syn_cookies=1; docs/syn-cookies.md).');
  dp('ulvs_syncookies_valid_total', 'syncookie_valid', 'ACKs whose SYN cookie the kernel checked, passed on marked to open a connection.');
  dp('ulvs_syncookies_invalid_total', 'syncookie_invalid', 'ACKs without a flow entry to a SYN-cookie service whose cookie did not check, passed on unmarked.');
  dp('ulvs_syncookies_refused_total', 'syncookie_refused', 'SYNs to a SYN-cookie service the kernel could not answer (payload, e.g. TCP Fast Open), dropped.');
  dp('ulvs_syncookies_forged_mark_total', 'tcp_validated_bit_cleared', 'TCP segments that arrived with the reserved bit the fast path uses as its mark, cleared.');
  dp('ulvs_datapath_short_reads_total', 'short_reads', 'Reads too short to hold a virtio header and an IPv4 header, dropped.');
  dp('ulvs_datapath_io_batches_total', 'batches', 'io_uring completion batches handled (packets per batch = reads / batches, roughly).');
  dp('ulvs_fastpath_update_errors_total', 'fastpath_update_errors', 'Flow entries the kernel fast path refused (not expected: its map has room for every slot).');
  dp('ulvs_fastpath_delete_errors_total', 'fastpath_delete_errors', 'Flow entries that were already gone when withdrawn.');
  dp('ulvs_datapath_buffer_ring_empty_total', 'no_buffers', 'Times every receive buffer was in use and the multishot read had to be re-armed (packets wait in the TUN queue meanwhile).');
  // resource exhaustion (daemon/pressure.ts logs each cause once)
  dp('ulvs_tun_queue_dropped_total', 'tun_queue_dropped', 'Packets the kernel dropped on their way into the TUN because a worker\'s queue was full (the device\'s tx_dropped since this ulvsd started).');
  dp('ulvs_datapath_uring_enter_retries_total', 'uring_enter_retries', 'io_uring_enter calls that failed for want of kernel memory or queue room (EAGAIN, ENOMEM, EBUSY) and were retried.');
  dp('ulvs_datapath_uring_fallbacks_total', 'uring_fallbacks', 'Workers that left io_uring after it failed for good, going on with read(2)/write(2).');
  dp('ulvs_datapath_uring_sq_full_total', 'uring_sq_full', 'Writes dropped because the io_uring submission queue was full.');
  dp('ulvs_fastpath_route_errors_total', 'fastpath_route_errors', 'Way-out entries of direct-routing or tunnelled connections the flow map refused (also in ulvs_fastpath_map_full_total when it was full): those packets are not sent to their real server.');
  dp('ulvs_fastpath_map_full_total', 'fastpath_map_full', 'Connections the kernel fast path could not take because its flow map was full (E2BIG/ENOMEM): they stay in user space.');
  new Counter({
    name: 'ulvs_health_checks_not_run_total',
    help: 'Health checks that did not run for want of this director\'s file descriptors or processes, by errno (the server keeps its state).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [k, n] of Object.entries(src().datapath)) if (k.startsWith('health_not_run_')) this.inc({ reason: k.slice('health_not_run_'.length) }, n);
    },
  });
  const gauge = (name: string, help: string, v: () => number) =>
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(v());
      },
    });
  gauge('ulvs_connections', 'Entries in the connection tables (connections and templates).', () => src().snapshot.connections);
  gauge('ulvs_connections_limit', 'Capacity of the connection tables.', () => src().snapshot.capacity);
  gauge('ulvs_workers', 'Data-path workers.', () => src().workers);
  gauge('ulvs_fastpath_fib_direct', "1 while the fast path looks up routes in the main table directly (--fast-path-fib auto and no policy rule but ulvsd's own and the kernel's), 0 while it walks the policy rules (docs/fib-direct.md).", () => src().datapath['fib_direct'] ?? 0);
  // kernel connection set-up (docs/kernel-setup.md): the table publisher, daemon/kernel-tables-follower.ts
  dp('ulvs_ksetup_tables_published_total', 'ksetup_published', 'Kernel set-up tables written (a new region, then the service entry flipped to it).');
  dp('ulvs_ksetup_tables_deferred_total', 'ksetup_deferred', 'Kernel set-up table changes that waited for the 50 ms grace period of the region last flipped.');
  dp('ulvs_ksetup_errors_total', 'ksetup_errors', 'Kernel errors writing the kernel set-up maps: the service stays on the user-space path.');
  gauge('ulvs_ksetup_services', 'Services whose SYNs the kernel fast path schedules itself now (kernel set-up).', () => src().datapath['ksetup_services'] ?? 0);
  // the program's own counts (ulvs_kstats, bpf/ulvs_maps.h enum ksetup_counter; ksetup-stats.ts)
  const kcount = (name: string, help: string, results: readonly (readonly [string, string])[]) =>
    new Counter({
      name,
      help,
      labelNames: ['result'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [result, key] of results) this.inc({ result }, src().datapath[key] ?? 0);
      },
    });
  kcount('ulvs_ksetup_syns_total', 'SYNs to a kernel set-up service by what the fast path did: made (scheduled, set up and reported by the kernel) or why it sent the SYN to ulvsd instead: user (the table says so: weight 0 or no server), no_worker, ring_full, no_slot, no_route (next hop unresolved), race, stale (the owning worker has not read its reports within --kernel-setup-alive-ms).', [
    ['made', 'ksetup_made'], ['user', 'ksetup_user'], ['no_worker', 'ksetup_no_worker'], ['ring_full', 'ksetup_ring_full'], ['no_slot', 'ksetup_no_slot'], ['no_route', 'ksetup_no_route'], ['race', 'ksetup_race'], ['stale', 'ksetup_stale'],
  ]);
  kcount('ulvs_ksetup_segments_total', 'Segments of kernel-made connections (SYN, FIN, RST, the handshake ACK, all after a FIN) the fast path forwarded and reported (reported), or sent to ulvsd because the report had no room (ring_full) or no owner (no_owner).', [
    ['reported', 'ksetup_segments'], ['ring_full', 'ksetup_segment_ring_full'], ['no_owner', 'ksetup_segment_no_owner'],
  ]);
  gauge('ulvs_fastpath_connections', 'Connections forwarded by the kernel fast path now (their packets skip user space; counted in the IPVS figures all the same).', () => src().datapath.fastpath_active ?? 0);
  const pname = (p: number) => (p === 6 ? 'TCP' : p === FWMARK_PROTO ? 'FWM' : 'UDP');
  new Gauge({
    name: 'ulvs_real_server_up',
    help: 'Health checker verdict for a real server of a service (1 = all its checkers pass); keepalived mode only.',
    labelNames: ['local_address', 'local_port', 'proto', 'remote_address', 'remote_port'],
    registers: [registry],
    collect() {
      this.reset();
      for (const h of src().health ?? [])
        this.set({ local_address: formatIPv4(h.vaddr), local_port: String(h.vport), proto: pname(h.proto), remote_address: formatIPv4(h.raddr), remote_port: String(h.rport) }, h.up ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ulvs_quorum_up',
    help: 'Whether a service has its quorum of live real servers (0 = the sorry server, if any, is serving); keepalived mode only.',
    labelNames: ['local_address', 'local_port', 'proto'],
    registers: [registry],
    collect() {
      this.reset();
      for (const q of src().quorum ?? []) this.set({ local_address: formatIPv4(q.vaddr), local_port: String(q.vport), proto: pname(q.proto) }, q.up ? 1 : 0);
    },
  });

  new Gauge({
    name: 'ulvs_vrrp_state',
    help: 'VRRP state of a keepalived instance or sync group as its notify FIFO reported it (1 for the current state; UNKNOWN before the first report).',
    labelNames: ['kind', 'name', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      const v = src().vrrp;
      for (const [kind, list] of [['instance', v?.instances ?? []], ['group', v?.groups ?? []]] as const)
        for (const e of list) for (const st of VRRP_STATE_NAMES) this.set({ kind, name: e.name, state: st }, (e.state ?? 'UNKNOWN') === st ? 1 : 0);
    },
  });
  new Gauge({
    name: 'ulvs_sync_role',
    help: 'Role of the connection sync daemon as lvs_sync_daemon derives it from VRRP (1 for the current role).',
    labelNames: ['role'],
    registers: [registry],
    collect() {
      this.reset();
      const role = src().vrrp?.syncDaemon?.role;
      if (role !== undefined) for (const r of ['master', 'backup', 'both']) this.set({ role: r }, r === role ? 1 : 0);
    },
  });
  new Counter({
    name: 'ulvs_vrrp_notify_lines_total',
    help: 'Lines read from keepalived\'s notify FIFO, by what became of them.',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      this.reset();
      const c = src().vrrp?.counters;
      if (!c) return;
      const state = c.lines - c.events - c.ignored - c.malformed - c.unknownNames;
      for (const [result, n] of [['state', state], ['event', c.events], ['ignored', c.ignored], ['malformed', c.malformed], ['unknown_name', c.unknownNames]] as const) this.inc({ result }, n);
    },
  });
  counter('ulvs_vrrp_transitions_total', 'VRRP state changes of instances and sync groups reported by keepalived.', (s) => s.vrrp?.counters.transitions ?? 0);
  counter('ulvs_sync_role_changes_total', 'Role changes handed to the connection sync daemon.', (s) => s.vrrp?.counters.roleChanges ?? 0);

  /** A counter family whose samples come from sync counters: label value -> counter name(s). */
  const syncFamily = (name: string, help: string, label: string, pick: (c: Record<string, number>) => [string, number][]) =>
    new Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        this.reset();
        const c = src().sync;
        if (c) for (const [v, n] of pick(c)) this.inc({ [label]: v }, n);
      },
    });
  const byPrefix = (c: Record<string, number>, prefix: string, keep: (k: string) => boolean = () => true): [string, number][] =>
    Object.entries(c)
      .filter(([k]) => k.startsWith(prefix) && keep(k.slice(prefix.length)))
      .map(([k, n]) => [k.slice(prefix.length), n]);
  syncFamily('ulvs_sync_sent_datagrams_total', 'Sync datagrams of the master: sent, dropped (queue full), failed (send error).', 'result', (c) => [
    ['sent', c['sync_daemon_tx_datagrams'] ?? 0],
    ['dropped', c['sync_daemon_tx_dropped_queue'] ?? 0],
    ['failed', c['sync_daemon_tx_errors'] ?? 0],
  ]);
  counter('ulvs_sync_sent_records_total', 'Connection records the engines put into sync datagrams.', (s) => s.sync?.['sync_tx_Records'] ?? 0);
  counter('ulvs_sync_sent_bytes_total', 'UDP payload bytes of sync datagrams sent.', (s) => s.sync?.['sync_daemon_tx_bytes'] ?? 0);
  syncFamily('ulvs_sync_received_datagrams_total', 'Sync datagrams received by the backup, by verdict (Ok, the kernel\'s drop reasons, own: from this host).', 'result', (c) => [
    ...byPrefix(c, 'sync_daemon_rx_', (k) => k === 'Ok' || k.startsWith('Drop')),
    ['own', c['sync_daemon_rx_own'] ?? 0],
  ]);
  syncFamily('ulvs_sync_received_records_skipped_total', 'Received records left out, by reason (decoder and apply).', 'reason', (c) => [
    ...byPrefix(c, 'sync_daemon_rx_', (k) => k.startsWith('Skip')),
    ...byPrefix(c, 'sync_apply_', (k) => k.startsWith('Skip')),
  ]);
  syncFamily('ulvs_sync_entries_total', 'What received records did to the connection table (created, updated, bound, replaced, ...).', 'action', (c) => byPrefix(c, 'sync_apply_', (k) => !k.startsWith('Skip')));

  new Counter({
    name: 'ulvs_admin_refused_total',
    help: 'Admin API requests and connections refused, by reason (control/admin-limits.ts: body_too_large, headers_too_large, too_busy, connections_refused, timed_out, bad_request, no_space).',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(src().admin ?? {})) this.inc({ reason }, n);
    },
  });

  gauge('ulvs_dashboard_streams', 'Dashboard live streams (GET /v1/events) connected now.', () => src().dashboard?.streams ?? 0);
  new Counter({
    name: 'ulvs_dashboard_streams_total',
    help: 'Dashboard live streams by outcome: opened, refused (too many connected), dropped (a client that did not read), failed (status ticks that could not be taken).',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      this.reset();
      const d = src().dashboard;
      if (d) for (const outcome of ['opened', 'refused', 'dropped', 'failed'] as const) this.inc({ outcome }, d[outcome]);
    },
  });

  // Scrapes are serialised: each one fills `cur`, renders, and clears it.
  let chain: Promise<unknown> = Promise.resolve();
  const once = async () => {
    cur = await fetch();
    try {
      return await registry.metrics();
    } finally {
      cur = null;
    }
  };
  return {
    registry,
    scrape() {
      const r = chain.then(once, once);
      chain = r.catch(() => undefined);
      return r;
    },
  };
}
