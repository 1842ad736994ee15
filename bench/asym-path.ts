/**
 * Did a round of the asymmetric benchmark go the way its set-up claims? Pure: the figures come
 * from bench/asym.ts. A round that fails any of these is reported as failed, not averaged in.
 *
 *   every set-up    moved bytes (wrk read some), and every reply came back by the links the
 *                   set-up names: >= 99 % of the client's bytes by the direct-return links for
 *                   the direct-return set-ups (the rest is their TCP handshakes' L2 headers,
 *                   which in fact make it > 100 %), < 1 % for the others
 *   ulvs (all)      ulvs scheduled connections and carried at least one packet per completed
 *                   request (the first packets of every connection cross ulvs before the fast
 *                   path takes over, and are counted at once). Not one connection per request:
 *                   a SYN reusing the ports of a connection ulvs still holds in FIN_WAIT (DR sees
 *                   one direction only) is carried on that connection, as IPVS does with
 *                   conn_reuse_mode 1 (is_new_conn_expected), and the client reuses ports
 *                   quickly (tcp_tw_reuse)
 *   ulvs NAT        replies crossed ulvs (out-packets > 0)
 *   ulvs DR, TUN    no reply crossed ulvs (out-packets = 0)
 *   ulvs TUN        the real servers decapsulated at least one IPIP packet per completed
 *                   request (each connection's SYN at least came tunnelled)
 *   nft-dr          the netdev rule forwarded at least one packet per completed request
 */
import { DIRECT_RETURN, type AsymSetup, type PathCounters } from './asym-setups.js';

export interface RoundTraffic {
  /** requests (= connections) wrk completed */
  requests: number;
  /** bytes wrk read */
  bytes: number;
  /** bytes the client received on the direct-return links / bytes wrk read */
  directShare: number;
}

/** Why the round does not show the set-up's path, or null when it does. */
export function pathProblem(s: AsymSetup, t: RoundTraffic, c: PathCounters): string | null {
  if (!(t.bytes > 0 && t.requests > 0)) return 'no bytes moved (wrk completed no request)';
  if (DIRECT_RETURN.has(s) && !(t.directShare >= 0.99)) return `only ${(t.directShare * 100).toFixed(1)} % of the reply bytes came by the direct-return links`;
  if (!DIRECT_RETURN.has(s) && !(t.directShare < 0.01)) return `${(t.directShare * 100).toFixed(1)} % of the reply bytes came by the direct-return links, which this set-up does not use`;
  if (s === 'nft-dr') {
    if (!((c.nftPackets ?? 0) >= t.requests)) return `the nftables fwd rule matched ${c.nftPackets} packets for ${t.requests} connections`;
    return null;
  }
  if (!((c.ulvsConns ?? 0) > 0)) return `ulvs scheduled ${c.ulvsConns} connections for ${t.requests} completed requests`;
  if (!((c.ulvsInPkts ?? 0) >= t.requests)) return `ulvs carried ${c.ulvsInPkts} packets for ${t.requests} completed requests`;
  const nat = s === 'ulvs' || s === 'ulvs-nofp';
  if (nat && !((c.ulvsOutPkts ?? 0) > 0)) return 'NAT, yet no reply packet crossed ulvs';
  if (!nat && c.ulvsOutPkts !== 0) return `${c.ulvsOutPkts} reply packets crossed ulvs, which ${s} must not see`;
  if (s === 'ulvs-tun' && !((c.decapsulated ?? 0) >= t.requests)) return `the real servers decapsulated ${c.decapsulated} IPIP packets for ${t.requests} connections`;
  return null;
}
