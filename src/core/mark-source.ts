/**
 * Where the engine learns a packet's firewall mark (skb->mark, set by the host's netfilter
 * rules, e.g. an nftables `meta mark set` in prerouting), which the packet itself does not
 * carry. Asked only for a packet that opens no known connection while some fwmark service
 * exists (decide.ts), as ip_vs_service_find uses the mark only to choose the service of a new
 * connection; packets of a connection are found by their tuple. On Linux the TUN's egress
 * program notes each marked packet's mark by tuple (bpf/tun_mark.bpf.c,
 * datapath/tun/mark-notes.ts); tests give the mark directly.
 */
export interface MarkSource {
  /** The mark of the packet in hand with this tuple (addresses int32, ports host order), or 0
   *  for none. Must not allocate. May consume what it read (a later unmarked packet with the
   *  same tuple then reads 0). */
  markOf(proto: number, saddr: number, sport: number, daddr: number, dport: number): number;
}

/** No packet has a mark. */
export const NO_MARKS: MarkSource = { markOf: () => 0 };

/** One mark for every packet (explain's query, tests). */
export class FixedMark implements MarkSource {
  mark = 0;
  markOf(): number {
    return this.mark;
  }
}
