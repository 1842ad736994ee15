/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * ICMP errors about the director's own tunnel packets, relayed to the client by the NIC fast
 * path (fastpath.bpf.c): IPVS's ip_vs_in_icmp for IPIP, GUE and GRE (net/netfilter/ipvs/
 * ip_vs_core.c). A router between the director and a tunnelled real server that cannot
 * forward an outer packet (too big with DF, TTL exceeded, unreachable) sends its error to the
 * outer source, this host. The host stack ignores it (no IPIP/GUE/GRE error handler without
 * the tunnel modules; the tc capture leaves traffic to the director's addresses to the stack),
 * so without this, path MTU discovery through such a router fails.
 *
 * Recognised (program-checked, anything else returns TCX_NEXT uncounted): ICMP type 3
 * (destination unreachable) or 11 (time exceeded), IPv4 without options, quoting an IPv4
 * header without options whose source is the error's destination (our outer packet), with
 * protocol 4 (IPIP), 17 followed by UDP and GUE header 00 04 00 00 (ulvs's GUE), or 47 with GRE
 * header 00 00 08 00 (ulvs's GRE). Then the inner packet the quote carries after the tunnel
 * headers must show its IPv4 header (no options, TCP or UDP, first fragment) and 8 bytes more,
 * and its client -> VIP tuple must have a FLOW_TUN or FLOW_TUN_ROUTE entry whose real server is
 * the quoted destination, whose tunnel type is the quoted one, and (GUE) whose port is the
 * quoted UDP destination port; otherwise the error is counted and left to the host.
 *
 * Relayed: the packet is rewritten in place into an ICMP error to the client quoting the inner
 * packet (the quoted outer IPv4 and tunnel headers removed; the quote is what the router sent,
 * at most 576 bytes from a Linux router): IPv4 from the VIP (the inner destination: icmp_send
 * on IPVS's inner skb, whose route is local, takes the quoted destination as its source) to the
 * client, TOS as icmp_send sets it, TTL 64, no DF, a fresh id; the ICMP type, code and rest of
 * header the router's. The ICMP checksum follows from the router's (the removed bytes taken
 * out, the new header put in): a corrupt error stays corrupt, and the client drops it. Routed to
 * the client by bpf_fib_lookup from the VIP and bpf_redirect_neigh.
 *
 * "Fragmentation needed" (type 3 code 4): relayed only if the inner packet had DF (a client
 * without path MTU discovery: left to the host). Its next-hop MTU becomes the reported one
 * minus this tunnel type's overhead (ulvs_net.h tun_type_overhead: 20 IPIP, 32 GUE, 24 GRE).
 * IPVS subtracts 20 (sizeof(struct iphdr)) for every type, and only when the value exceeds 88,
 * but it also lowers its own route's PMTU (ipv4_update_pmtu), after which its transmitter
 * answers oversize packets itself with the full overhead subtracted. ulvs cannot update the
 * host's route from here, so the relayed value must be right on its own: with 20 a GUE client
 * sends packets 12 bytes too big again (tried in tun-router-pmtu.test.ts: the 20 MB GUE upload
 * then crawled, about 60 s instead of under one). A value below 68 after the subtraction
 * (a router reporting 0, RFC 1191's old routers) is not relayed. The director's route MTU is
 * not lowered: every client learns it from the router through this relay.
 *
 * Never about an ICMP packet (the inner packet is TCP or UDP), never for a non-first fragment;
 * one per-CPU budget (ulvs_icmp_error.h icmp_budget: 1,000 a second, burst 50, as the kernel's
 * icmp_msgs_per_sec/burst) for the errors this program sends; spent: dropped and counted.
 * ICMP types 4 (source quench, which IPVS relays; deprecated by RFC 6633) and 12 (parameter
 * problem, whose pointer is into the outer packet) are left to the host.
 */
#ifndef ULVS_TUN_ICMP_H
#define ULVS_TUN_ICMP_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ulvs_maps.h"
#include "ulvs_net.h"
#include "ulvs_flow_map.h"
#include "ulvs_icmp_error.h"

/* enum fast_counter (ulvs_maps.h), read by tests and tools by the program's map ids */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FAST_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} ulvs_fast_stats SEC(".maps");

/* An IPv4 header without options, network order. */
struct ip4 {
	__u8 vihl, tos;
	__be16 tot_len, id, frag_off;
	__u8 ttl, protocol;
	__u16 check;
	__be32 saddr, daddr;
};

/* The error as it arrives, from its IPv4 header on (frame offset ETH_HLEN). */
struct tun_icmp_in {
	struct ip4 ip;		/* router -> this host */
	/* from here on the bytes the ICMP checksum covers and the rewrite removes or replaces */
	__u8 type, code;
	__u16 check;
	__be32 rest;		/* frag-needed: unused (16 bits), next-hop MTU (16 bits) */
	struct ip4 outer;	/* the quoted outer header: this host -> RIP */
	__u8 tun[12];		/* GUE: UDP (8) + GUE (4); GRE: 4 bytes (the rest zero); IPIP: zeros */
};

/* The inner packet's first bytes (the quote after the tunnel headers). */
struct tun_icmp_inner {
	struct ip4 ip;		/* client -> VIP */
	__be16 sport, dport;
	__u32 more;		/* the 8 bytes RFC 792 promises: seq (TCP) or length/checksum (UDP) */
};

/* The new IPv4 and ICMP headers. */
struct tun_icmp_out {
	struct ip4 ip;
	__u8 type, code;
	__u16 check;
	__be32 rest;
};

#define fast_count(what) count_in(&ulvs_fast_stats, what)

/*
 * The ICMP packet at frame offset ETH_HLEN (IPv4 without options, checked by the caller): an
 * error about one of our tunnel packets is relayed (TC_ACT_REDIRECT) or dropped (TC_ACT_SHOT,
 * budget spent or a failed rewrite); anything else returns TCX_NEXT.
 */
static __noinline int tun_icmp_relay(struct __sk_buff *skb)
{
	struct tun_icmp_in h = {};
	struct tun_icmp_inner in;
	struct bpf_fib_lookup fib = {};
	__u32 zero = 0;
	__u32 t;		/* bytes of tunnel header after the quoted outer IPv4 header */
	__u8 type;

	if (bpf_skb_load_bytes(skb, ETH_HLEN, &h, offsetof(struct tun_icmp_in, tun)))
		return TCX_NEXT;
	if ((h.type != 3 && h.type != 11) || h.outer.vihl != 0x45 || h.outer.saddr != h.ip.daddr)
		return TCX_NEXT;
	if (h.outer.protocol == 4) {
		type = TUN_IPIP;
		t = 0;
	} else if (h.outer.protocol == 17) {
		type = TUN_GUE;
		t = 12;
	} else if (h.outer.protocol == 47) {
		type = TUN_GRE;
		t = 4;
	} else {
		return TCX_NEXT;
	}
	__u32 tot = bpf_ntohs(h.ip.tot_len);
	if (tot > skb->len - ETH_HLEN || tot < offsetof(struct tun_icmp_in, tun))
		return TCX_NEXT;	/* inconsistent lengths: the stack judges it */
	__u32 quoted = tot - offsetof(struct tun_icmp_in, tun);	/* bytes after the quoted outer header */
	if (type == TUN_GUE) {
		if (quoted < 12 || bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct tun_icmp_in, tun), h.tun, 12))
			return TCX_NEXT;
		if (*(__u32 *)&h.tun[8] != bpf_htonl(0x00040000))
			return TCX_NEXT;	/* not the GUE header ulvs writes: some other UDP */
	} else if (type == TUN_GRE) {
		if (quoted < 4 || bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct tun_icmp_in, tun), h.tun, 4))
			return TCX_NEXT;
		if (*(__u32 *)&h.tun[0] != bpf_htonl(0x00000800))
			return TCX_NEXT;
	}
	/* ours, as far as the outer headers tell */
	if (quoted < t + sizeof(in) || bpf_skb_load_bytes(skb, ETH_HLEN + offsetof(struct tun_icmp_in, tun) + t, &in, sizeof(in)) ||
	    in.ip.vihl != 0x45 || (in.ip.protocol != IPPROTO_TCP && in.ip.protocol != IPPROTO_UDP) || (in.ip.frag_off & bpf_htons(IP_OFFSET))) {
		fast_count(FAST_ICMP_UNREADABLE);
		return TCX_NEXT;
	}
	struct flow_key key = { .saddr = in.ip.saddr, .daddr = in.ip.daddr, .sport = in.sport, .dport = in.dport, .proto = in.ip.protocol };
	struct flow_value *v = bpf_map_lookup_elem(&ulvs_flows, &key);
	if (!v || (v->dir != FLOW_TUN && v->dir != FLOW_TUN_ROUTE) || v->addr != h.outer.daddr || v->tun_type != type ||
	    (type == TUN_GUE && v->port != *(__be16 *)&h.tun[2])) {
		fast_count(FAST_ICMP_NO_FLOW);
		return TCX_NEXT;
	}
	__be32 rest = h.rest;
	int frag_needed = h.type == 3 && h.code == 4;
	if (frag_needed) {
		__u32 oh = tun_type_overhead(type);
		__u32 mtu = bpf_ntohl(h.rest) & 0xffff;

		if (!(in.ip.frag_off & bpf_htons(IP_DF)) || mtu < 68 + oh) {
			fast_count(FAST_ICMP_NOT_RELAYED);
			return TCX_NEXT;
		}
		rest = bpf_htonl(mtu - oh);
	}
	struct scratch *s = bpf_map_lookup_elem(&ulvs_tun_scratch, &zero);
	if (!s || !icmp_budget(s)) {
		fast_count(FAST_ICMP_RATE_LIMITED);
		return TC_ACT_SHOT;
	}
	__u32 new_tot = tot - sizeof(struct ip4) - t;	/* the outer quoted header and tunnel header go */

	/* the route to the client, from the VIP (policy rules by source included) */
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_ICMP;
	fib.tos = (in.ip.tos & 0x1e) | 0xc0;
	fib.ipv4_src = in.ip.daddr;
	fib.ipv4_dst = in.ip.saddr;
	fib.ifindex = skb->ingress_ifindex;
	fib.tot_len = new_tot;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH) != BPF_FIB_LKUP_RET_SUCCESS) {
		fast_count(FAST_ICMP_UNSENT);
		return TCX_NEXT;
	}

	struct tun_icmp_out o = {
		.ip = {
			.vihl = 0x45,
			.tos = (in.ip.tos & 0x1e) | 0xc0,	/* icmp_send: IPTOS_TOS_MASK | IPTOS_PREC_INTERNETCONTROL */
			.tot_len = bpf_htons(new_tot),
			.id = (__be16)bpf_get_prandom_u32(),
			.ttl = 64,
			.protocol = IPPROTO_ICMP,
			.saddr = in.ip.daddr,
			.daddr = in.ip.saddr,
		},
		.type = h.type,
		.code = h.code,
		.rest = rest,
	};
	o.ip.check = (__u16)~ipv4_header_sum(&o.ip);
	/* ICMP checksum: the router's message summed to 0xffff; take out its ICMP header, the quoted
	 * outer header and tunnel header (h.tun zero-padded: zeros add nothing), put in the new
	 * ICMP header (checksum field 0); the inner bytes stay */
	long d = bpf_csum_diff((void *)&h.type, sizeof(h) - sizeof(h.ip), (void *)&o.type, 8, 0);
	if (d < 0) {
		fast_count(FAST_ICMP_UNSENT);
		return TCX_NEXT;
	}
	o.check = (__u16)~fold((__u32)d);

	/* remove the quoted outer IPv4 header and tunnel header's length right after the IPv4
	 * header: the inner quote then starts after the 8 new ICMP bytes */
	if (bpf_skb_adjust_room(skb, -(__s32)(sizeof(struct ip4) + t), BPF_ADJ_ROOM_NET, 0))
		goto shot;
	if (skb->len > ETH_HLEN + new_tot && bpf_skb_change_tail(skb, ETH_HLEN + new_tot, 0))
		goto shot;	/* link-layer padding */
	if (bpf_skb_store_bytes(skb, ETH_HLEN, &o, sizeof(o), BPF_F_RECOMPUTE_CSUM))
		goto shot;
	fast_count(frag_needed ? FAST_ICMP_FRAG_NEEDED : FAST_ICMP_RELAYED);
	struct bpf_redir_neigh nh = { .nh_family = AF_INET, .ipv4_nh = fib.ipv4_dst };
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
shot:
	fast_count(FAST_ICMP_UNSENT);
	return TC_ACT_SHOT;	/* the packet may be changed already: cannot go on */
}

#endif
