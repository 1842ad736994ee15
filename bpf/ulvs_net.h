/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* What the tc programs share: what the UAPI headers lack, a counter increment, the TTL
 * decrement, the routes of direct-routing and tunnelled packets with their MTU check, tunnel
 * encapsulation (IPIP, GUE, GRE) and its overhead. */
#ifndef ULVS_NET_H
#define ULVS_NET_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ulvs_maps.h"

/* include/linux/socket.h (not UAPI) */
#define AF_INET 2
/* include/uapi/linux/bpf.h since Linux 6.6 (enum tcx_action_base); these headers are older */
#define TCX_NEXT (-1)
/* include/net/ip.h (not UAPI): the fragment bits of frag_off */
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff
#define IP_DF 0x4000

/* RFC 1071: the folded one's-complement sum of a 20-byte IPv4 header (no options): 0xffff
 * when its checksum is right; ~sum is the checksum to write when the check field is 0. */
static __always_inline __u16 ipv4_header_sum(const void *hdr)
{
	const __u16 *w = hdr;
	__u32 sum = 0;

#pragma unroll
	for (int i = 0; i < 10; i++)
		sum += w[i];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum;
}

/* Add one to element `which` of a per-program counter array (BPF_MAP_TYPE_ARRAY of __u64). */
static __always_inline void count_in(void *counters, __u32 which)
{
	__u64 *n = bpf_map_lookup_elem(counters, &which);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/*
 * Bytes a tunnel of type `tun_type` (enum tun_type, ulvs_maps.h) puts in front of the inner
 * packet: outer IPv4 header 20; GUE: + UDP 8 + GUE 4; GRE: + 4. The one place the sizes live.
 */
static __always_inline __u32 tun_type_overhead(__u8 tun_type)
{
	return tun_type == TUN_GUE ? 20 + 8 + 4 : tun_type == TUN_GRE ? 20 + 4 : 20;
}

/*
 * Bytes a tunnelled packet grows by on its way to the real server, by the tunnel type of its
 * flow entry `v` (20 IPIP, 32 GUE, 24 GRE); the tunnel's MTU is the route's minus this (IPVS
 * __ip_vs_get_out_rt: the route MTU minus the tunnel headers).
 */
static __always_inline __u32 tun_overhead(const struct flow_value *v)
{
	return tun_type_overhead(v->tun_type);
}

/*
 * The IP length one packet of this skb puts on the wire (bytes, the IPv4 header included):
 * tot_len, or for a GSO super-packet (gso_size set) one segment: the IPv4 header (20, no
 * options here), the TCP header (its data offset, read at frame offset l4_off) or UDP's 8,
 * and gso_size payload bytes. The route's MTU must hold this, as the kernel's forwarding
 * checks segments (ip_forward: skb_gso_validate_network_len).
 */
static __always_inline __u32 wire_len(struct __sk_buff *skb, __u32 l4_off, __u8 proto, __u32 tot_len)
{
	__u32 gso = skb->gso_size;
	__u8 doff = 5 << 4;

	if (!gso)
		return tot_len;
	if (proto == 6 && bpf_skb_load_bytes(skb, l4_off + 12, &doff, 1))
		return tot_len;	/* IPPROTO_TCP; unreadable: no better answer */
	return 20 + (proto == 6 ? (doff >> 4) * 4 : 8) + gso;
}

/*
 * The route of a direct-routing packet (VS/DR) from `saddr` arriving on `ifindex` to the real
 * server `rip` (the packet's own destination, the VIP, plays no part: IPVS's KNOWN_NH route).
 * Fills fib (egress ifindex; MACs unless `flags` has BPF_FIB_LOOKUP_SKIP_NEIGH) and returns
 * bpf_fib_lookup's status; a route through a gateway is BPF_FIB_LKUP_RET_NOT_FWDED (DR needs
 * the real server on a directly connected network: the frame would go to the gateway, which
 * would route it by the VIP). `need` (bytes, 1..65535) is the IP length that must fit the
 * route's MTU (wire_len): larger is BPF_FIB_LKUP_RET_FRAG_NEEDED with that MTU in
 * fib->mtu_result (the route's, ip_mtu_from_fib_result: a locked route MTU, a learned path
 * MTU, else the device's), checked before the nexthop, so fib->ifindex is not set then.
 */
static __always_inline long dr_route(struct __sk_buff *skb, struct bpf_fib_lookup *fib, __be32 saddr, __be32 rip, __u8 proto, __u8 tos, __be16 sport, __be16 dport, __u32 flags, __u32 need)
{
	fib->family = AF_INET;
	fib->tot_len = need;
	fib->l4_protocol = proto;
	fib->sport = sport;
	fib->dport = dport;
	fib->tos = tos;
	fib->ipv4_src = saddr;
	fib->ipv4_dst = rip;
	fib->ifindex = skb->ingress_ifindex;
	long rc = bpf_fib_lookup(skb, fib, sizeof(*fib), flags);
	if (rc == BPF_FIB_LKUP_RET_SUCCESS && fib->ipv4_dst != rip)
		return BPF_FIB_LKUP_RET_NOT_FWDED;	/* the next hop is a gateway */
	return rc;
}

/* The UDP source ports of GUE: the kernel's default ip_local_port_range (net.ipv4), which
 * udp_flow_src_port uses for IPVS's GUE (ipvs_gue_encap passes no range); the director's own
 * sysctl is not read. */
#define GUE_SPORT_MIN 32768
#define GUE_SPORT_MAX 60999

/* The IP protocol of the outer header of a tunnel type. */
static __always_inline __u8 tun_protocol(__u8 tun_type)
{
	return tun_type == TUN_GUE ? 17 : tun_type == TUN_GRE ? 47 : 4;	/* UDP, GRE, IPIP */
}

/*
 * The route of a tunnelled packet (VS/TUN) to the real server `rip`: the outer packet's, from
 * this host (protocol that of `tun_type`). Fills fib (egress ifindex; ipv4_dst: the next hop,
 * RIP itself or the gateway to it; ipv4_src: the source the kernel would choose on that route,
 * BPF_FIB_LOOKUP_SRC, as IPVS's route lookup does; MACs of the next hop unless `flags` has
 * BPF_FIB_LOOKUP_SKIP_NEIGH) and returns bpf_fib_lookup's status. The outer packet is an
 * ordinary routed packet: a real server behind a gateway is fine (unlike DR). `need`: the
 * outer IP length that must fit, as for dr_route (FRAG_NEEDED, fib->mtu_result).
 */
static __always_inline long tun_route(struct __sk_buff *skb, struct bpf_fib_lookup *fib, __be32 rip, __u8 tun_type, __u8 tos, __u32 flags, __u32 need)
{
	fib->family = AF_INET;
	fib->tot_len = need;
	fib->l4_protocol = tun_protocol(tun_type);
	fib->tos = tos;
	fib->ipv4_src = 0;
	fib->ipv4_dst = rip;
	fib->ifindex = skb->ingress_ifindex;
	return bpf_fib_lookup(skb, fib, sizeof(fib[0]), flags | BPF_FIB_LOOKUP_SRC);
}

/* What the outer header copies from the inner one, and the tunnel. */
struct tun_inner {
	__u8 tos, ttl;		/* ttl: the inner TTL after the decrement */
	__be16 frag_off;	/* only IP_DF is copied */
	__u16 tot_len;		/* host order */
	__u8 tun_type;		/* enum tun_type */
	__be16 tun_port;	/* TUN_GUE: UDP destination port (network order) */
};

/* The outer headers as written: IPv4, then UDP + GUE (12 bytes) or GRE (4 bytes, then unused). */
struct tun_outer {
	__u8 vihl, tos;
	__be16 tot_len, id, frag_off;
	__u8 ttl, protocol;
	__u16 check;
	__be32 saddr, daddr;
	union {
		struct {
			__be16 source, dest, len, check;	/* UDP */
			__u8 gue[4];	/* version/C/hlen, proto/ctype, flags (2) */
		} gue;
		struct {
			__be16 flags, proto;
		} gre;
	};
};

/*
 * Tunnel encapsulation (IPVS's ip_vs_tunnel_xmit with ipvs_gue_encap / ipvs_gre_encap):
 * tun_overhead bytes of room at the MAC layer (after the link-layer header: frame offset `off`,
 * 0 on the TUN, ETH_HLEN at a NIC), then the outer headers written, the IPv4 header with its
 * checksum. The skb is marked as encapsulated so GSO super-packets stay GSO (segment size
 * reduced by the overhead; the inner network header stays the inner IP header): IPIP as
 * SKB_GSO_IPXIP4; GUE as SKB_GSO_UDP_TUNNEL with the GUE header counted as the inner "MAC"
 * header (BPF_F_ADJ_ROOM_ENCAP_L2(4)): skb_udp_tunnel_segment takes the UDP header as the
 * tunnel header and carries the GUE header with the inner one into every segment; GRE as
 * SKB_GSO_GRE without ENCAP_L2: gre_gso_segment needs the tunnel header (inner MAC header
 * minus transport header) to be the GRE header itself, at least 4 bytes, or it drops the
 * packet (with ENCAP_L2(4) it would be 0). The GUE source port is udp_flow_src_port's: the skb's flow hash (of the inner
 * packet), its upper half folded in, scaled into [GUE_SPORT_MIN, GUE_SPORT_MAX). Returns 0, or
 * nonzero when the kernel refused.
 */
static __always_inline int tun_encap(struct __sk_buff *skb, __u32 off, __be32 saddr, __be32 daddr, const struct tun_inner *in)
{
	__u8 ecn = in->tos & 3;
	__u8 type = in->tun_type;
	__u32 len = in->tot_len + tun_type_overhead(type);
	/* a GSO super-packet can exceed 64 KiB with the outer headers: segmentation rewrites the
	 * lengths; the UDP length stays consistent with the outer total length */
	__u16 tot = len > 0xffff ? 0xffff : len;
	struct tun_outer o = {
		.vihl = 0x45,
		/* INET_ECN_encapsulate: the inner ECN bits, but CE becomes ECT(0) */
		.tos = (in->tos & ~3) | (ecn == 3 ? 2 : ecn),
		.tot_len = bpf_htons(tot),
		.id = (__be16)bpf_get_prandom_u32(),
		.frag_off = in->frag_off & bpf_htons(0x4000),	/* IP_DF */
		.ttl = in->ttl,
		.protocol = tun_protocol(type),
		.saddr = saddr,
		.daddr = daddr,
	};
	o.check = (__u16)~ipv4_header_sum(&o);
	if (type == TUN_GUE) {
		__u32 hash = bpf_get_hash_recalc(skb);

		hash ^= hash << 16;
		o.gue.source = bpf_htons((__u16)((((__u64)hash * (GUE_SPORT_MAX - GUE_SPORT_MIN)) >> 32) + GUE_SPORT_MIN));
		o.gue.dest = in->tun_port;
		o.gue.len = bpf_htons(tot - 20);
		o.gue.gue[1] = 4;	/* proto/ctype: IPv4 inside */
		if (bpf_skb_adjust_room(skb, 20 + 8 + 4, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_UDP | BPF_F_ADJ_ROOM_ENCAP_L2(4)))
			return -1;
		return bpf_skb_store_bytes(skb, off, &o, 20 + 8 + 4, 0) ? -1 : 0;
	}
	if (type == TUN_GRE) {
		o.gre.proto = bpf_htons(0x0800);	/* ETH_P_IP */
		if (bpf_skb_adjust_room(skb, 20 + 4, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE))
			return -1;
		return bpf_skb_store_bytes(skb, off, &o, 20 + 4, 0) ? -1 : 0;
	}
	if (bpf_skb_adjust_room(skb, 20, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_ENCAP_L3_IPV4))
		return -1;
	return bpf_skb_store_bytes(skb, off, &o, 20, 0) ? -1 : 0;
}

/*
 * TTL := ttl - 1 at frame offset ttl_off, patching the IP checksum at csum_off: the checksum
 * covers TTL and protocol as one 16-bit word (RFC 1071), so that word is what changes.
 */
static __always_inline void ttl_decrement(struct __sk_buff *skb, __u32 ttl_off, __u32 csum_off, __u8 ttl, __u8 proto)
{
	__u8 new_ttl = ttl - 1;
	__be16 old_word = bpf_htons((__u16)ttl << 8 | proto);
	__be16 new_word = bpf_htons((__u16)new_ttl << 8 | proto);

	bpf_l3_csum_replace(skb, csum_off, old_word, new_word, sizeof(new_word));
	bpf_skb_store_bytes(skb, ttl_off, &new_ttl, sizeof(new_ttl), 0);
}

#endif
