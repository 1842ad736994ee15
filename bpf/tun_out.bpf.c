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
 *     directly connected network (ulvsd refuses such servers; the route changed since);
 *   - a request of a tunnelled connection (FLOW_TUN_ROUTE or FLOW_TUN, written as for DR, with
 *     the server's tunnel type and GUE port) goes, TTL - 1, inside outer headers (ulvs_net.h
 *     tun_encap: IPv4 from the director's address on the route to RIP to RIP, then nothing
 *     (IPIP), UDP + GUE, or GRE; IPVS's ip_vs_tunnel_xmit, ipvs_gue_encap, ipvs_gre_encap) to
 *     the next hop of the route to RIP: RIP itself or a gateway (the outer packet is an
 *     ordinary routed one). bpf_skb_adjust_room at the MAC layer inserts the room in front of
 *     the IP header (a TUN's skb has no MAC header: offset 0) and keeps GSO super-packets GSO
 *     (segments shrunk by the overhead, tun_overhead: 20, 32, 24). Dropped and counted when
 *     there is no route to RIP;
 *   - path MTU (IPVS's __ip_vs_get_out_rt and ensure_mtu_is_adequate): a DR or tunnelled
 *     packet longer than the route to its real server carries (the route's MTU as the
 *     kernel's forwarding sees it, ip_mtu_from_fib_result; a tunnelled packet with its outer
 *     header; a GSO super-packet by its segments) is never sent. With DF it is replaced, in
 *     place, by ICMP "fragmentation needed" (type 3 code 4) to the client, whose next-hop MTU
 *     is the route's (DR) or the route's minus the tunnel overhead (TUN, ulvs_net.h
 *     tun_overhead): IPv4 header from the director's address on the route to the client
 *     (BPF_FIB_LOOKUP_SRC, as icmp_send picks it for forwarded packets), TTL 64, TOS as
 *     icmp_send sets it; the ICMP header; the offending packet's first bytes (its IPv4 header
 *     and up to 512 more: 560 bytes at most, within RFC 1812's 576). It is routed to the
 *     client (bpf_fib_lookup, bpf_redirect_neigh). Not answered, only dropped and counted: a
 *     packet without DF (no fragmentation here), an ICMP message or a non-first fragment (no
 *     ICMP error about those, as icmp_send), and anything beyond a per-CPU budget of 1,000
 *     errors a second with a burst of 50 (the kernel's icmp_msgs_per_sec and
 *     icmp_msgs_burst defaults). The NIC fast path hands its too-big packets to ulvsd
 *     (fastpath.bpf.c), which writes them back here: one place answers them all;
 *   - an ICMP error (destination unreachable, source quench, time exceeded, parameter
 *     problem) whose quoted header is VIP:vport -> client:cport of a DR or tunnelled
 *     connection (the engine passes it on unchanged, IPVS's ip_vs_in_icmp and
 *     ip_vs_icmp_xmit) goes to that connection's real server as its requests do: DR, TTL - 1
 *     to RIP's link-layer address; TUN, encapsulated. So a real server whose direct replies are
 *     too big for the client's path learns the path's MTU from the router's error to the VIP;
 *   - anything else is routed by its destination: bpf_fib_lookup (the same routing, rules
 *     included), TTL - 1 (as forwarding would), then bpf_redirect_neigh to the route's interface
 *     and next hop (the neighbour layer writes the Ethernet header and resolves the next hop).
 *
 * What the lookup cannot forward directly (local destinations, no route, too big for the next
 * hop), TTL <= 1 and IP options return TCX_NEXT: the packet continues into the stack.
 *
 * The logic is written once (tun_out, inlined) for a frame offset: 0 on the TUN (ulvs_tun_out,
 * what ulvsd attaches), 14 in ulvs_tun_out_l2, which only the kernel-run tests use
 * (BPF_PROG_TEST_RUN hands a tc program an Ethernet frame).
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
#include "ulvs_icmp_error.h"


/* enum tun_out_counter (ulvs_maps.h): read by tests and tools, by the program's map ids */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, TUN_OUT_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} ulvs_tun_stats SEC(".maps");

#define count(what) count_in(&ulvs_tun_stats, what)

/* Offsets from the start of the IP header. */
#define IP_FIELD(f) offsetof(struct iphdr, f)

/* What the answer needs of the packet, read before the first helper that changes it. */
struct pkt {
	__be32 saddr;
	__be16 frag_off;
	__u8 tos, ttl, proto;
	__u16 tot_len;		/* host order */
};

/* bpf_redirect_neigh takes an Ethernet frame (it pulls the header and builds the real one):
 * give the L3 packet (off 0) a zeroed one first, as bpf_skb_change_head exists for. */
static __always_inline int send_to(struct __sk_buff *skb, const __u32 off, __u32 ifindex, __be32 nexthop)
{
	struct bpf_redir_neigh nh = { .nh_family = AF_INET, .ipv4_nh = nexthop };

	if (!off && bpf_skb_change_head(skb, ETH_HLEN, 0))
		return TC_ACT_SHOT;	/* out of memory; the packet is already changed: cannot go on */
	return bpf_redirect_neigh(ifindex, &nh, sizeof(nh), 0);
}

/*
 * A DR or tunnelled packet longer than its route's `mtu` allows (the MTU the client must use:
 * the tunnel's for TUN). Counted; with DF, rewritten into ICMP "fragmentation needed" to the
 * client and sent (see the top of the file). The quote's TCP/UDP checksum field: the skb may
 * carry CHECKSUM_PARTIAL (ulvsd writes GSO and offloaded packets so), which no helper clears;
 * a device without checksum offload, or skb_checksum_help, then completes the checksum from
 * the quoted transport header to the end and stores it in that field. The field is set to the
 * value that completion yields (V with ~(T + V) = V in one's complement, T the sum of the
 * quoted transport bytes without it: 2V = ~T, V = ~T rotated right by one bit), so the ICMP
 * checksum holds whether or not the completion runs. A quote is truncated: its transport
 * checksum could not be verified by anyone anyway.
 */
static __noinline int too_big(struct __sk_buff *skb, const __u32 off, const struct pkt *p, __u32 mtu)
{
	struct bpf_fib_lookup fib = {};
	__u32 zero = 0;

	count(TUN_OUT_TOO_BIG);
	if (p->proto == IPPROTO_ICMP || (p->frag_off & bpf_htons(IP_OFFSET))) {
		count(TUN_OUT_TOO_BIG_ICMP);
		return TC_ACT_SHOT;
	}
	if (!(p->frag_off & bpf_htons(IP_DF))) {
		count(TUN_OUT_TOO_BIG_NO_DF);
		return TC_ACT_SHOT;
	}
	struct scratch *s = bpf_map_lookup_elem(&ulvs_tun_scratch, &zero);
	if (!s)
		goto unsent;
	if (!icmp_budget(s)) {
		count(TUN_OUT_ICMP_RATE_LIMITED);
		return TC_ACT_SHOT;
	}
	if (mtu < 68 || mtu > 0xffff || (p->proto != IPPROTO_TCP && p->proto != IPPROTO_UDP))
		goto unsent;
	/* the route back to the client, as the error would leave this host (it fits: 560 bytes) */
	fib.family = AF_INET;
	fib.l4_protocol = IPPROTO_ICMP;
	fib.ipv4_dst = p->saddr;
	fib.ifindex = skb->ingress_ifindex;
	fib.tot_len = sizeof(struct frag_needed) + QUOTE_MAX;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), BPF_FIB_LOOKUP_SKIP_NEIGH | BPF_FIB_LOOKUP_SRC) != BPF_FIB_LKUP_RET_SUCCESS)
		goto unsent;

	__u32 len = skb->len - off;
	if (len > QUOTE_MAX)
		len = QUOTE_MAX;
	if (len < 40)
		goto unsent;	/* shorter than any packet a route's MTU (>= 68) refuses */
	if (bpf_skb_load_bytes(skb, off, s->quote, len))
		goto unsent;
	*(__u32 *)&s->quote[len] = 0;	/* padding for the 4-byte sums */
	__u32 words = (len - 20 + 3) & 0x3fc;	/* the quoted bytes after the IPv4 header, padded */
	if (words > QUOTE_MAX - 20)
		goto unsent;	/* cannot be: for the verifier */
	long l4 = bpf_csum_diff(0, 0, (void *)&s->quote[20], words, 0);
	if (l4 < 0)
		goto unsent;
	__u32 csum_at = 20 + (p->proto == IPPROTO_TCP ? 16 : 6);
	__u16 t = fold((__u64)(__u32)l4 + (__u16)~*(__u16 *)&s->quote[csum_at]);
	__u16 nt = ~t;
	__u16 v = (nt >> 1) | (nt << 15);

	struct frag_needed h = {
		.vihl = 0x45,
		.tos = (p->tos & 0x1e) | 0xc0,	/* icmp_send: IPTOS_TOS_MASK | IPTOS_PREC_INTERNETCONTROL */
		.tot_len = bpf_htons(sizeof(h) + len),
		.id = (__be16)bpf_get_prandom_u32(),
		.ttl = 64,
		.protocol = IPPROTO_ICMP,
		.saddr = fib.ipv4_src,
		.daddr = p->saddr,
		.type = 3,	/* ICMP_DEST_UNREACH */
		.code = 4,	/* ICMP_FRAG_NEEDED */
		.mtu = bpf_htons(mtu),
	};
	const __u16 *w = (const __u16 *)&h;
	h.check = (__u16)~ipv4_header_sum(&h);
	h.icmp_check = (__u16)~fold((__u64)w[10] + w[11] + w[12] + w[13] + ipv4_header_sum(s->quote) + t + v);

	if (bpf_skb_change_tail(skb, off + len, 0))
		goto unsent;	/* also ends GSO: one packet now */
	if (bpf_skb_adjust_room(skb, sizeof(h), BPF_ADJ_ROOM_MAC, 0))
		goto unsent;
	if (bpf_skb_store_bytes(skb, off, &h, sizeof(h), 0) || bpf_skb_store_bytes(skb, off + sizeof(h) + csum_at, &v, sizeof(v), 0))
		goto unsent;
	count(TUN_OUT_FRAG_NEEDED);
	return send_to(skb, off, fib.ifindex, fib.ipv4_dst);
unsent:
	count(TUN_OUT_ICMP_UNSENT);
	return TC_ACT_SHOT;
}

/* TTL - 1 of the IP header at frame offset off (its checksum patched). */
#define TTL_DECREMENT(skb, off, p) ttl_decrement(skb, (off) + IP_FIELD(ttl), (off) + IP_FIELD(check), (p)->ttl, (p)->proto)

/* A packet of a DR connection (v->addr: RIP) to RIP's link-layer address; `need` is the IP
 * length the route must carry. */
static __always_inline int to_dr_server(struct __sk_buff *skb, const __u32 off, const struct pkt *p, const struct flow_value *v, __be16 sport, __be16 dport, __u32 need)
{
	struct bpf_fib_lookup fib = {};
	long rc = dr_route(skb, &fib, p->saddr, v->addr, p->proto, p->tos, sport, dport, BPF_FIB_LOOKUP_SKIP_NEIGH, need);

	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return too_big(skb, off, p, fib.mtu_result);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		count(TUN_OUT_NO_ROUTE);
		return TC_ACT_SHOT;	/* routing it by the VIP would not reach RIP */
	}
	TTL_DECREMENT(skb, off, p);
	return send_to(skb, off, fib.ifindex, v->addr);
}

/* A packet of a tunnelled connection, encapsulated (the entry's tunnel type and GUE port) to
 * RIP (v->addr), sent to the next hop of the route to RIP (RIP or a gateway); `need`: the
 * outer IP length the route must carry. Returns the verdict; *sent is set when it went. */
static __always_inline int to_tun_server(struct __sk_buff *skb, const __u32 off, const struct pkt *p, const struct flow_value *v, __u32 need, int *sent)
{
	struct bpf_fib_lookup fib = {};
	struct tun_inner in = { .tos = p->tos, .ttl = p->ttl - 1, .frag_off = p->frag_off, .tot_len = p->tot_len, .tun_type = v->tun_type, .tun_port = v->port };
	__u32 oh = tun_overhead(v);
	long rc = tun_route(skb, &fib, v->addr, in.tun_type, p->tos, BPF_FIB_LOOKUP_SKIP_NEIGH, need);

	if (rc == BPF_FIB_LKUP_RET_FRAG_NEEDED)
		return too_big(skb, off, p, fib.mtu_result > oh ? fib.mtu_result - oh : 0);
	if (rc != BPF_FIB_LKUP_RET_SUCCESS) {
		count(TUN_OUT_NO_ROUTE);
		return TC_ACT_SHOT;
	}
	TTL_DECREMENT(skb, off, p);
	if (tun_encap(skb, off, fib.ipv4_src, v->addr, &in))
		return TC_ACT_SHOT;
	*sent = 1;
	/* the lookup left the next hop (RIP or the gateway to it) in ipv4_dst */
	return send_to(skb, off, fib.ifindex, fib.ipv4_dst);
}

/*
 * An ICMP error about a DR or tunnelled connection (quoting VIP:vport -> client:cport, the
 * real server's reply): to that connection's real server. TCX_NEXT when it is not one (the
 * caller routes it by its destination).
 */
static __always_inline int icmp_to_server(struct __sk_buff *skb, const __u32 off, const struct pkt *p)
{
	struct icmp_quote q;

	if (bpf_skb_load_bytes(skb, off + sizeof(struct iphdr), &q, sizeof(q)))
		return TCX_NEXT;
	/* ICMP_DEST_UNREACH, ICMP_SOURCE_QUENCH, ICMP_TIME_EXCEEDED, ICMP_PARAMETERPROB */
	if (q.type != 3 && q.type != 4 && q.type != 11 && q.type != 12)
		return TCX_NEXT;
	if (q.vihl != 0x45 || (q.protocol != IPPROTO_TCP && q.protocol != IPPROTO_UDP) || (q.frag_off & bpf_htons(IP_OFFSET)))
		return TCX_NEXT;
	struct flow_key key = { .saddr = q.daddr, .daddr = q.saddr, .sport = q.dport, .dport = q.sport, .proto = q.protocol };
	struct flow_value *v = bpf_map_lookup_elem(&ulvs_flows, &key);
	if (!v)
		return TCX_NEXT;
	if (v->dir == FLOW_DR_ROUTE || v->dir == FLOW_DR) {
		int r = to_dr_server(skb, off, p, v, 0, 0, p->tot_len);
		if (r == TC_ACT_REDIRECT)
			count(TUN_OUT_ICMP_TO_DR);
		return r;
	}
	if (v->dir == FLOW_TUN_ROUTE || v->dir == FLOW_TUN) {
		int sent = 0;
		int r = to_tun_server(skb, off, p, v, p->tot_len + tun_overhead(v), &sent);
		if (sent)
			count(TUN_OUT_ICMP_TO_TUN);
		return r;
	}
	return TCX_NEXT;	/* a NAT connection's: the engine has translated it already */
}

/* The way out for a frame whose IPv4 header starts at `off` (0 or ETH_HLEN, a constant). */
static __always_inline int tun_out(struct __sk_buff *skb, const __u32 off)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *iph = data + off;
	__be16 *ports = (void *)(iph + 1);	/* TCP and UDP: source, destination */
	struct bpf_fib_lookup fib = {};

	if ((void *)(ports + 2) > data_end)
		return TCX_NEXT;
	if (iph->version != 4 || iph->ihl != 5)
		return TCX_NEXT;
	if (iph->ttl <= 1)
		return TCX_NEXT;	/* the kernel sends the time-exceeded error */
	struct pkt p = { .saddr = iph->saddr, .frag_off = iph->frag_off, .tos = iph->tos, .ttl = iph->ttl, .proto = iph->protocol, .tot_len = bpf_ntohs(iph->tot_len) };
	__be32 daddr = iph->daddr;
	__be16 sport = 0, dport = 0;

	if (p.proto == IPPROTO_TCP || p.proto == IPPROTO_UDP) {
		sport = ports[0];
		dport = ports[1];
		struct flow_key key = { .saddr = p.saddr, .daddr = daddr, .sport = sport, .dport = dport, .proto = p.proto };
		struct flow_value *v = bpf_map_lookup_elem(&ulvs_flows, &key);

		if (v && (v->dir == FLOW_DR_ROUTE || v->dir == FLOW_DR))
			return to_dr_server(skb, off, &p, v, sport, dport, wire_len(skb, off + sizeof(struct iphdr), p.proto, p.tot_len));
		if (v && (v->dir == FLOW_TUN_ROUTE || v->dir == FLOW_TUN)) {
			/* a GSO super-packet's segments keep their size (gso_size shrinks by the overhead) */
			__u32 need = skb->gso_size ? wire_len(skb, off + sizeof(struct iphdr), p.proto, 0) : p.tot_len + tun_overhead(v);
			int sent = 0;
			int r = to_tun_server(skb, off, &p, v, need, &sent);
			if (sent)
				count(TUN_OUT_ENCAP);
			return r;
		}
	} else if (p.proto == IPPROTO_ICMP) {
		int r = icmp_to_server(skb, off, &p);
		if (r != TCX_NEXT)
			return r;
	}

	fib.l4_protocol = p.proto;
	fib.sport = sport;
	fib.dport = dport;
	fib.family = AF_INET;
	fib.tos = p.tos;
	fib.ipv4_src = p.saddr;
	fib.ipv4_dst = daddr;
	fib.ifindex = skb->ingress_ifindex;
	if (bpf_fib_lookup(skb, &fib, sizeof(fib), 0) != BPF_FIB_LKUP_RET_SUCCESS)
		return TCX_NEXT;
	TTL_DECREMENT(skb, off, &p);
	/* the lookup left the next hop (gateway or destination) in ipv4_dst */
	return send_to(skb, off, fib.ifindex, fib.ipv4_dst);
}

SEC("tc")
int ulvs_tun_out(struct __sk_buff *skb)
{
	return tun_out(skb, 0);
}

SEC("tc")
int ulvs_tun_out_l2(struct __sk_buff *skb)
{
	return tun_out(skb, ETH_HLEN);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";	/* bpf_fib_lookup is GPL-only */
