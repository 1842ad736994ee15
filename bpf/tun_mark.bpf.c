// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * Firewall marks across the TUN, at the TUN's tcx egress (packets the kernel routes into the
 * TUN, on their way to the workers). A firewall-mark service (ipvsadm -f MARK) matches packets
 * by skb->mark, set by the host's netfilter rules in prerouting (nftables `meta mark set`); a
 * policy rule `fwmark MARK lookup <ulvs table>` sends them into the TUN, but user space reads
 * the packet alone, not its mark. This program notes the mark of every marked TCP or UDP
 * packet by tuple in ulvs_marks (ulvs_maps.h: struct mark_note, MARK_NOTES), an array the
 * workers mmap: the engine reads the note only for a packet without a connection, with no
 * system call (ip_vs_service_find uses the mark only to choose a new connection's service).
 * The packet itself always goes on unchanged (TCX_NEXT); unmarked packets, other protocols,
 * fragments after the first and packets too short are not noted.
 *
 * Order: tcx egress runs in __dev_queue_xmit before the TUN queues the packet, so the note is
 * written before a worker can read the packet.
 */
#include <linux/bpf.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "ulvs_maps.h"

#define TCX_NEXT (-1)	/* as ulvs_net.h: continue with the next program, then the device */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MARK_NOTES);
	__uint(map_flags, BPF_F_MMAPABLE);
	__type(key, __u32);
	__type(value, struct mark_note);
} ulvs_marks SEC(".maps");

/* The logic, for the IP header at `off`: 0 on the TUN; 14 in ulvs_tun_mark_l2, which only the
 * kernel-run tests use (BPF_PROG_TEST_RUN hands a tc program an Ethernet frame). */
static __always_inline int tun_mark(struct __sk_buff *skb, __u32 off)
{
	struct iphdr ip;
	__be16 ports[2];
	__u32 mark = skb->mark;

	if (mark == 0 || bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)))
		return TCX_NEXT;
	if (ip.version != 4 || (ip.protocol != IPPROTO_TCP && ip.protocol != IPPROTO_UDP) || (ip.frag_off & bpf_htons(0x1fff)))
		return TCX_NEXT;
	if (bpf_skb_load_bytes(skb, off + ip.ihl * 4, ports, sizeof(ports)))
		return TCX_NEXT;
	__u32 sa = bpf_ntohl(ip.saddr), da = bpf_ntohl(ip.daddr), sp = bpf_ntohs(ports[0]), dp = bpf_ntohs(ports[1]);
	__u32 idx = mark_note_index(sa, da, sp, dp, ip.protocol);
	struct mark_note *n = bpf_map_lookup_elem(&ulvs_marks, &idx);

	if (!n)
		return TCX_NEXT;
	/* Emptied first (volatile: the store is kept); whatever order the stores land in, the
	 * check covers every field, so a note read half rewritten does not match */
	*(volatile __u32 *)&n->check = 0;
	n->saddr = ip.saddr;
	n->daddr = ip.daddr;
	n->sport = ports[0];
	n->dport = ports[1];
	n->proto = ip.protocol;
	n->mark = mark;
	*(volatile __u32 *)&n->check = mark_note_check(sa, da, sp, dp, ip.protocol, mark);
	return TCX_NEXT;
}

SEC("tc")
int ulvs_tun_mark(struct __sk_buff *skb)
{
	return tun_mark(skb, 0);
}

SEC("tc")
int ulvs_tun_mark_l2(struct __sk_buff *skb)
{
	return tun_mark(skb, 14);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
