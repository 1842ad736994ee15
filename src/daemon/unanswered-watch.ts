/**
 * The run-time side of LVS/NAT's requirements: a real server whose replies do not come back
 * through the director. The engines count, per real server, masqueraded TCP connections whose
 * client sent its SYN again before any packet of the server came back (RealServer.unanswered,
 * core/proto/tcp.ts; exported as ulvs_backend_unanswered_total). This turns the counter's
 * growth into log lines:
 *
 *   observe(snapshot, now) -> lines written   when the engines' `unanswered` event count grew
 *                    (daemon.ts polls the counters every 2 s: a snapshot harvests the kernel
 *                    fast path's counts, and one every 2 s disturbed connection sync's
 *                    announcements in the HA pair test); for each server whose
 *                    count grew and that is in service (weight > 0: with --keepalived a server
 *                    whose checker fails has left the table or weight 0), one warning naming the
 *                    server, its service, the growth and the likely causes; then at most one per
 *                    server per `everyMs` (default 60 s), carrying the growth since its last line
 *                    (written with the next growth after the minute).
 *
 * Pure apart from `warn`: time comes in (ms), so a test drives it with snapshots.
 */
import type { DirectorSnapshot } from '../core/ctl/listings.js';
import { formatIPv4 } from '../wire/addr.js';

const PROTO: Record<number, string> = { 6: 'TCP', 17: 'UDP', 132: 'SCTP' };

export class UnansweredWatch {
  /** by "VIP:port/proto RIP:port": the count last seen and when a line was last written */
  readonly #seen = new Map<string, { count: number; loggedAt: number; held: number }>();

  constructor(
    readonly warn: (msg: string, fields: Record<string, unknown>) => void,
    readonly everyMs = 60_000,
  ) {}

  /** See the file header. */
  observe(snap: DirectorSnapshot, now: number): number {
    let lines = 0;
    for (const s of snap.services) {
      const service = `${PROTO[s.proto] ?? s.proto} ${formatIPv4(s.addr)}:${s.port}`;
      for (const d of s.dests) {
        const server = `${formatIPv4(d.addr)}:${d.port}`;
        const key = `${service} ${server}`;
        const prior = this.#seen.get(key);
        // first sight (start, or a server just added): the count starts at 0 (not carried over a restart)
        if (!prior) this.#seen.set(key, { count: 0, loggedAt: -Infinity, held: 0 });
        const st = this.#seen.get(key)!;
        const grew = d.unanswered >= st.count ? d.unanswered - st.count : d.unanswered; // lower: zeroed (-Z) since
        st.count = d.unanswered;
        if (grew <= 0 || d.weight === 0) continue;
        st.held += grew;
        if (now - st.loggedAt < this.everyMs) continue;
        this.warn(
          `real server ${server} of ${service} does not answer through the director: ${st.held} connection${st.held === 1 ? '' : 's'} got no reply (the client sent its SYN again; the server's SYN-ACK never came back through ulvs). Under VS/NAT its replies must return through the director: its default gateway is probably not the DIP (the director's address on its network), or the client is on its segment and the server answers it directly. \`ulvs doctor\` checks both; counted in ulvs_backend_unanswered_total`,
          { server, service, unanswered: d.unanswered, since_last: st.held },
        );
        st.loggedAt = now;
        st.held = 0;
        lines++;
      }
    }
    return lines;
  }
}
