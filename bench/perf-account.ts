/**
 * CPU per connection by kernel function, from a whole-machine profile: `perf report --children
 * --sort sym -g none --stdio` gives each symbol's inclusive share of the samples and the event
 * count (cpu-clock nanoseconds over all CPUs); share x event count / connections = CPU
 * microseconds per connection spent in (or below) that function. Used by `npm run bench --
 * --perf` to show where a set-up spends what the other does not.
 */

/** The functions the report lists, in the order of the packet path, with what they stand for. */
export const ACCOUNTED: [symbol: string, meaning: string][] = [
  ['ip_rcv', 'IP receive on every hop (director passes and endpoints)'],
  ['ip_route_input_noref', 'route lookup of received packets'],
  ['fib_rules_lookup', '  of which policy rules walked'],
  ['fib_validate_source', '  of which reverse-path check'],
  ['tcp_v4_early_demux', 'early demux (socket lookup per packet)'],
  ['nf_conntrack_in', 'conntrack'],
  ['nf_nat_inet_fn', 'NAT'],
  ['tun_net_xmit', 'TUN: queue a packet for user space'],
  ['tun_chr_read_iter', 'TUN: read'],
  ['tun_get_user', 'TUN: write, with the forwarding it triggers'],
  ['__do_sys_io_uring_enter', 'io_uring_enter, with the writes it submits'],
  ['tcp_v4_rcv', 'TCP receive (endpoints)'],
  ['schedule', 'scheduler: context switches'],
];

export interface PerfChildren {
  /** cpu-clock event count: nanoseconds of CPU over all CPUs */
  eventCount: number;
  /** symbol -> inclusive share of samples, percent */
  children: Map<string, number>;
}

/** Parse `perf report --children --sort sym -g none --stdio` output. */
export function parsePerfChildren(text: string): PerfChildren {
  const ev = /Event count \(approx\.\): (\d+)/.exec(text);
  const children = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^\s+([\d.]+)%\s+[\d.]+%\s+\[[k.]\]\s+(\S+)/.exec(line);
    if (m && !children.has(m[2]!)) children.set(m[2]!, Number(m[1]));
  }
  return { eventCount: ev ? Number(ev[1]) : 0, children };
}

/** Microseconds of CPU per connection in `symbol` (0 when absent). */
export function usPerConnection(p: PerfChildren, symbol: string, connections: number): number {
  return connections > 0 ? ((p.children.get(symbol) ?? 0) / 100) * (p.eventCount / 1000 / connections) : 0;
}

/** The accounting as text lines: total, then each ACCOUNTED function, per `unit` of work
 *  (a connection; a MB for the stream tests). */
export function accountingText(p: PerfChildren, connections: number, unit = 'connection'): string {
  const total = connections > 0 ? p.eventCount / 1000 / connections : 0;
  const rows = [`  ${'all CPU samples (every core, idle included)'.padEnd(60)} ${total.toFixed(1).padStart(7)}`];
  for (const [sym, meaning] of ACCOUNTED) rows.push(`  ${`${meaning} [${sym}]`.padEnd(60)} ${usPerConnection(p, sym, connections).toFixed(1).padStart(7)}`);
  return `CPU microseconds per ${unit} (${Math.round(connections)} ${unit}s):\n${rows.join('\n')}\n`;
}
