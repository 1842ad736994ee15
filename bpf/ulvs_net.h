/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/* What the tc programs share that the UAPI headers lack, and the TTL decrement they both do. */
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
