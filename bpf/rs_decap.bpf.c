// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * Tunnel decapsulation on a real server, at the tcx ingress of its Ethernet interfaces, for
 * kernels without the ipip (or fou, or ip_gre) module: `ulvs rs-setup tun` attaches it
 * (src/rs/decap.ts).
 * A director in IPVS's TUN mode sends the client's packet inside an outer IPv4 header to the
 * real server's address (docs: /work/shared/reference/dr-tun-local-vip.md §2.1-2.2):
 *
 *   IPIP  outer IPv4 (protocol 4) | inner IPv4 packet
 *   GUE   outer IPv4 (protocol 17) | UDP (destination port = the configured port) |
 *         GUE header, 4 bytes: version 0, C 0, hlen 0 (no options), proto/ctype 4, flags |
 *         inner IPv4 packet
 *   GRE   outer IPv4 (protocol 47) | GRE header, 4 bytes: no flags (C, K, S 0), version 0,
 *         protocol 0x0800 | inner IPv4 packet (what IPVS's ipvs_gre_encap sends without
 *         --tun-csum; only when the config enables GRE)
 *
 * A tunnel packet addressed to this host (the frame was for this interface's MAC: pkt_type
 * PACKET_HOST; outer header without options, not a fragment, checksum right, total length
 * within the frame) whose inner destination is in the VIP map loses its outer headers
 * (bpf_skb_adjust_room at the MAC layer, FIXED_GSO: the inner segment size is unchanged) and
 * goes on up the stack as if the inner packet had been received on this interface: ip_rcv
 * checks the inner header, the VIP on `lo` makes it local, rp_filter judges its source by this
 * interface. The outer destination address is not compared with this host's addresses: a frame
 * for this host's MAC with the VIP as destination is accepted anyway (that is DR), and the
 * kernel's own tunl0 accepts IPIP from any peer; what the program adds is only the VIP check.
 *
 * Returns: TCX_NEXT for everything it does not drop (decapsulated or untouched), so programs
 * after it and the stack see the packet; TC_ACT_SHOT for a tunnel packet addressed to this host
 * whose headers do not fit together (the kernel would drop it too). Untouched: not IPv4, not for
 * this host, outer options or fragments, other protocols and ports, an inner destination that
 * is not a VIP (counted), and GUE and GRE variants this program does not decapsulate (GUE with
 * options, C set or IPv6 inside; GRE with checksum, key, sequence number, another version or
 * protocol: counted as unhandled). Counters: enum rs_counter (ulvs_maps.h).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ulvs_maps.h"
#include "ulvs_net.h"

/* include/uapi/linux/bpf.h since Linux 6.3; these headers are older */
#define ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
/* include/uapi/linux/if_packet.h: the frame was addressed to this interface */
#define PACKET_HOST 0
#define GUE_HLEN 4
#define GRE_HLEN 4
/* the longest header chain read: Ethernet, outer IPv4, UDP, GUE, inner IPv4 */
#define MAX_HDR (ETH_HLEN + 20 + 8 + GUE_HLEN + 20)

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct rs_config);
} ulvs_rs_config SEC(".maps");

/* The VIPs (network order) this server accepts tunnelled packets for; value unused (1). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __be32);
	__type(value, __u8);
} ulvs_rs_vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, RS_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} ulvs_rs_counters SEC(".maps");

#define count(which) count_in(&ulvs_rs_counters, which)

/* RFC 1071: the one's-complement sum of a header whose checksum is right is 0xffff. */
static __always_inline int ip_csum_ok(const struct iphdr *iph)
{
	return ipv4_header_sum(iph) == 0xffff;
}

SEC("tc")
int ulvs_rs_decap(struct __sk_buff *skb)
{
	if (skb->protocol != bpf_htons(ETH_P_IP) || skb->pkt_type != PACKET_HOST)
		return TCX_NEXT;
	/* direct access sees only the linear part: make the headers linear if they are not */
	if ((void *)(long)skb->data + MAX_HDR > (void *)(long)skb->data_end)
		bpf_skb_pull_data(skb, skb->len < MAX_HDR ? skb->len : MAX_HDR);

	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *outer = data + ETH_HLEN;
	__u32 hdr;		/* bytes of outer headers to remove */

	if ((void *)(outer + 1) > data_end)
		return TCX_NEXT;	/* not recognisably a tunnel packet: the kernel drops it */
	if (outer->version != 4 || outer->ihl != 5 || (outer->frag_off & bpf_htons(IP_MF | IP_OFFSET)))
		return TCX_NEXT;
	if (outer->protocol == IPPROTO_IPIP) {
		hdr = sizeof(struct iphdr);
	} else if (outer->protocol == IPPROTO_UDP) {
		__u32 zero = 0;
		struct rs_config *cfg = bpf_map_lookup_elem(&ulvs_rs_config, &zero);
		struct udphdr *udp = (void *)(outer + 1);

		if (!cfg || cfg->gue_port == 0 || (void *)(udp + 1) > data_end || udp->dest != cfg->gue_port)
			return TCX_NEXT;
		hdr = sizeof(struct iphdr) + sizeof(struct udphdr) + GUE_HLEN;
	} else if (outer->protocol == IPPROTO_GRE) {
		__u32 zero = 0;
		struct rs_config *cfg = bpf_map_lookup_elem(&ulvs_rs_config, &zero);

		if (!cfg || !cfg->gre)
			return TCX_NEXT;
		hdr = sizeof(struct iphdr) + GRE_HLEN;
	} else {
		return TCX_NEXT;
	}

	/* a tunnel packet for this host from here on */
	__u32 tot = bpf_ntohs(outer->tot_len);

	if (!ip_csum_ok(outer) || tot > skb->len - ETH_HLEN || tot < hdr + sizeof(struct iphdr))
		goto malformed;
	if (outer->protocol == IPPROTO_UDP) {
		struct udphdr *udp = (void *)(outer + 1);
		__u8 *gue = (void *)(udp + 1);

		if ((void *)(gue + GUE_HLEN) > data_end)
			goto malformed;
		__u32 ulen = bpf_ntohs(udp->len);

		if (ulen < sizeof(struct udphdr) + GUE_HLEN + sizeof(struct iphdr) || ulen > tot - sizeof(struct iphdr))
			goto malformed;
		/* what IPVS sends without remote checksum offload: version 0, C 0, hlen 0, IPv4 inside */
		if (gue[0] != 0 || gue[1] != IPPROTO_IPIP) {
			count(RS_UNHANDLED);
			return TCX_NEXT;
		}
	} else if (outer->protocol == IPPROTO_GRE) {
		__be16 *gre = (void *)(outer + 1);

		if ((void *)(gre + 2) > data_end)
			goto malformed;
		/* flags and version all 0 (no checksum, key or sequence number), IPv4 inside */
		if (gre[0] != 0 || gre[1] != bpf_htons(ETH_P_IP)) {
			count(RS_UNHANDLED);
			return TCX_NEXT;
		}
	}
	struct iphdr *inner = (void *)outer + hdr;

	if ((void *)(inner + 1) > data_end)
		goto malformed;
	if (inner->version != 4 || inner->ihl < 5)
		goto malformed;
	__be32 daddr = inner->daddr;

	if (!bpf_map_lookup_elem(&ulvs_rs_vips, &daddr)) {
		count(RS_NOT_VIP);
		return TCX_NEXT;
	}
	if (bpf_skb_adjust_room(skb, -(__s32)hdr, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO | ADJ_ROOM_DECAP_L3_IPV4))
		goto malformed;	/* the kernel refused (e.g. a GSO packet it cannot shrink) */
	count(RS_DECAP);
	return TCX_NEXT;

malformed:
	count(RS_MALFORMED);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
