// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * The kernel fast path for established flows, at the tcx ingress of the director's interfaces
 * (src/datapath/tun/fastpath.ts explains when ulvs offers a connection to it). A packet whose
 * tuple is in the flow map is rewritten as core/nat.ts would (request: destination := RIP:rport;
 * reply: source := VIP:vport), its TTL decremented as forwarding would, its Ethernet addresses
 * taken from the kernel's route lookup (bpf_fib_lookup: policy rules included, or the main
 * table alone while ulvsd's lease says that gives the same answer, ulvs_fib_mode.h), counted in its
 * slot, and redirected out of the route's interface. The checksum helpers handle
 * CHECKSUM_PARTIAL and GSO packets. A request of an offloaded direct-routing connection
 * (FLOW_DR) is not rewritten: TTL - 1, Ethernet addresses of the route to its real server (which
 * must be the next hop itself: on a directly connected network), counted, redirected.
 * An offloaded tunnelled connection (FLOW_TUN, of the type and GUE port in its entry): TTL - 1,
 * the outer headers (IPIP, GUE or GRE) inserted after the Ethernet header (ulvs_net.h tun_encap,
 * as the TUN's way out does), Ethernet addresses of the route to its real server (the server
 * or the gateway to it), counted, redirected. A DR or tunnelled packet too big for the route to
 * its real server (the route's MTU, ulvs_net.h dr_route and tun_route; with the outer headers
 * for a tunnel, tun_overhead; a GSO super-packet by its segments) goes to ulvsd (TCX_NEXT),
 * which writes it back into the TUN, whose way out (tun_out.bpf.c) answers it with ICMP
 * "fragmentation needed" as IPVS does, so path MTU discovery works for established
 * connections too. FLOW_DR_ROUTE and FLOW_TUN_ROUTE entries are for the TUN's way out only:
 * TCX_NEXT.
 *
 * A frame for another host's MAC (PACKET_OTHERHOST: a bridge or switch flooding it, e.g. to
 * the other director of a VRRP pair while its MAC is unlearnt) returns TC_ACT_OK: it skips
 * the tc capture filters too (tcx runs before them; so do any other classic tc ingress
 * filters on the interface), so neither path forwards it; the IP layer drops it as it does any
 * other-host frame. IPVS never sees such frames either (ip_rcv drops them before its hooks).
 *
 * An ICMP error from a router between the director and a tunnelled real server about one of
 * the director's own outer packets (IPIP, GUE, GRE; addressed to this host, which would
 * ignore it) is relayed to the client, rewritten in place: "fragmentation needed" with the
 * MTU minus the tunnel overhead, so path MTU discovery works through such a router (IPVS's
 * ip_vs_in_icmp; ulvs_tun_icmp.h says what is recognised, counted and sent). For every other
 * packet this costs one compare (IP protocol 1).
 *
 * SYN cookies for the services ulvsd puts in ulvs_syncookie_svcs (its syn_cookies sysctl): a
 * pure SYN is answered here with a cookie SYN-ACK, an ACK without a flow entry whose cookie
 * checks goes on marked with TCP_VALIDATED_BIT, which the program clears from every other
 * segment (ulvs_syncookie.h). Once the engine has made the handshake with the real server, such
 * a connection is offloaded like any other NAT one, its entries carrying the sequence delta
 * (struct flow_value seq_delta): replies seq += delta, requests ack -= delta (translate_seq);
 * a segment of it with TCP options goes to ulvsd (it may be a SACK, whose blocks are not
 * translated here).
 *
 * Kernel connection set-up (ulvs_ksetup.h, docs/kernel-setup.md): a pure SYN without a flow
 * entry to a service in ulvs_ksvcs is scheduled here by the table ulvsd prepared, its entries
 * made (KF_MADE), forwarded and reported to the owner worker's ring; the SYN, FIN and RST
 * segments of such a connection, its handshake's ACK and everything after a FIN or RST are
 * forwarded and reported too (uncounted in the slot: the engine counts reported packets).
 *
 * Everything else returns TCX_NEXT (the tc capture and the TUN take it): not IPv4, IP options,
 * fragments, TTL <= 1, protocols other than TCP and UDP (ICMP: but for the relay), TCP
 * SYN/FIN/RST of ulvsd's own connections (they can change IPVS's TCP state), no flow entry, and whatever the route lookup cannot forward directly
 * (unresolved neighbour, too big for the next hop, local destination).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ulvs_maps.h"
#include "ulvs_net.h"
#include "ulvs_flow_map.h"
#include "ulvs_tun_icmp.h"
#include "ulvs_syncookie.h"
#include "ulvs_fib_mode.h"


struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct slot);
} ulvs_slots SEC(".maps");

/* Frame offsets: Ethernet, then IPv4 without options (checked), then L4. */
#define IP_OFF ETH_HLEN
#define L4_OFF (ETH_HLEN + sizeof(struct iphdr))
#define IP_FIELD(f) (IP_OFF + offsetof(struct iphdr, f))

/* What the rewrite needs of the packet, read before the first helper that changes it. */
struct pkt {
	__be32 saddr, daddr;
	__be16 sport, dport;
	__u8 proto, tos, ttl;
	__u8 tcp_bits;		/* TCP: PKT_ACK, PKT_OPTS, PKT_SFR (0 for UDP) */
	__u8 tcp_flags;		/* TCP: the header's byte 13, CWR ... FIN (0 for UDP) */
	__be16 frag_off, tot_len;
	__u32 csum_off;		/* frame offset of the L4 checksum */
	__u64 csum_flags;	/* BPF_F_MARK_MANGLED_0 for UDP: a zero checksum ("none") stays zero */
};
#define PKT_ACK 1	/* ACK is set */
#define PKT_OPTS 2	/* the TCP header carries options (data offset > 5) */
#define PKT_SFR 4	/* SYN, FIN or RST is set */

/* A SYN-cookie connection's sequence translation (struct flow_value seq_delta, ulvs_maps.h;
 * the engine's SynProxy.request/reply do the same): a reply's seq += delta, a request's
 * ack -= delta, mod 2^32. The checksum by the 4-byte difference, not a pseudo-header field:
 * for a CHECKSUM_PARTIAL packet (GSO included: every segment's seq derives from this one's)
 * the helper leaves the field alone, as the device sums the data. 0, or a helper's error. */
static __always_inline int translate_seq(struct __sk_buff *skb, const struct pkt *p, __u32 delta, const int reply)
{
	__u32 off = L4_OFF + (reply ? offsetof(struct tcphdr, seq) : offsetof(struct tcphdr, ack_seq));
	__be32 old, new;

	if (!reply && !(p->tcp_bits & PKT_ACK))
		return 0;
	if (bpf_skb_load_bytes(skb, off, &old, sizeof(old)))
		return -1;
	new = bpf_htonl(reply ? bpf_ntohl(old) + delta : bpf_ntohl(old) - delta);
	if (bpf_l4_csum_replace(skb, p->csum_off, old, new, sizeof(new)))
		return -1;
	return bpf_skb_store_bytes(skb, off, &new, sizeof(new), 0);
}

/* Rewrite and forward one direction (reply: 0 request, 1 reply; a constant at each call),
 * counted in the entry's slot unless `count` is 0 (a segment kernel set-up reports). */
static __always_inline int forward(struct __sk_buff *skb, const struct pkt *p, const struct flow_value *v, const int reply, const int count)
{
	struct bpf_fib_lookup fib = {};
	__be32 old_addr = reply ? p->saddr : p->daddr;
	__be16 old_port = reply ? p->sport : p->dport;
	__u32 addr_off = reply ? IP_FIELD(saddr) : IP_FIELD(daddr);
	__u32 port_off = L4_OFF + (reply ? 0 : 2);	/* source port, destination port */

	/* the route after the rewrite: request client -> RIP:rport, reply VIP:vport -> client */
	fib.family = AF_INET;
	fib.l4_protocol = p->proto;
	fib.ifindex = skb->ingress_ifindex;
	fib.tos = p->tos;
	fib.ipv4_src = reply ? v->addr : p->saddr;
	fib.ipv4_dst = reply ? p->daddr : v->addr;
	fib.sport = reply ? v->port : p->sport;
	fib.dport = reply ? p->dport : v->port;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), fib_flags(&fib.ipv4_dst)) != BPF_FIB_LKUP_RET_SUCCESS)
		return TCX_NEXT;
	/* a SYN-cookie connection: its seq (reply) or ack (request) first; the helpers fail only
	 * on offsets outside the packet, which the caller checked: a half-changed packet is dropped */
	if (v->seq_delta && translate_seq(skb, p, v->seq_delta, reply))
		return TC_ACT_SHOT;

	struct slot *s = count ? bpf_map_lookup_elem(&ulvs_slots, &v->slot) : NULL;
	if (s) {
		__sync_fetch_and_add(&s->packets[reply], 1);
		__sync_fetch_and_add(&s->bytes[reply], skb->len - ETH_HLEN);
		s->last_ns = bpf_ktime_get_ns();
	}

	/* L4 checksum: the address (pseudo-header) and the port; IP checksum: the address */
	bpf_l4_csum_replace(skb, p->csum_off, old_addr, v->addr, p->csum_flags | BPF_F_PSEUDO_HDR | sizeof(v->addr));
	bpf_l4_csum_replace(skb, p->csum_off, old_port, v->port, p->csum_flags | sizeof(v->port));
	bpf_l3_csum_replace(skb, IP_FIELD(check), old_addr, v->addr, sizeof(v->addr));
	bpf_skb_store_bytes(skb, addr_off, &v->addr, sizeof(v->addr), 0);
	bpf_skb_store_bytes(skb, port_off, &v->port, sizeof(v->port), 0);
	ttl_decrement(skb, IP_FIELD(ttl), IP_FIELD(check), p->ttl, p->proto);
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), fib.dmac, ETH_ALEN, 0);
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), fib.smac, ETH_ALEN, 0);
	return bpf_redirect(fib.ifindex, 0);
}

/* A request of an offloaded direct-routing connection: to the link-layer address of RIP (v->addr),
 * the IP header unchanged but for TTL - 1 (IPVS's ip_vs_dr_xmit). An unresolved neighbour or a
 * real server no longer on-link: TCX_NEXT (ulvsd and the TUN's way out take it). */
static __always_inline int forward_dr(struct __sk_buff *skb, const struct pkt *p, const struct flow_value *v, const int count)
{
	struct bpf_fib_lookup fib = {};

	__u32 need = wire_len(skb, L4_OFF, p->proto, bpf_ntohs(p->tot_len));

	if (dr_route(skb, &fib, p->saddr, v->addr, p->proto, p->tos, p->sport, p->dport, fib_flags(&v->addr), need) != BPF_FIB_LKUP_RET_SUCCESS)
		return TCX_NEXT;
	struct slot *s = count ? bpf_map_lookup_elem(&ulvs_slots, &v->slot) : NULL;
	if (s) {
		__sync_fetch_and_add(&s->packets[0], 1);
		__sync_fetch_and_add(&s->bytes[0], skb->len - ETH_HLEN);
		s->last_ns = bpf_ktime_get_ns();
	}
	ttl_decrement(skb, IP_FIELD(ttl), IP_FIELD(check), p->ttl, p->proto);
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), fib.dmac, ETH_ALEN, 0);
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), fib.smac, ETH_ALEN, 0);
	return bpf_redirect(fib.ifindex, 0);
}

/* A request of an offloaded tunnelled connection to RIP (v->addr): TTL - 1, then the outer
 * headers after the Ethernet header, to the next hop of the route to RIP. No route, unresolved
 * next hop, too big: TCX_NEXT (ulvsd and the way out). */
static __always_inline int forward_tun(struct __sk_buff *skb, const struct pkt *p, const struct flow_value *v, const int count)
{
	__u32 ff = fib_flags(&v->addr);	/* first: fewer values live across it (the 512-byte stack) */
	struct bpf_fib_lookup fib = {};
	struct tun_inner in = { .tos = p->tos, .ttl = p->ttl - 1, .frag_off = p->frag_off, .tot_len = bpf_ntohs(p->tot_len), .tun_type = v->tun_type, .tun_port = v->port };
	__u32 bytes = skb->len - ETH_HLEN;	/* the inner packet's, as IPVS counts them */
	/* the outer packet: this one plus the tunnel headers; a GSO super-packet's segments keep
	 * their size (the encapsulation lowers gso_size by the overhead) */
	__u32 need = skb->gso_size ? wire_len(skb, L4_OFF, p->proto, 0) : bpf_ntohs(p->tot_len) + tun_overhead(v);

	if (tun_route(skb, &fib, v->addr, in.tun_type, p->tos, ff, need) != BPF_FIB_LKUP_RET_SUCCESS)
		return TCX_NEXT;
	ttl_decrement(skb, IP_FIELD(ttl), IP_FIELD(check), p->ttl, p->proto);
	if (tun_encap(skb, ETH_HLEN, fib.ipv4_src, v->addr, &in))
		return TC_ACT_SHOT;	/* the TTL is already changed: cannot go on */
	struct slot *s = count ? bpf_map_lookup_elem(&ulvs_slots, &v->slot) : NULL;
	if (s) {
		__sync_fetch_and_add(&s->packets[0], 1);
		__sync_fetch_and_add(&s->bytes[0], bytes);
		s->last_ns = bpf_ktime_get_ns();
	}
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_dest), fib.dmac, ETH_ALEN, 0);
	bpf_skb_store_bytes(skb, offsetof(struct ethhdr, h_source), fib.smac, ETH_ALEN, 0);
	return bpf_redirect(fib.ifindex, 0);
}

#include "ulvs_ksetup.h"	/* kernel connection set-up: uses the forwarders above */

static __always_inline int fastpath(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *iph = (void *)(eth + 1);
	struct pkt p;

	if (skb->pkt_type == PACKET_OTHERHOST)
		return TC_ACT_OK;	/* another host's frame: not ours to forward (header comment) */
	if ((void *)iph + sizeof(*iph) + sizeof(struct udphdr) > data_end)
		return TCX_NEXT;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || iph->version != 4 || iph->ihl != 5)
		return TCX_NEXT;
	if (iph->frag_off & bpf_htons(IP_MF | IP_OFFSET))
		return TCX_NEXT;
	if (iph->protocol == IPPROTO_ICMP)
		return tun_icmp_relay(skb);	/* an error about our tunnel packets? (ulvs_tun_icmp.h) */
	if (iph->ttl <= 1)
		return TCX_NEXT;	/* the kernel sends the time-exceeded error */
	if (iph->protocol == IPPROTO_TCP) {
		struct tcphdr *th = (void *)(iph + 1);

		if ((void *)(th + 1) > data_end)
			return TCX_NEXT;
		if (clear_validated(skb, th))
			return TC_ACT_SHOT;	/* the bit could not be cleared */
		data = (void *)(long)skb->data;	/* the helper may have moved the packet */
		data_end = (void *)(long)skb->data_end;
		iph = data + ETH_HLEN;
		th = (void *)(iph + 1);
		if ((void *)(th + 1) > data_end)
			return TCX_NEXT;
		if (th->syn && !th->ack && !th->rst && !th->fin) {
			/* a corrupt IPv4 header is not answered (a cookie SYN-ACK's header is new, so its
			 * checksum would be right) nor set up here: on to the capture, whose engine drops
			 * and counts it as ip_rcv would */
			if (ipv4_header_sum(iph) != 0xffff)
				return TCX_NEXT;
			int rc = syncookie_syn(skb, iph, th, data_end);	/* SYN cookies first (ulvs_syncookie.h) */
			if (rc != TCX_NEXT)
				return rc;
			data = (void *)(long)skb->data;	/* unchanged, but the verifier cannot know */
			data_end = (void *)(long)skb->data_end;
			iph = data + ETH_HLEN;
			th = (void *)(iph + 1);
			if ((void *)(th + 1) > data_end)
				return TCX_NEXT;
		}
		p.csum_off = L4_OFF + offsetof(struct tcphdr, check);
		p.csum_flags = 0;
		p.tcp_bits = (th->ack ? PKT_ACK : 0) | (th->doff != 5 ? PKT_OPTS : 0) | (th->syn || th->fin || th->rst ? PKT_SFR : 0);
		p.tcp_flags = ((__u8 *)th)[13];
	} else if (iph->protocol == IPPROTO_UDP) {
		p.csum_off = L4_OFF + offsetof(struct udphdr, check);
		p.csum_flags = BPF_F_MARK_MANGLED_0;
		p.tcp_bits = 0;
		p.tcp_flags = 0;
	} else {
		return TCX_NEXT;
	}
	struct udphdr *ports = (void *)(iph + 1);	/* TCP and UDP start alike */
	p.saddr = iph->saddr;
	p.daddr = iph->daddr;
	p.sport = ports->source;
	p.dport = ports->dest;
	p.proto = iph->protocol;
	p.tos = iph->tos;
	p.ttl = iph->ttl;
	p.frag_off = iph->frag_off;
	p.tot_len = iph->tot_len;

	struct flow_key key = { .saddr = p.saddr, .daddr = p.daddr, .sport = p.sport, .dport = p.dport, .proto = p.proto };
	struct flow_value *v = bpf_map_lookup_elem(&ulvs_flows, &key);
	if (!v) {
		struct tcphdr *th = (void *)(iph + 1);
		if (p.proto == IPPROTO_TCP && (p.tcp_flags & (KTCP_SYN | KTCP_ACK | KTCP_RST | KTCP_FIN)) == KTCP_SYN)
			return ksetup_syn(skb, &p);	/* kernel set-up (ulvs_ksetup.h) */
		if (p.proto == IPPROTO_TCP && (void *)(th + 1) <= data_end && th->ack)
			return syncookie_ack(skb, iph, th);	/* the handshake's end? (ulvs_syncookie.h) */
		return TCX_NEXT;
	}
	if (v->kflags & KF_MADE) {	/* a kernel set-up connection: report what IPVS must see */
		int rc = ksetup_segment(skb, &p, v);
		if (rc != KSEG_PLAIN)
			return rc;
	} else if (p.tcp_bits & PKT_SFR) {
		return TCX_NEXT;	/* SYN, FIN, RST of ulvsd's connections: to the engine */
	}
	if (v->seq_delta && (p.tcp_bits & PKT_OPTS))
		return TCX_NEXT;	/* options on a SYN-cookie connection: maybe SACK (ulvs_maps.h) */
	if (v->dir == FLOW_REPLY)
		return forward(skb, &p, v, 1, 1);
	if (v->dir == FLOW_DR)
		return forward_dr(skb, &p, v, 1);
	if (v->dir == FLOW_TUN)
		return forward_tun(skb, &p, v, 1);
	if (v->dir != FLOW_REQUEST)
		return TCX_NEXT;	/* FLOW_*_ROUTE: the engine handles the connection */
	return forward(skb, &p, v, 0, 1);
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FAST_VERDICT_IFINDEXES);
	__type(key, __u32);
	__type(value, struct fast_verdicts);
} ulvs_verdicts SEC(".maps");

/* The program: fastpath() decides, and its return code is counted by the interface the frame
 * arrived on (enum fast_verdict), so every frame at the program is in exactly one counter. */
SEC("tc")
int ulvs_fastpath(struct __sk_buff *skb)
{
	int rc = fastpath(skb);
	__u32 idx = skb->ingress_ifindex < FAST_VERDICT_IFINDEXES - 1 ? skb->ingress_ifindex : FAST_VERDICT_IFINDEXES - 1;
	struct fast_verdicts *c = bpf_map_lookup_elem(&ulvs_verdicts, &idx);

	if (c) {
		__u32 v = rc == TCX_NEXT ? FAST_VERDICT_NEXT : rc == TC_ACT_REDIRECT ? FAST_VERDICT_REDIRECT :
			  rc == TC_ACT_OK ? FAST_VERDICT_OK : rc == TC_ACT_SHOT ? FAST_VERDICT_SHOT : FAST_VERDICT_OTHER;
		if (v < FAST_VERDICTS)
			c->packets[v]++;	/* per-CPU: no other writer */
	}
	return rc;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";	/* bpf_fib_lookup is GPL-only */
