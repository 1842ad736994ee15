/**
 * ulvsd — the director daemon.
 *
 *   ulvsd --version | --help     (the help lists every option with its default: daemon/option-table.ts)
 *   ulvsd [--rules FILE | --keepalived FILE] [options]
 *   ulvsd --rules FILE | --keepalived FILE [--config-id ulvs] -t|--config-test
 *
 * Without --rules or --keepalived it starts with an empty table (as loading ip_vs does) and is
 * configured with ulvsadm. Under systemd (contrib/systemd/ulvsd.service, Type=notify) it sends
 * READY=1 once it forwards, RELOADING=1/READY=1 around a SIGHUP reload and STOPPING=1 at a stop
 * (daemon/sd-notify.ts), and logs in the journal's format (daemon/logger.ts).
 *
 * --keepalived reads the virtual_server blocks of a keepalived.conf and runs their health
 * checkers (src/health): a failed real server leaves the service (or gets weight 0 with
 * inhibit_on_failure), quorum and the sorry server behave as keepalived's; every health
 * transition is logged with its reason and applied through the same change path. Its
 * conditional lines (@ID, @^ID) are decided for --config-id (default `ulvs`). With
 * `notify_fifo PATH` in global_defs, ulvsd follows keepalived's VRRP states from that FIFO
 * (GET /v1/vrrp, ulvs_vrrp_* metrics) and derives the sync daemon's role from the instance
 * `@ulvs lvs_sync_daemon IFACE INSTANCE` names (src/daemon/vrrp-follower.ts).
 *
 * -t / --config-test checks the rules file or keepalived.conf as a start would (parse, and the
 * validation of the rule set), starts nothing and exits with keepalived -t's statuses: 0 good, 4
 * cannot run (unreadable, or refused), 5 runs with errors (unknown keywords); each finding on
 * stderr as file:line:col: message (src/daemon/config-test.ts).
 *
 * --metrics serves Prometheus text at /metrics (node_exporter's node_ipvs_* families and
 * ulvs's own) and the /proc/net/ip_vs, ip_vs_stats and ip_vs_conn texts at the same paths, on
 * a loopback address; elsewhere only with --metrics-public, and then /metrics alone.
 *
 * Data path: N workers (default: one per core), each with its own TUN queue (IFF_MULTI_QUEUE)
 * and its own engine over a share of the clients: an eBPF steering program sends all packets of
 * a connection (both directions, and ICMP errors about it) to the same worker, and for persistent
 * services all packets of a client network, so no state is shared (src/datapath/tun/steering.ts).
 * Listings add the workers' figures up. Packets move through io_uring (a multishot read into a
 * ring of buffers, one io_uring_enter per batch; Linux 6.7+) or, with --io syscalls or on older
 * kernels (auto falls back, with a warning), through a read(2) and a write(2) per packet.
 * With --fast-path tc (the default where the kernel allows it), established connections are
 * handed to a tc program after --fast-path-after packets (default 8), at most --fast-path-conns
 * at once (default 65536): their packets are rewritten in the kernel, while SYN, FIN and RST
 * still reach the engine, which takes the connection back whenever its state changes, it
 * expires or the configuration changes (src/datapath/tun/fastpath.ts, src/core/offload.ts).
 *
 * Start-up refuses clearly when not root, when /dev/net/tun is missing, when the rules do not
 * parse or validate, when a VIP is a local address, or when another ulvsd in this network
 * namespace uses the TUN device, routing table or rule preferences (src/daemon/netns-claims.ts). Then it clears what a crashed run may
 * have left (our rule preferences and table), opens the TUN, installs the routing, logs one
 * line per VIP and per real server, starts the data-path worker and serves the admin API
 * (src/control/admin.ts) on a Unix socket (mode 0600).
 *
 * Every configuration change (API, SIGHUP reload, health) goes one way: a mutation of the
 * current rules, evaluated inside the control plane's serial section, validated whole on a
 * scratch engine; only the difference goes to the workers, then the policy rules are adjusted
 * (new ones first). A refused change changes nothing. Signals: SIGINT/SIGTERM stop and remove
 * everything (with --keep-state: hand over as SIGUSR2 does); SIGUSR2 stops for a restart or an
 * upgrade, leaving the connections in --state-dir and the TUN, routing, capture and fast path in
 * the kernel for the next start; SIGHUP re-reads the rules file; SIGUSR1 prints the ipvsadm-style
 * listings and the counters.
 */
import { availableParallelism } from 'node:os';
import { configTest } from '../daemon/config-test.js';
import { Daemon, DaemonError } from '../daemon/daemon.js';
import { daemonLog } from '../daemon/log.js';
import { parseOptions, UsageError } from '../daemon/options.js';
import { optionTable } from '../daemon/option-table.js';
import { helpText } from '../daemon/help.js';
import { sdNotifier } from '../daemon/sd-notify.js';
import { createLogger } from '../daemon/logger.js';
import { ulvsVersion } from '../daemon/version.js';

/** Start-up refusals: plain text on stderr, then exit. */
const fail = (e: Error, code: number): never => {
  process.stderr.write(`ulvsd: ${e.message}\n`);
  process.exit(code);
};

const parsed = (() => {
  try {
    return parseOptions(process.argv.slice(2), availableParallelism());
  } catch (e) {
    return e instanceof UsageError ? fail(e, e.code) : fail(e as Error, 2);
  }
})();
if (parsed.help) {
  process.stdout.write(helpText(optionTable(availableParallelism())));
  process.exit(0);
}
if (parsed.version) {
  process.stdout.write(`ulvsd ${ulvsVersion()}\n`);
  process.exit(0);
}
if (parsed.options.configTest) {
  const r = configTest(parsed.options);
  for (const f of r.findings) process.stderr.write(`${f}\n`);
  if (r.summary) process.stdout.write(`ulvsd: ${r.summary}\n`);
  process.exit(r.code);
}
const log = daemonLog(createLogger(parsed.options.logFormat));
const notify = sdNotifier(process.env, (m) => log.warn(m));
const daemon = new Daemon(parsed.options, log, (code) => process.exit(code), notify);
try {
  await daemon.start();
} catch (e) {
  if (e instanceof DaemonError) fail(e, e.code);
  throw e;
}

// SIGTERM/SIGINT: a final stop (everything removed), or a hand-over with --keep-state;
// SIGUSR2: always a hand-over (a restart or an in-place upgrade: README "Restarts and upgrades")
process.on('SIGINT', () => daemon.stop(0, parsed.options.keepState));
process.on('SIGTERM', () => daemon.stop(0, parsed.options.keepState));
process.on('SIGUSR2', () => daemon.stop(0, true));
process.on('SIGHUP', () => {
  if (daemon.stopping) return;
  notify('RELOADING=1');
  daemon.reload().catch((e: Error) => {
    log.warn(`reload refused, running rules unchanged: ${e.message}`);
    notify('READY=1'); // the running rules still serve
  });
});
process.on('SIGUSR1', () => void daemon.dump().then((text) => process.stdout.write(text)));
process.on('uncaughtException', (e) => daemon.crash(e));
