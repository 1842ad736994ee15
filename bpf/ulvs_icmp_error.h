/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * What the TUN's way out (tun_out.bpf.c) needs to answer a packet with an ICMP error and to
 * read one: the headers it writes and reads, its per-CPU state (the error budget and the
 * quote being summed) and the budget itself. Program-private: nothing here is read by
 * TypeScript.
 */
#ifndef ULVS_ICMP_ERROR_H
#define ULVS_ICMP_ERROR_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

/* Bytes of the offending packet an ICMP error quotes at most: its IPv4 header and 512 bytes
 * more (bpf_csum_diff sums at most 512 bytes at once). */
#define QUOTE_MAX 532
/* ICMP budget per CPU: one error costs 1 ms of credit, at most 50 ms banked */
#define ICMP_COST_NS 1000000ULL
#define ICMP_BURST 50

/* This program's own per-CPU state. */
struct scratch {
	__u64 credit_ns;	/* the ICMP budget (token bucket, in nanoseconds of credit) */
	__u64 last_ns;		/* bpf_ktime_get_ns at the last refill */
	__u8 quote[QUOTE_MAX + 4];	/* the quoted bytes, zero-padded to a multiple of 4 */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} ulvs_tun_scratch SEC(".maps");

/* The IPv4 and ICMP headers of a "fragmentation needed" error, in network order. */
struct frag_needed {
	__u8 vihl, tos;
	__be16 tot_len, id, frag_off;
	__u8 ttl, protocol;
	__u16 check;
	__be32 saddr, daddr;
	__u8 type, code;
	__u16 icmp_check;
	__be16 unused, mtu;
};

/* What an ICMP error quotes, read from its ICMP header on (offset 20 of the packet). */
struct icmp_quote {
	__u8 type, code;
	__u16 check;
	__u32 rest;
	__u8 vihl, tos;
	__be16 tot_len, id, frag_off;
	__u8 ttl, protocol;
	__u16 ip_check;
	__be32 saddr, daddr;
	__be16 sport, dport;
};

/* RFC 1071 end-around carry of a 32/64-bit partial sum down to 16 bits. */
static __always_inline __u16 fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (sum & 0xffff) + (sum >> 16);
}

/* Spend one error of this CPU's budget; 0 when it is spent. */
static __always_inline int icmp_budget(struct scratch *s)
{
	__u64 now = bpf_ktime_get_ns();
	__u64 credit = s->credit_ns + (now - s->last_ns);

	s->last_ns = now;
	if (credit > ICMP_BURST * ICMP_COST_NS)
		credit = ICMP_BURST * ICMP_COST_NS;
	if (credit < ICMP_COST_NS) {
		s->credit_ns = credit;
		return 0;
	}
	s->credit_ns = credit - ICMP_COST_NS;
	return 1;
}

#endif
