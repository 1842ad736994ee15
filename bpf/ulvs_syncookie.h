/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * SYN cookies for NAT services at the fast path's tcx ingress (ulvsd's syn_cookies sysctl,
 * docs/syn-cookies.md), so a SYN flood creates no state anywhere and never reaches the TUN:
 *
 *   syncookie_syn   a pure SYN (SYN alone among SYN/ACK/RST/FIN, no payload) to a service in
 *                   ulvs_syncookie_svcs is answered here: the kernel's cookie
 *                   (bpf_tcp_raw_gen_syncookie_ipv4: low 32 bits the cookie, the next 16 the
 *                   MSS it encodes) becomes the SYN-ACK's sequence number, the frame is
 *                   rewritten in place (Ethernet, IPv4 and TCP endpoints swapped, IPv4 header
 *                   new: TTL 64, DF, id 0; TCP header 24 bytes: ack = seq + 1, window 65535, the
 *                   MSS option alone: no window scaling, SACK or timestamps) and sent back out
 *                   of the interface it came in on (bpf_redirect). FAST_SYNCOOKIE_SENT.
 *   syncookie_ack   an ACK (no SYN/RST/FIN) without a flow entry, to such a service, whose
 *                   cookie checks (bpf_tcp_raw_check_syncookie_ipv4: ack - 1 a cookie issued
 *                   for seq - 1 within the last two minutes) is marked TCP_VALIDATED_BIT and
 *                   passed on to the capture (FAST_SYNCOOKIE_VALID); one that does not check
 *                   passes unmarked (FAST_SYNCOOKIE_INVALID): it may belong to a connection
 *                   ulvsd already has.
 *   clear_validated a segment that arrives with TCP_VALIDATED_BIT set has it cleared
 *                   (FAST_TCP_RES_CLEARED) before anything else, so only the program marks.
 *
 * Checksums: only incremental updates through bpf_l4_csum_replace, so a SYN that arrives
 * CHECKSUM_PARTIAL (from a local veth peer: the field holds the pseudo-header sum) comes out
 * right as well as a complete one: the TCP header's bytes by their difference (ignored by the
 * helper for CHECKSUM_PARTIAL, whose device sums the data), the pseudo-header's length as a
 * pseudo-header change (the addresses swap: their sum is unchanged). The IPv4 header is
 * written whole with its checksum. The selftest xdp_synproxy_kern.c is the model for the
 * helpers' use; nothing of it is copied.
 */
#ifndef ULVS_SYNCOOKIE_H
#define ULVS_SYNCOOKIE_H

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/tcp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ulvs_maps.h"
#include "ulvs_net.h"
#include "ulvs_tun_icmp.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct syncookie_key);
	__type(value, struct syncookie_value);
} ulvs_syncookie_svcs SEC(".maps");

#define SC_IP_OFF ETH_HLEN
#define SC_L4_OFF (ETH_HLEN + sizeof(struct iphdr))
#define SC_CSUM_OFF (SC_L4_OFF + offsetof(struct tcphdr, check))
#define SC_FLAGS_OFF (SC_L4_OFF + 12)	/* the 16-bit word: data offset, reserved bits, flags */
#define SC_SYNACK_TCP_LEN 24		/* 20 + the MSS option */
#define SC_MAX_TCP_LEN 60

static __always_inline int syncookie_service(__be32 daddr, __be16 dport)
{
	struct syncookie_key k = { .addr = daddr, .port = dport, .proto = IPPROTO_TCP };

	return bpf_map_lookup_elem(&ulvs_syncookie_svcs, &k) != 0;
}

/* Set (on = 1) or clear (on = 0) TCP_VALIDATED_BIT of the TCP segment after an option-less
 * IPv4 header, with the checksum's update; 0 or a negative error. */
static __always_inline int set_validated(struct __sk_buff *skb, int on)
{
	__be16 old, new;

	if (bpf_skb_load_bytes(skb, SC_FLAGS_OFF, &old, 2))
		return -1;
	new = old;
	if (on)
		((__u8 *)&new)[0] |= TCP_VALIDATED_BIT;
	else
		((__u8 *)&new)[0] &= ~TCP_VALIDATED_BIT;
	if (new == old)
		return 0;
	if (bpf_l4_csum_replace(skb, SC_CSUM_OFF, old, new, 2))
		return -1;
	return bpf_skb_store_bytes(skb, SC_FLAGS_OFF, &new, 2, 0);
}

/* Every TCP segment: a client may not set TCP_VALIDATED_BIT (the caller checked IPv4 without
 * options, protocol TCP, the TCP header in the linear data). 0 when it was not set. */
static __always_inline int clear_validated(struct __sk_buff *skb, const struct tcphdr *th)
{
	if ((((const __u8 *)th)[12] & TCP_VALIDATED_BIT) == 0)
		return 0;
	fast_count(FAST_TCP_RES_CLEARED);
	if (set_validated(skb, 0))
		return TC_ACT_SHOT;	/* cannot clear it: the segment may not go on marked */
	return 0;
}

/* An ACK without a flow entry (the caller checked: no SYN/RST/FIN, ACK set). TCX_NEXT always;
 * TC_ACT_SHOT only when marking failed half-way. */
static __always_inline int syncookie_ack(struct __sk_buff *skb, struct iphdr *iph, struct tcphdr *th)
{
	if (!syncookie_service(iph->daddr, th->dest))
		return TCX_NEXT;
	if (bpf_tcp_raw_check_syncookie_ipv4(iph, th) != 0) {
		fast_count(FAST_SYNCOOKIE_INVALID);
		return TCX_NEXT;
	}
	fast_count(FAST_SYNCOOKIE_VALID);
	return set_validated(skb, 1) ? TC_ACT_SHOT : TCX_NEXT;
}

/* 16-bit one's-complement fold of a 32-bit partial sum */
static __always_inline __u16 sc_fold(__u64 s)
{
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return s;
}

/* A pure SYN to a service in the map, or TCX_NEXT for any other SYN (the caller checked
 * IPv4 without options, not a fragment, TCP, SYN alone among SYN/ACK/RST/FIN). */
static __noinline int syncookie_syn(struct __sk_buff *skb, struct iphdr *iph, struct tcphdr *th, void *data_end)
{
	__u8 old[SC_MAX_TCP_LEN] = {}, syn[SC_SYNACK_TCP_LEN] = {};
	struct iphdr ip;
	struct ethhdr eth;
	__u32 tcp_len = th->doff * 4;
	__u16 tot = bpf_ntohs(iph->tot_len);

	if (!syncookie_service(iph->daddr, th->dest))
		return TCX_NEXT;
	if (tcp_len < sizeof(struct tcphdr) || tcp_len > SC_MAX_TCP_LEN || tot != sizeof(struct iphdr) + tcp_len)
		goto refuse;	/* payload (e.g. TCP Fast Open) or a bad length: not answered */
	if (bpf_skb_load_bytes(skb, SC_L4_OFF, old, tcp_len & 0x3c))
		goto refuse;
	__s64 r = bpf_tcp_raw_gen_syncookie_ipv4(iph, (struct tcphdr *)old, tcp_len & 0x3c);
	if (r < 0)
		goto refuse;
	__u32 cookie = (__u32)r;
	__u16 mss = (__u16)(r >> 32);
	struct tcphdr *o = (struct tcphdr *)old;
	struct tcphdr *n = (struct tcphdr *)syn;

	/* the new TCP header, check field zero in both for the difference */
	n->source = o->dest;
	n->dest = o->source;
	n->seq = bpf_htonl(cookie);
	n->ack_seq = bpf_htonl(bpf_ntohl(o->seq) + 1);
	n->doff = SC_SYNACK_TCP_LEN / 4;
	n->syn = 1;
	n->ack = 1;
	n->window = bpf_htons(65535);
	syn[20] = 2;	/* MSS, RFC 9293 3.2 */
	syn[21] = 4;
	syn[22] = mss >> 8;
	syn[23] = mss & 0xff;
	__be16 check = o->check;
	o->check = 0;
	__s64 diff = bpf_csum_diff((__be32 *)old, tcp_len & 0x3c, (__be32 *)syn, SC_SYNACK_TCP_LEN, 0);
	if (diff < 0)
		goto refuse;
	n->check = check;

	ip.ihl = 5;
	ip.version = 4;
	ip.tos = 0;
	ip.tot_len = bpf_htons(sizeof(struct iphdr) + SC_SYNACK_TCP_LEN);
	ip.id = 0;
	ip.frag_off = bpf_htons(IP_DF);
	ip.ttl = 64;
	ip.protocol = IPPROTO_TCP;
	ip.check = 0;
	ip.saddr = iph->daddr;
	ip.daddr = iph->saddr;
	ip.check = ~ipv4_header_sum(&ip);

	struct ethhdr *e = (void *)(long)skb->data;
	if ((void *)(e + 1) > data_end)
		goto refuse;
	__builtin_memcpy(eth.h_dest, e->h_source, ETH_ALEN);
	__builtin_memcpy(eth.h_source, e->h_dest, ETH_ALEN);
	eth.h_proto = e->h_proto;

	/* from here on the packet changes: a failure drops it */
	if (bpf_skb_change_tail(skb, SC_L4_OFF + SC_SYNACK_TCP_LEN, 0))
		goto refuse;
	if (bpf_skb_store_bytes(skb, 0, &eth, sizeof(eth), 0) || bpf_skb_store_bytes(skb, SC_IP_OFF, &ip, sizeof(ip), 0) ||
	    bpf_skb_store_bytes(skb, SC_L4_OFF, syn, SC_SYNACK_TCP_LEN, 0))
		goto refuse;
	if (bpf_l4_csum_replace(skb, SC_CSUM_OFF, 0, diff, 0) ||
	    bpf_l4_csum_replace(skb, SC_CSUM_OFF, bpf_htons(tcp_len), bpf_htons(SC_SYNACK_TCP_LEN), BPF_F_PSEUDO_HDR | 2))
		goto refuse;
	fast_count(FAST_SYNCOOKIE_SENT);
	return bpf_redirect(skb->ingress_ifindex, 0);
refuse:
	fast_count(FAST_SYNCOOKIE_REFUSED);
	return TC_ACT_SHOT;
}

#endif
