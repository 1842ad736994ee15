// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * The way out of the TUN, at the TUN's own tcx ingress. A packet ulvsd writes back is an IPv4
 * packet without a link-layer header that the kernel would receive, route (policy rules
 * included), pass through the forward hooks and send. This program sends it directly:
 *
 *   - a request of a direct-routing connection (its tuple is in the flow map as FLOW_DR_ROUTE
 *     or FLOW_DR: ulvsd writes the entry before it writes the connection's first packet back)
 *     goes, unchanged but for TTL - 1, to the link-layer address of the real server
 *     (bpf_redirect_neigh with the real server as next hop, out of the interface of the route
 *     to it), as IPVS's ip_vs_dr_xmit does. It is dropped when the real server is not on a
 *     directly connected network (ulvsd refuses such servers; the route changed since) or the
 *     packet is too big for that interface (no ICMP "fragmentation needed" yet);
 *   - a request of a tunnelled connection (FLOW_TUN_ROUTE or FLOW_TUN, written as for DR, with
 *     the server's tunnel type and GUE port) goes, TTL - 1, inside outer headers (ulvs_net.h
 *     tun_encap: IPv4 from the director's address on the route to RIP to RIP, then nothing
 *     (IPIP), UDP + GUE, or GRE; IPVS's ip_vs_tunnel_xmit, ipvs_gue_encap, ipvs_gre_encap) to
 *     the next hop of the route to RIP: RIP itself or a gateway (the outer packet is an
 *     ordinary routed one). bpf_skb_adjust_room at the MAC layer inserts the room in front of
 *     the IP header (a TUN's skb has no MAC header: offset 0) and keeps GSO super-packets GSO.
 *     Dropped and counted (ulvs_tun_stats) when there is no route to RIP, or the packet plus
 *     the tunnel's overhead (tun_overhead: 20, 32, 24) is too big for the interface (IPVS
 *     would answer "fragmentation needed" with DF, or fragment the outer packet without it:
 *     neither yet);
 *   - anything else is routed by its destination: bpf_fib_lookup (the same routing, rules
 *     included), TTL - 1 (as forwarding would), then bpf_redirect_neigh to the route's interface
 *     and next hop (the neighbour layer writes the Ethernet header and resolves the next hop).
 *
 * What the lookup cannot forward directly (local destinations, no route, too big for the next
 * hop), TTL <= 1 and IP options return TCX_NEXT: the packet continues into the stack.
 *
 * GSO super-packets (ulvsd writes TCP segments of up to 64 KiB back) are fine on both ways: the
 * lookup's MTU check passes GSO packets whose segments fit, and the egress device segments them.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ulvs_maps.h"
#include "ulvs_net.h"
#include "ulvs_flow_map.h"


/* enum tun_out_counter (ulvs_maps.h): read by tests and tools, by the program's map ids */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TUN_OUT_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} ulvs_tun_stats SEC(".maps");

#define count(what) count_in(&ulvs_tun_stats, what)

/* Offsets from the start of the packet: the IP header, no link-layer header. */
#define IP_FIELD(f) offsetof(struct iphdr, f)

/* bpf_redirect_neigh takes an Ethernet frame (it pulls the header and builds the real one):
 * give the L3 packet a zeroed one first, as bpf_skb_change_head exists for. */
static __always_inline int send_to(struct __sk_buff *skb, __u32 ifindex, __be32 nexthop)
{
	struct bpf_redir_neigh nh = { .nh_family = AF_INET, .ipv4_nh = nexthop };

	if (bpf_skb_change_head(skb, ETH_HLEN, 0))
		return TC_ACT_SHOT;	/* out of memory; the TTL is already changed: cannot go on */
	return bpf_redirect_neigh(ifindex, &nh, sizeof(nh), 0);
}

SEC("tc")
int ulvs_tun_out(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = data;
	__be16 *ports = (void *)(iph + 1);	/* TCP and UDP: source, destination */
	struct bpf_fib_lookup fib = {};

	if ((void *)(ports + 2) > data_end)
		return TCX_NEXT;
	if (iph->version != 4 || iph->ihl != 5)
		return TCX_NEXT;
	if (iph->ttl <= 1)
		return TCX_NEXT;	/* the kernel sends the time-exceeded error */
	__u8 ttl = iph->ttl, proto = iph->protocol;
	__be16 sport = 0, dport = 0;

	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		sport = ports[0];
		dport = ports[1];
		struct flow_key key = { .saddr = iph->saddr, .daddr = iph->daddr, .sport = sport, .dport = dport, .proto = proto };
		struct flow_value *v = bpf_map_lookup_elem(&ulvs_flows, &key);

		if (v && (v->dir == FLOW_DR_ROUTE || v->dir == FLOW_DR)) {
			__be32 rip = v->addr;

			if (dr_route(skb, &fib, iph->saddr, rip, proto, iph->tos, sport, dport, BPF_FIB_LOOKUP_SKIP_NEIGH) != BPF_FIB_LKUP_RET_SUCCESS) {
				count(TUN_OUT_NO_ROUTE);
				return TC_ACT_SHOT;	/* routing it by the VIP would not reach RIP */
			}
			ttl_decrement(skb, IP_FIELD(ttl), IP_FIELD(check), ttl, proto);
			return send_to(skb, fib.ifindex, rip);
		}
		if (v && (v->dir == FLOW_TUN_ROUTE || v->dir == FLOW_TUN)) {
			__be32 rip = v->addr;
			struct tun_inner in = { .tos = iph->tos, .ttl = ttl - 1, .frag_off = iph->frag_off, .tot_len = bpf_ntohs(iph->tot_len), .tun_type = v->tun_type, .tun_port = v->port };
			__u32 mtu = 0;

			if (tun_route(skb, &fib, rip, in.tun_type, iph->tos, BPF_FIB_LOOKUP_SKIP_NEIGH) != BPF_FIB_LKUP_RET_SUCCESS) {
				count(TUN_OUT_NO_ROUTE);
				return TC_ACT_SHOT;
			}
			/* the frame to come: Ethernet + outer headers + this packet (GSO: each segment) */
			if (bpf_check_mtu(skb, fib.ifindex, &mtu, ETH_HLEN + tun_overhead(in.tun_type), 0)) {
				count(TUN_OUT_TOO_BIG);
				return TC_ACT_SHOT;
			}
			ttl_decrement(skb, IP_FIELD(ttl), IP_FIELD(check), ttl, proto);
			if (tun_encap(skb, 0, fib.ipv4_src, rip, &in))
				return TC_ACT_SHOT;
			count(TUN_OUT_ENCAP);
			/* the lookup left the next hop (RIP or the gateway to it) in ipv4_dst */
			return send_to(skb, fib.ifindex, fib.ipv4_dst);
		}
	}

	fib.l4_protocol = proto;
	fib.sport = sport;
	fib.dport = dport;
	fib.family = AF_INET;
	fib.tos = iph->tos;
	fib.ipv4_src = iph->saddr;
	fib.ipv4_dst = iph->daddr;
	fib.ifindex = skb->ingress_ifindex;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return TCX_NEXT;
	ttl_decrement(skb, IP_FIELD(ttl), IP_FIELD(check), ttl, proto);
	/* the lookup left the next hop (gateway or destination) in ipv4_dst */
	return send_to(skb, fib.ifindex, fib.ipv4_dst);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";	/* bpf_fib_lookup is GPL-only */
