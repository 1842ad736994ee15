/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* What the tc programs share that the UAPI headers lack, the TTL decrement they both do, and the
 * route of a direct-routing packet. */
#ifndef ULVS_NET_H
#define ULVS_NET_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* include/linux/socket.h (not UAPI) */
#define AF_INET 2
/* include/uapi/linux/bpf.h since Linux 6.6 (enum tcx_action_base); these headers are older */
#define TCX_NEXT (-1)
/* include/net/ip.h (not UAPI): the fragment bits of frag_off */
#define IP_MF 0x2000
#define IP_OFFSET 0x1fff

/*
 * The route of a direct-routing packet (VS/DR) from `saddr` arriving on `ifindex` to the real
 * server `rip` (the packet's own destination, the VIP, plays no part: IPVS's KNOWN_NH route).
 * Fills fib (egress ifindex; MACs unless `flags` has BPF_FIB_LOOKUP_SKIP_NEIGH) and returns
 * bpf_fib_lookup's status; a route through a gateway is BPF_FIB_LKUP_RET_NOT_FWDED (DR needs
 * the real server on a directly connected network: the frame would go to the gateway, which
 * would route it by the VIP).
 */
static __always_inline long dr_route(struct __sk_buff *skb, struct bpf_fib_lookup *fib, __be32 saddr, __be32 rip, __u8 proto, __u8 tos, __be16 sport, __be16 dport, __u32 flags)
{
	fib->family = AF_INET;
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
