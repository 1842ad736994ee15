/**
 * VS/NAT transmission (ip_vs_nat_xmit and the reply's snat_handler, ipvs-spec §4.3-4.5): the
 * packet is rewritten in place and goes back to the stack, which routes it.
 *   request (client -> VIP:vport): destination becomes the connection's RIP:rport
 *   reply   (RIP:rport -> client): source becomes VIP:vport
 */
import type { ConnTable } from './conn-table.js';
import { natRewrite, NatSide } from './nat.js';
import type { PacketMeta } from './packet-meta.js';

export function natRequest(m: PacketMeta, conns: ConnTable, c: number): void {
  natRewrite(m.buf, m.off, m.l4off, m.l4len, m.proto, NatSide.DST, conns.daddr(c), conns.dport(c), m.partial);
}

export function natReply(m: PacketMeta, conns: ConnTable, c: number): void {
  natRewrite(m.buf, m.off, m.l4off, m.l4len, m.proto, NatSide.SRC, conns.vaddr(c), conns.vport(c), m.partial);
}
