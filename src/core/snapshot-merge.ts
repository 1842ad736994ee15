/**
 * Several data-path workers each run a director over their own share of the clients; what
 * ipvsadm shows is their sum. Services and servers are matched by identity (protocol, VIP,
 * port; address, port) and every counter, rate and connection count is added up. The first
 * snapshot gives the order and the settings (all workers apply the same rules).
 */
import type { DestSnapshot, DirectorSnapshot, ServiceSnapshot, StatsSnapshot } from './director.js';

const add = (a: number[], b: number[]) => a.map((x, i) => x + (b[i] ?? 0));
const addStats = <T extends StatsSnapshot>(a: T, b: StatsSnapshot): T => ({ ...a, counters: add(a.counters, b.counters), rates: add(a.rates, b.rates) });

export function mergeSnapshots(snaps: readonly DirectorSnapshot[]): DirectorSnapshot {
  const [first, ...rest] = snaps;
  if (!first) throw new Error('mergeSnapshots: no snapshot');
  const skey = (s: ServiceSnapshot) => `${s.proto}/${s.addr >>> 0}/${s.port}`;
  const dkey = (d: DestSnapshot) => `${d.addr >>> 0}/${d.port}`;
  const services = first.services.map((s) => ({ ...s, dests: s.dests.map((d) => ({ ...d })) }));
  const byKey = new Map(services.map((s) => [skey(s), s]));
  let out: DirectorSnapshot = { ...first, services };
  for (const snap of rest) {
    out = { ...out, buckets: out.buckets + snap.buckets, connections: out.connections + snap.connections, capacity: out.capacity + snap.capacity, totals: addStats(out.totals, snap.totals) };
    for (const s of snap.services) {
      const m = byKey.get(skey(s));
      if (!m) continue;
      Object.assign(m, addStats(m, s));
      const dests = new Map(m.dests.map((d) => [dkey(d), d]));
      for (const d of s.dests) {
        const x = dests.get(dkey(d));
        if (!x) continue;
        Object.assign(x, addStats(x, d), { activeConns: x.activeConns + d.activeConns, inactConns: x.inactConns + d.inactConns, persistConns: x.persistConns + d.persistConns, unanswered: x.unanswered + d.unanswered });
      }
    }
  }
  return { ...out, services };
}
