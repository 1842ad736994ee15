/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The contract between the eBPF programs and ulvs's TypeScript: every structure a program and
 * the TypeScript side both read or write. The TypeScript offsets and sizes are generated from
 * these definitions (via the BTF of the compiled objects: scripts/gen-layouts.mjs writes
 * src/datapath/tun/layouts.gen.ts), never written by hand.
 *
 * Byte order: fields typed __be* are in network order, as in the packet; the rest are in the
 * host's order.
 */
#ifndef ULVS_MAPS_H
#define ULVS_MAPS_H

#include <linux/types.h>

/* ---- fast path (fastpath.bpf.c, tun_out.bpf.c; written by src/datapath/tun/offloader.ts) -- */

/* Key of the flow map: a packet's tuple as it arrives at the director. */
struct flow_key {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;		/* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad[3];		/* zero */
};

/* What to do with a packet of that tuple. */
enum flow_dir {
	FLOW_REQUEST = 0,	/* client -> VIP:vport: destination := addr:port */
	FLOW_REPLY = 1,		/* RIP:rport -> client: source := addr:port */
	/* Direct routing (VS/DR): the request tuple of a DR connection; addr is the real server
	 * (RIP), port is unused (zero). The packet is sent unchanged but for TTL - 1 to the link-layer
	 * address of RIP, which must be on a directly connected network. */
	FLOW_DR_ROUTE = 2,	/* written at the connection's creation, removed after it ends: the
				 * TUN's way out (tun_out.bpf.c) sends what ulvsd writes back; the NIC
				 * fast path ignores it (the engine sees every packet) */
	FLOW_DR = 3,		/* offloaded: as FLOW_DR_ROUTE, and the NIC fast path forwards the
				 * connection's packets itself, counting them in slot */
	/* Tunnelling (VS/TUN): as FLOW_DR_ROUTE and FLOW_DR (addr is RIP), but the packet (TTL - 1)
	 * is sent inside an outer IPv4 header of the type tun_type says (enum tun_type; port is
	 * GUE's UDP destination port, zero for the other types): source the director's address on
	 * the route to RIP (the kernel's choice, BPF_FIB_LOOKUP_SRC), destination RIP, TTL the inner
	 * one, TOS the inner one (ECN encapsulated), DF the inner one, a fresh id (IPVS's
	 * ip_vs_tunnel_xmit). The outer packet is routed: RIP may be behind a gateway. */
	FLOW_TUN_ROUTE = 4,	/* the TUN's way out only (as FLOW_DR_ROUTE) */
	FLOW_TUN = 5,		/* offloaded: the NIC fast path encapsulates too (as FLOW_DR) */
};

/* IPVS's tunnel types (IP_VS_CONN_F_TUNNEL_TYPE_*: ipvsadm's --tun-type, core/service.ts
 * TunType): what follows the outer IPv4 header (ulvs_net.h tun_encap, tun_overhead):
 *   TUN_IPIP  protocol 4, then the inner packet                                  20 bytes
 *   TUN_GUE   protocol 17: UDP (source a flow hash in the local port range, destination the
 *             server's --tun-port, checksum 0) and the 4-byte GUE header (version 0, C 0,
 *             hlen 0, proto/ctype 4, flags 0): ipvs_gue_encap without checksum   32 bytes
 *   TUN_GRE   protocol 47: the 4-byte GRE header (no flags, version 0, protocol 0x0800):
 *             ipvs_gre_encap without checksum                                    24 bytes
 * The checksum variants (--tun-csum, --tun-remcsum) are not carried: ulvsd refuses them. */
enum tun_type {
	TUN_IPIP = 0,
	TUN_GUE = 1,
	TUN_GRE = 2,
};

struct flow_value {
	__be32 addr;		/* the new address (FLOW_DR*, FLOW_TUN*: the real server's) */
	__be16 port;		/* the new port (FLOW_DR*: zero; FLOW_TUN*: GUE's UDP destination
				 * port, zero for the other tunnel types) */
	__u8 dir;		/* enum flow_dir */
	__u8 tun_type;		/* FLOW_TUN*: enum tun_type; otherwise zero */
	__u32 slot;		/* index into the slot map (FLOW_*_ROUTE: unused, zero) */
	__u32 seq_delta;	/* FLOW_REQUEST/FLOW_REPLY of a TCP connection opened by a SYN
				 * cookie (src/core/syn-proxy.ts: delta = cookie - the real server's
				 * ISN, fixed once the director's handshake with the server is done):
				 * the reply's seq += seq_delta, the request's ack -= seq_delta (when
				 * ACK is set), mod 2^32, the TCP checksum updated incrementally. Both
				 * entries of a connection carry the same value. 0: nothing translated
				 * (every other connection; DR/TUN entries and UDP are always 0). A
				 * segment of an entry with a non-zero seq_delta that carries TCP
				 * options (data offset > 5) goes to ulvsd unchanged: the cookie
				 * handshake negotiated none (no SACK, timestamps, window scale), so
				 * one there may be a SACK whose blocks the program does not translate. */
	__u32 kflags;		/* enum flow_kflags: 0 for every entry ulvsd writes; set by the
				 * fast path on the entries it creates (kernel connection set-up) */
};

/* Bits of struct flow_value kflags (docs/kernel-setup.md). */
enum flow_kflags {
	KF_MADE = 1,	/* the fast path created this entry (a SYN of a kernel set-up service) and
			 * reported it (KREPORT_NEW): its SYN, FIN and RST segments are forwarded
			 * here too, each reported (KREPORT_SEGMENT) and not counted in the slot */
	KF_ACK = 2,	/* request entry only: the next request segment without SYN/FIN/RST is
			 * reported too (the handshake's ACK: SYN_RECV -> ESTABLISHED), then the
			 * program clears this bit */
	KF_ALL = 4,	/* every segment of this entry is reported: set on both entries of a
			 * connection once a FIN or RST of it was seen (IPVS's closing states move
			 * on plain ACKs too) */
};

/* Per-connection counters, one array element per offloaded connection; the array is
 * mmap'd by the workers. Index [dir] is enum flow_dir. */
struct slot {
	__u64 packets[2];
	__u64 bytes[2];		/* IP bytes (frame length minus the Ethernet header) */
	__u64 last_ns;		/* CLOCK_MONOTONIC (bpf_ktime_get_ns) of the last packet, 0 none */
};

/* Counters of the TUN's way out (tun_out.bpf.c), one __u64 per index in its array map
 * ulvs_tun_stats: packets since the load. A DR or tunnelled packet too big for the route to
 * its real server counts in TUN_OUT_TOO_BIG and in exactly one of the five after it. */
enum tun_out_counter {
	TUN_OUT_ENCAP = 0,	/* tunnelled (FLOW_TUN_ROUTE/FLOW_TUN) and sent */
	TUN_OUT_TOO_BIG = 1,	/* DR or tunnelled packet larger than the route's MTU (a tunnelled
				 * one with the outer header; GSO: a segment): never sent */
	TUN_OUT_NO_ROUTE = 2,	/* DR packet whose real server is not on-link, tunnelled packet
				 * without a route to its real server: dropped */
	TUN_OUT_FRAG_NEEDED = 3,	/* too big with DF: replaced by ICMP "fragmentation needed"
					 * (type 3 code 4) to the client, sent */
	TUN_OUT_TOO_BIG_NO_DF = 4,	/* too big without DF: dropped (no fragmentation) */
	TUN_OUT_TOO_BIG_ICMP = 5,	/* too big, an ICMP message or a non-first fragment:
					 * dropped, never answered with an ICMP error */
	TUN_OUT_ICMP_RATE_LIMITED = 6,	/* too big with DF, but this CPU's ICMP budget is spent:
					 * dropped without an answer */
	TUN_OUT_ICMP_UNSENT = 7,	/* too big with DF, the answer could not be built or has no
					 * route to the client: dropped */
	TUN_OUT_ICMP_TO_DR = 8,		/* ICMP error about a DR connection (quoting VIP:vport ->
					 * client) sent on to its real server, TTL - 1 */
	TUN_OUT_ICMP_TO_TUN = 9,	/* the same about a tunnelled connection: encapsulated, sent */
	TUN_OUT_COUNTERS = 10,	/* number of counters */
};

/* Counters of the NIC fast path (fastpath.bpf.c), one __u64 per index in its array map
 * ulvs_fast_stats: packets since the load. Only ICMP errors about the director's own tunnel
 * packets are counted (bpf/ulvs_tun_icmp.h): one that quotes an outer packet of ours (quoted
 * source = its destination, quoted protocol IPIP, or GUE/GRE with the headers ulvs writes)
 * counts in exactly one of these. */
enum fast_counter {
	FAST_ICMP_FRAG_NEEDED = 0,	/* "fragmentation needed" about a tunnelled connection's packet
					 * with DF: rewritten into one to the client (MTU minus the
					 * tunnel overhead), sent */
	FAST_ICMP_RELAYED = 1,		/* another destination-unreachable or a time-exceeded error
					 * about a tunnelled connection's packet: relayed to the client */
	FAST_ICMP_NO_FLOW = 2,		/* the inner tuple has no FLOW_TUN/FLOW_TUN_ROUTE entry with
					 * that real server, tunnel type and GUE port: left to the host */
	FAST_ICMP_UNREADABLE = 3,	/* the quote ends before the inner IPv4 header and 8 bytes, or
					 * the inner packet is no TCP/UDP first fragment without IP
					 * options: left to the host */
	FAST_ICMP_NOT_RELAYED = 4,	/* "fragmentation needed" whose inner packet had no DF, or whose
					 * MTU minus the overhead is below 68: left to the host */
	FAST_ICMP_RATE_LIMITED = 5,	/* this CPU's ICMP budget is spent: dropped */
	FAST_ICMP_UNSENT = 6,		/* no route to the client, or the kernel refused the rewrite:
					 * left to the host before the rewrite, dropped after it */
	/* SYN cookies (bpf/ulvs_syncookie.h), for the services in ulvs_syncookie_svcs: */
	FAST_SYNCOOKIE_SENT = 7,	/* a pure SYN answered with a cookie SYN-ACK, redirected back */
	FAST_SYNCOOKIE_VALID = 8,	/* an ACK without a flow entry whose cookie checked: marked
					 * TCP_VALIDATED_BIT, passed on to the capture */
	FAST_SYNCOOKIE_INVALID = 9,	/* an ACK without a flow entry whose cookie did not check:
					 * passed on unmarked (it may belong to a connection of ulvsd) */
	FAST_SYNCOOKIE_REFUSED = 10,	/* a SYN that cannot be answered (payload, options unreadable,
					 * the helper refused, the rewrite failed): dropped */
	FAST_TCP_RES_CLEARED = 11,	/* a TCP segment that arrived with TCP_VALIDATED_BIT set (no
					 * client may set it): the bit cleared, the checksum updated */
	FAST_COUNTERS = 12,		/* number of counters */
};

/* ---- SYN cookies (fastpath.bpf.c with ulvs_syncookie.h; written by ulvsd, syn_cookies) ---- */

/* A service (VIP:vport, TCP) whose SYNs the fast path answers with cookies. */
struct syncookie_key {
	__be32 addr;
	__be16 port;
	__u8 proto;		/* IPPROTO_TCP */
	__u8 pad;		/* zero */
};

struct syncookie_value {
	__u32 on;		/* 1 (an entry is the service's presence; the value is for later use) */
};

/* The reserved TCP header bit (byte 12, the low nibble holds Rsrvd and AE, RFC 9293 3.1) that
 * the fast path sets on an ACK whose SYN cookie it checked, so ulvsd's engine can trust it:
 * the program clears it from every other TCP segment it sees. */
enum tcp_validated {
	TCP_VALIDATED_BIT = 2,	/* 0x02 of the TCP header's byte 12 (a reserved bit) */
};

/* ---- queue steering (steer.bpf.c; written by src/datapath/tun/steering.ts) ------------ */

enum steer_side {
	STEER_VIP = 0,		/* addr is a VIP (port and proto 0): packets to it are requests */
	STEER_SERVICE = 1,	/* addr:port is a service (VIP:vport), seen in requests */
	STEER_REAL = 2,		/* addr:port is a real server (RIP:rport), seen in replies */
	STEER_MARK = 3,		/* addr is a firewall mark (network order; port and proto 0): a packet
				 * with that skb->mark is a request of that fwmark service */
};

struct steer_key {
	__be32 addr;
	__be16 port;		/* 0: every port of addr (a port-0 service) */
	__u8 proto;
	__u8 side;		/* enum steer_side */
};

struct steer_value {
	__u32 mask;		/* the client address (host order) is ANDed with this: the netmask */
	__u32 pad;		/* zero; in a STEER_MARK entry 1 when the service is persistent (key on
				 * the masked client address), 0 otherwise (client address ^ port) */
};

/* ---- firewall marks (tun_mark.bpf.c; read by src/datapath/tun/mark-notes.ts) ------------ */

/* The mark of a packet does not cross the TUN. The program at the TUN's tcx egress notes the
 * mark of each marked TCP/UDP packet in map ulvs_marks (array, mmap-able, MARK_NOTES
 * elements), at index mark_note_index of its tuple; the engine reads the note of a packet that
 * has no connection. A note is valid when its check equals mark_note_check of its fields: a
 * note half written by another CPU, or overwritten by another tuple, is not taken. */
enum mark_notes {
	MARK_NOTES = 65536,		/* elements of ulvs_marks (a power of two) */
};

struct mark_note {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 pad[3];		/* zero */
	__u32 mark;		/* skb->mark */
	__u32 check;		/* mark_note_check of the fields above; 0: empty */
};

/* Both functions are written again in TypeScript (mark-notes.ts); the values are the
 * host-order addresses and ports, u32 arithmetic. */
#define MARK_GOLDEN 0x9E3779B1u
static inline __u32 mark_note_index(__u32 saddr, __u32 daddr, __u32 sport, __u32 dport, __u32 proto)
{
	__u32 h = (saddr ^ (daddr * MARK_GOLDEN) ^ ((sport << 16) | dport) ^ proto) * MARK_GOLDEN;

	return (h ^ (h >> 16)) & (MARK_NOTES - 1);
}

static inline __u32 mark_note_check(__u32 saddr, __u32 daddr, __u32 sport, __u32 dport, __u32 proto, __u32 mark)
{
	__u32 h = ((saddr * 0x85EBCA6Bu) ^ daddr ^ (sport << 16) ^ dport ^ (proto << 8) ^ mark) * MARK_GOLDEN;

	h ^= h >> 15;
	return h | 1;		/* never 0: 0 is an empty note */
}

/* ---- real-server decapsulation (rs_decap.bpf.c; set up by src/rs/decap.ts) ------------- */

/* Index into the program's counter array (one __u64 per index, packets since the load). */
enum rs_counter {
	RS_DECAP = 0,		/* tunnel packet for a VIP: outer headers removed, inner packet went on */
	RS_MALFORMED = 1,	/* tunnel packet for this host with inconsistent headers: dropped */
	RS_NOT_VIP = 2,		/* well-formed tunnel packet whose inner destination is no VIP: untouched */
	RS_UNHANDLED = 3,	/* tunnel packet for this host in a variant the program does not
				 * decapsulate (GRE with checksum, key, sequence number, another
				 * version or protocol; GUE with options, C set or another inner
				 * protocol): untouched (a kernel without the modules drops it) */
	RS_COUNTERS = 4,	/* number of counters */
};

/* The program's settings: the one element of an array map. */
struct rs_config {
	__be16 gue_port;	/* UDP destination port of GUE (network order); 0: GUE off */
	__u8 gre;		/* 1: decapsulate GRE (IP protocol 47); 0: GRE off */
	__u8 pad;		/* zero */
};

/* What the NIC fast path (fastpath.bpf.c) returned for each frame it saw, by the interface it
 * arrived on: map ulvs_verdicts, per-CPU array indexed by the ingress ifindex (an ifindex
 * of FAST_VERDICT_IFINDEXES - 1 or more counts at that last index), value struct
 * fast_verdicts. Every frame at the program counts in exactly one element (packets since the
 * load, summed over the CPUs by the reader). */
enum fast_verdict {
	FAST_VERDICT_NEXT = 0,		/* TCX_NEXT: on to the tc capture, the TUN or the IP stack */
	FAST_VERDICT_REDIRECT = 1,	/* TC_ACT_REDIRECT: forwarded by the program (a flow hit, or
					 * a relayed ICMP error) */
	FAST_VERDICT_OK = 2,		/* TC_ACT_OK: to the IP stack, skipping tc (another host's
					 * frame) */
	FAST_VERDICT_SHOT = 3,		/* TC_ACT_SHOT: dropped by the program */
	FAST_VERDICT_OTHER = 4,		/* any other return code (none today) */
	FAST_VERDICTS = 5,		/* number of verdicts */
	FAST_VERDICT_IFINDEXES = 256,	/* elements of the map */
};

struct fast_verdicts {
	__u64 packets[FAST_VERDICTS];
};

/* ---- kernel connection set-up (fastpath.bpf.c ksetup; docs/kernel-setup.md) ------------- */
/*
 * For a service in ulvs_ksvcs, the fast path itself schedules a pure SYN (no flow entry yet) by
 * the service's table, creates the connection's flow entries (KF_MADE), forwards the SYN and
 * reports the new connection to the worker that owns it (ulvs_kreports) so the engine keeps
 * IPVS's state, counters, timers, listings and sync exact. Written by
 * src/datapath/tun/kernel-tables.ts (services, tables), read by kernel-reports.ts (reports).
 */

/* How the table of a service is used (the scheduler it implements). */
enum ksched {
	KSCHED_SH = 1,		/* ip_vs_sh: index = hash_32(caddr [+ cport with KSVC_PORT], 8); size 256 */
	KSCHED_DH = 2,		/* ip_vs_dh: index = hash_32(vaddr, 8); size 256 */
	KSCHED_MH = 3,		/* ip_vs_mh: index = hsiphash(caddr [+ cport]) % 4093 (its fixed key
				 * ulvs_kconf.mh_key); size 4093 */
	KSCHED_SEQ = 4,		/* rr, wrr: the table is the weighted sequence (1..KTAB_REGION
				 * elements); index = a ticket from the service's counter
				 * (ulvs_kcursor[region], shared by the CPUs) mod size: one walk, as
				 * IPVS's single cursor (docs/kernel-setup.md says where it differs) */
};

enum ksvc_flags {
	KSVC_PORT = 1,		/* sh-port, mh-port: the client port is added to the hashed address */
};

/* A kernel set-up service: same key shape as syncookie_key (VIP:vport, protocol). */
struct ksvc_key {
	__be32 addr;
	__be16 port;
	__u8 proto;		/* IPPROTO_TCP (IPPROTO_UDP reserved) */
	__u8 pad;		/* zero */
};

struct ksvc_value {
	__u32 base;		/* first element of the service's table in ulvs_ktab */
	__u32 size;		/* elements in use from base (0: every SYN goes to ulvsd) */
	__u32 region;		/* the service's number, < KSVC_MAX: its ulvs_kcursor index */
	__u32 steer_mask;	/* host order; which worker owns a connection, as steer.bpf.c:
				 * 0: key = caddr ^ cport; else key = caddr & steer_mask;
				 * worker = ((key * 0x9E3779B1) >> 16) % ulvs_kconf.workers */
	__u8 sched;		/* enum ksched */
	__u8 flags;		/* enum ksvc_flags */
	__u16 pad;		/* zero */
};

/* One element of ulvs_ktab: what a table index chooses. */
struct kdest {
	__be32 addr;		/* RIP */
	__be16 port;		/* rport (NAT); 0 for DR; GUE port for TUN as struct flow_value */
	__u8 dir;		/* the request entry's enum flow_dir: FLOW_REQUEST (NAT), FLOW_DR,
				 * FLOW_TUN; KDEST_USER: no kernel choice here (a weight-0 or
				 * overloaded server whose fallback IPVS would apply): to ulvsd */
	__u8 tun_type;		/* FLOW_TUN: enum tun_type */
	__be16 rport;		/* FLOW_TUN/FLOW_DR: the real server's port as the engine knows it
				 * (the report's raddr:rport names the server); NAT: = port */
	__u16 pad;		/* zero */
};

enum ksetup_limits {
	KDEST_USER = 255,	/* struct kdest dir: the SYN goes to ulvsd */
	KTAB_REGION = 4096,	/* elements per table region (mh's 4093 fits) */
	KSVC_MAX_DEFAULT = 64,	/* kernel set-up services (ulvs_ktab holds 2 regions each) */
	KWORKERS_MAX = 8,	/* ulvs_kreports entries: one ring per data-path worker */
};

/* The one element of ulvs_kconf. */
struct kconf {
	__u32 workers;		/* data-path workers (TUN queues), 1..KWORKERS_MAX; 0: set-up off */
	__u32 alive_ms;		/* a SYN is set up only if its owner worker's ulvs_kalive beat is
				 * at most this many ms old (bpf_ktime_get_ns); 0: not checked */
	__u32 mh_key[4];	/* hsiphash key of ip_vs_mh's first hash (sched/mh.ts KEY1), host order */
};

enum kreport_kind {
	KREPORT_NEW = 1,	/* the SYN that created a connection: forwarded to raddr:rport */
	KREPORT_SEGMENT = 2,	/* a segment of a KF_MADE connection the engine must see (SYN, FIN,
				 * RST, the handshake's ACK, anything after a FIN): forwarded */
};

/* One record of a worker's ring (BPF_MAP_TYPE_RINGBUF, inner map of ulvs_kreports). */
struct kreport {
	__be32 caddr;		/* client */
	__be32 vaddr;		/* VIP */
	__be32 raddr;		/* real server */
	__be16 cport;
	__be16 vport;
	__be16 rport;
	__u8 proto;
	__u8 kind;		/* enum kreport_kind */
	__u8 tcp_flags;		/* byte 13 of the TCP header (CWR ... FIN) */
	__u8 reply;		/* 0: request (client -> VIP), 1: reply (RIP -> client) */
	__u8 dir;		/* the request entry's enum flow_dir (forwarding method) */
	__u8 pad;
	__u32 slot;		/* the connection's slot (ulvs_slots index) */
	__u32 ip_len;		/* IP bytes of the packet (IPVS's count); a GSO packet: all its segments' */
	__u32 gso_segs;		/* packets it stands for (1, or a GSO packet's segment count) */
	__u64 ns;		/* bpf_ktime_get_ns when the program forwarded it */
};

/* Counters of the kernel set-up (per-CPU array ulvs_kstats, one __u64 per index): every pure
 * SYN to a ulvs_ksvcs service without a flow entry counts in exactly one of KS_MADE..KS_RACE. */
enum ksetup_counter {
	KS_MADE = 0,		/* scheduled, entries created, reported, forwarded */
	KS_USER = 1,		/* the table chose KDEST_USER, or size 0: to ulvsd */
	KS_NO_WORKER = 2,	/* ulvs_kconf.workers is 0 or no ring for the owner: to ulvsd */
	KS_RING_FULL = 3,	/* the owner's ring had no room: to ulvsd */
	KS_NO_SLOT = 4,		/* ulvs_kslot_free empty: to ulvsd */
	KS_NO_ROUTE = 5,	/* the route to the real server cannot be used here: to ulvsd */
	KS_RACE = 6,		/* an entry of the tuple appeared meanwhile (another CPU): to ulvsd */
	KS_SEGMENTS = 7,	/* KREPORT_SEGMENT records written */
	KS_SEGMENT_RING_FULL = 8,	/* a segment to report, but no room: passed to ulvsd instead */
	KS_SEGMENT_NO_OWNER = 9,	/* a segment to report, but no service, workers or ring: to ulvsd */
	KS_STALE = 10,		/* the owner worker has not beaten within ulvs_kconf.alive_ms (ulvsd
				 * stopped, killed or stuck): the SYN to ulvsd, no connection made */
	KS_COUNTERS = 11,
};

#endif
