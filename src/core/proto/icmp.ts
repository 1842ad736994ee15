/**
 * ICMP errors about tracked connections (ip_vs_in_icmp / ip_vs_out_icmp, ipvs-spec §4.6). An
 * error quotes the offending datagram's header; when that header names one of our connections,
 * the error is translated so the other side can match it to its own socket:
 *   from a real server (quotes client -> RIP:rport): becomes VIP:vport's error to the client;
 *   from the client side (quotes VIP:vport -> client): goes on to the real server.
 * Anything else ICMP (echo, errors about other traffic, garbage quotes) passes to the stack.
 */
import { countPacket } from '../accounting.js';
import { ConnFlag } from '../conn-table.js';
import type { EngineState } from '../engine-state.js';
import { icmpTranslate } from '../icmp.js';
import type { PacketMeta } from '../packet-meta.js';
import { Stat } from '../stats.js';
import { Outcome, type OutcomeCode } from '../verdict.js';
import { isTranslatedIcmpError } from '../../wire/icmp.js';
import { IPPROTO_TCP, IPPROTO_UDP, IPV4, Ipv4Check, Ipv4View, readI32, readU16 } from '../../wire/ipv4.js';

/** ICMP header bytes before the quoted datagram (type, code, checksum, unused). */
const ICMP_HEADER = 8;
/** quoted L4 bytes needed: the two ports */
const QUOTED_PORTS = 4;

export class IcmpErrors {
  readonly #s: EngineState;
  /** the quoted header, parsed with the same view as any IPv4 header */
  readonly #q = new Ipv4View();

  constructor(s: EngineState) {
    this.#s = s;
  }

  /** Translate the ICMP packet in m if it is an error about a connection (see above).
   *  `requests` false (backup_only in force): an error from the client side is not sent on
   *  (ip_vs_forward_icmp returns early); one from a real server still is (ip_vs_out_icmp). */
  handle(m: PacketMeta, requests: boolean): OutcomeCode {
    const buf = m.buf;
    if (m.l4len < ICMP_HEADER) return Outcome.DropIcmpMalformed;
    if (!isTranslatedIcmpError(buf[m.l4off]!)) return Outcome.PassIcmp;
    const eOff = m.l4off + ICMP_HEADER;
    const q = this.#q.reset(buf, eOff, m.l4len - ICMP_HEADER);
    if (q.checkQuoted() !== Ipv4Check.Ok) return Outcome.PassIcmp;
    const eHl = q.headerLength;
    if (q.len < eHl + QUOTED_PORTS) return Outcome.PassIcmp;
    const eproto = q.protocol;
    if (eproto !== IPPROTO_TCP && eproto !== IPPROTO_UDP) return Outcome.PassIcmp;
    if (q.fragmentOffset !== 0) return Outcome.PassIcmp;
    const esrc = readI32(buf, eOff + IPV4.SRC);
    const edst = readI32(buf, eOff + IPV4.DST);
    const esport = readU16(buf, eOff + eHl);
    const edport = readU16(buf, eOff + eHl + 2);
    const s = this.#s;
    const conns = s.conns;
    let c = conns.findOut(eproto, esrc, esport, edst, edport);
    if (c >= 0 && (conns.flags(c) & ConnFlag.FWD_MASK) === 0) {
      countPacket(s.dests.byId(conns.dest(c)), s.stats, Stat.OUTPKTS, Stat.OUTBYTES, m.total);
      icmpTranslate(buf, m.off, m.l4off, m.l4len, eOff, eHl, true, conns.vaddr(c), conns.vport(c));
      s.lastConn = c;
      return Outcome.ForwardIcmpOut;
    }
    if (!requests) return Outcome.PassBackupOnly;
    c = conns.findIn(eproto, edst, edport, esrc, esport);
    if (c >= 0) {
      const d = s.dests.byId(conns.dest(c));
      if (!d.available) return Outcome.DropDestUnavailable;
      countPacket(d, s.stats, Stat.INPKTS, Stat.INBYTES, m.total);
      // NAT: the error is rewritten for the real server; DR/TUN: sent on unchanged (ip_vs_icmp_xmit)
      if ((conns.flags(c) & ConnFlag.FWD_MASK) === 0) icmpTranslate(buf, m.off, m.l4off, m.l4len, eOff, eHl, false, conns.daddr(c), conns.dport(c));
      s.lastConn = c;
      return Outcome.ForwardIcmpIn;
    }
    return Outcome.PassIcmp;
  }
}
