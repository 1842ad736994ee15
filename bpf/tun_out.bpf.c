// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * The way out of the TUN, at the TUN's own tcx ingress. A packet ulvsd writes back is an IPv4
 * packet without a link-layer header that the kernel would receive, route (policy rules
 * included), pass through the forward hooks and send. This program sends it the way the route
 * says, directly: bpf_fib_lookup (the same routing, rules included), TTL - 1 (as forwarding
 * would), then bpf_redirect_neigh to the route's interface and next hop (the neighbour layer
 * writes the Ethernet header and resolves the next hop if needed).
 *
 * Anything the lookup cannot forward directly (local destinations, no route, too big for the
 * next hop), TTL <= 1 and IP options return TCX_NEXT: the packet continues into the stack.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ulvs_net.h"

/* Offsets from the start of the packet: the IP header, no link-layer header. */
#define IP_FIELD(f) offsetof(struct iphdr, f)

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

	fib.l4_protocol = proto;
	if (proto == IPPROTO_TCP || proto == IPPROTO_UDP) {
		fib.sport = ports[0];
		fib.dport = ports[1];
	}
	fib.family = AF_INET;
	fib.tos = iph->tos;
	fib.ipv4_src = iph->saddr;
	fib.ipv4_dst = iph->daddr;
	fib.ifindex = skb->ingress_ifindex;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return TCX_NEXT;
	ttl_decrement(skb, IP_FIELD(ttl), IP_FIELD(check), ttl, proto);

	/* the lookup left the next hop (gateway or destination) in ipv4_dst */
	struct bpf_redir_neigh nh = { .nh_family = AF_INET, .ipv4_nh = fib.ipv4_dst };
	/* bpf_redirect_neigh takes an Ethernet frame (it pulls the header and builds the real
	 * one): give the L3 packet a zeroed one first, as bpf_skb_change_head exists for */
	if (bpf_skb_change_head(skb, ETH_HLEN, 0))
		return TC_ACT_SHOT;	/* out of memory; the TTL is already changed: cannot go on */
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";	/* bpf_fib_lookup is GPL-only */
