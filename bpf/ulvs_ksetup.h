/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * Kernel connection set-up (docs/kernel-setup.md; the structures in ulvs_maps.h): for a
 * service in ulvs_ksvcs the fast path schedules a pure SYN itself by the table the engine
 * prepared, creates the connection's flow entries (KF_MADE), forwards the SYN and reports the
 * new connection to the worker that owns it; later SYN/FIN/RST segments, the handshake's ACK
 * and everything after a FIN or RST of such a connection are forwarded and reported too.
 *
 * Included by fastpath.bpf.c after its forward(), forward_dr(), forward_tun() and ulvs_slots,
 * which it uses. The maps (sizes set by src/datapath/tun/kernel-setup-maps.ts before the load):
 *   ulvs_ksvcs      hash (no prealloc: an update replaces the element under RCU), ksvc_key ->
 *                   ksvc_value, KSVC_MAX elements
 *   ulvs_ktab       array of struct kdest, KSVC_MAX * 2 * KTAB_REGION: the services' tables
 *   ulvs_kcursor    array of __u32 [KSVC_MAX]: KSCHED_SEQ tickets, one counter per service shared
 *                   by every CPU (an atomic fetch-and-add: one sequence, as IPVS's one cursor)
 *   ulvs_kconf      array [1] of struct kconf
 *   ulvs_kslot_free queue of __u32: the free slots of the kernel range
 *   ulvs_kreports   array of maps [KWORKERS_MAX] of ring buffers: one per worker
 *   ulvs_kstats     per-CPU array of __u64 [KS_COUNTERS] (enum ksetup_counter)
 *   ulvs_kalive     array of __u64 [KWORKERS_MAX]: each worker's last beat, CLOCK_MONOTONIC ns
 *                   (bpf_ktime_get_ns's clock), written by the worker every ~50 ms; a SYN whose
 *                   owner has not beaten within ulvs_kconf.alive_ms is not set up (KS_STALE):
 *                   a killed or stuck ulvsd must not leave the kernel making connections no
 *                   engine hears of (keepalived's track_process relies on new ones failing)
 */
#ifndef ULVS_KSETUP_H
#define ULVS_KSETUP_H

#include "ulvs_khash.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, KSVC_MAX_DEFAULT);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct ksvc_key);
	__type(value, struct ksvc_value);
} ulvs_ksvcs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KSVC_MAX_DEFAULT * 2 * KTAB_REGION);
	__type(key, __u32);
	__type(value, struct kdest);
} ulvs_ktab SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KSVC_MAX_DEFAULT);
	__type(key, __u32);
	__type(value, __u32);
} ulvs_kcursor SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kconf);
} ulvs_kconf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_QUEUE);
	__uint(max_entries, 1);
	__type(value, __u32);
} ulvs_kslot_free SEC(".maps");

/* the inner map's template: the loader puts rings of its own size in (a ring's size is not
 * part of the inner map's type: bpf_map_meta_equal) */
struct kring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, KWORKERS_MAX);
	__type(key, __u32);
	__array(values, struct kring);
} ulvs_kreports SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, KWORKERS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} ulvs_kalive SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KS_COUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} ulvs_kstats SEC(".maps");

/* ksetup_syn's entries: kept off its stack (the program's frames together must fit 512 bytes) */
struct kscratch {
	struct flow_key req, rep;	/* request tuple; NAT: reply tuple */
	struct flow_value rv, pv;	/* their entries */
	struct kreport unused;	/* never written: names struct kreport in the object's BTF, from
				 * which layouts.gen.ts takes its layout (a ring has no value type) */
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kscratch);
} ulvs_kscratch SEC(".maps");

/* TCP header byte 13 (RFC 9293 3.1) */
#define KTCP_FIN 0x01
#define KTCP_SYN 0x02
#define KTCP_RST 0x04
#define KTCP_ACK 0x10
/* ksetup_segment: the entry's segment is an ordinary one (forward it and count it in the slot) */
#define KSEG_PLAIN 0x100
#define KMH_SIZE 4093	/* ip_vs_mh's table size (IP_VS_MH_TAB_SIZE) */

/* Count one event in ulvs_kstats (enum ksetup_counter); returns TCX_NEXT for the failures' use. */
static __always_inline int kcount(__u32 which)
{
	__u64 *n = bpf_map_lookup_elem(&ulvs_kstats, &which);

	if (n)
		(*n)++;	/* per-CPU: no other writer */
	return TCX_NEXT;
}

/* The ring of the worker that owns client caddr:cport (host order) of the service `s`; NULL when
 * set-up is off (workers 0) or that worker has no ring. `*stale` (when not NULL) is set to
 * whether that worker's last beat is older than ulvs_kconf.alive_ms. */
static __always_inline void *kring_of(const struct ksvc_value *s, __u32 caddr, __u32 cport, int *stale)
{
	__u32 zero = 0;
	struct kconf *c = bpf_map_lookup_elem(&ulvs_kconf, &zero);

	if (!c || c->workers == 0 || c->workers > KWORKERS_MAX)
		return NULL;
	__u32 w = kowner(caddr, cport, s->steer_mask, c->workers);
	if (stale && c->alive_ms) {
		__u64 *beat = bpf_map_lookup_elem(&ulvs_kalive, &w);
		/* unsigned: a beat "in the future" (another clock) counts as stale too */
		*stale = !beat || bpf_ktime_get_ns() - *beat > (__u64)c->alive_ms * 1000000ULL;
	}
	return bpf_map_lookup_elem(&ulvs_kreports, &w);
}

/* The table index of a SYN from caddr:cport to vaddr (host order) for service `s`, or -1 (no
 * cursor, unknown scheduler): docs/kernel-setup.md step 2. */
static __always_inline __s64 kindex(const struct ksvc_value *s, __u32 caddr, __u32 cport, __u32 vaddr)
{
	__u32 port = (s->flags & KSVC_PORT) ? cport : 0;

	if (s->sched == KSCHED_SH)
		return khash_32(caddr + port, 8);	/* ip_vs_sh_hashkey, offset 0 */
	if (s->sched == KSCHED_DH)
		return khash_32(vaddr, 8);		/* ip_vs_dh_hashkey */
	if (s->sched == KSCHED_MH) {
		__u32 zero = 0;
		struct kconf *c = bpf_map_lookup_elem(&ulvs_kconf, &zero);

		if (!c)
			return -1;
		/* hsiphash_key_t { k0, k1 } as two u64 in host memory: mh_key[0..1], mh_key[2..3] */
		__u64 k0 = c->mh_key[0] | (__u64)c->mh_key[1] << 32;
		__u64 k1 = c->mh_key[2] | (__u64)c->mh_key[3] << 32;
		return khsiphash_u32(caddr + port, k0, k1) % KMH_SIZE;	/* ip_vs_mh_hashkey, offset 0 */
	}
	if (s->sched == KSCHED_SEQ) {
		__u32 *cur = bpf_map_lookup_elem(&ulvs_kcursor, &s->region);

		if (!cur || s->size == 0)
			return -1;
		/* one ticket per SYN, whichever CPU: the SYNs of all CPUs walk one sequence (a ticket
		 * taken by a SYN that then goes to ulvsd leaves a hole: the engine schedules that one);
		 * at the 2^32 wrap the walk restarts unevenly once unless size divides 2^32 */
		__u32 t = __sync_fetch_and_add(cur, 1);

		return t % s->size;
	}
	return -1;
}

/* Forward one segment of a kernel set-up connection by its entry `v` without counting it in
 * the slot (the engine counts reported packets): fastpath.bpf.c's forwarders. */
static __always_inline int kforward(struct __sk_buff *skb, const struct pkt *p, const struct flow_value *v)
{
	if (v->dir == FLOW_REQUEST)
		return forward(skb, p, v, 0, 0);
	if (v->dir == FLOW_REPLY)
		return forward(skb, p, v, 1, 0);
	if (v->dir == FLOW_DR)
		return forward_dr(skb, p, v, 0);
	if (v->dir == FLOW_TUN)
		return forward_tun(skb, p, v, 0);
	return TCX_NEXT;
}

/* Every field of a record (ring memory is not zeroed). */
static __always_inline void kreport_fill(struct kreport *r, const struct pkt *p, __u8 kind, __be32 caddr, __be16 cport, __be32 vaddr, __be16 vport,
					 __be32 raddr, __be16 rport, __u8 reply, __u8 dir, __u32 slot, __u32 ip_len, __u32 segs)
{
	r->caddr = caddr;
	r->vaddr = vaddr;
	r->raddr = raddr;
	r->cport = cport;
	r->vport = vport;
	r->rport = rport;
	r->proto = p->proto;
	r->kind = kind;
	r->tcp_flags = p->tcp_flags;
	r->reply = reply;
	r->dir = dir;
	r->pad = 0;
	r->slot = slot;
	r->ip_len = ip_len;
	r->gso_segs = segs;
	r->ns = bpf_ktime_get_ns();
}

/* Delete the entries `req` (and `rep` unless NULL) this run made, give the slot back. */
static __always_inline void kundo(const struct flow_key *req, const struct flow_key *rep, __u32 slot)
{
	bpf_map_delete_elem(&ulvs_flows, req);
	if (rep)
		bpf_map_delete_elem(&ulvs_flows, rep);
	bpf_map_push_elem(&ulvs_kslot_free, &slot, 0);
}

/*
 * A pure SYN without a flow entry (the caller checked IPv4 without options, TCP, SYN alone
 * among SYN/ACK/RST/FIN, TTL > 1, no entry). TCX_NEXT when the service is not in ulvs_ksvcs
 * (uncounted) or set-up fails (counted, nothing left behind); else what the forwarder
 * returned. docs/kernel-setup.md steps 1-7; the route is looked up by the forwarder after
 * the entries exist (step 4 after 6): a failure removes them again (KS_NO_ROUTE).
 */
static __noinline int ksetup_syn(struct __sk_buff *skb, const struct pkt *p)
{
	struct ksvc_key sk = { .addr = p->daddr, .port = p->dport, .proto = IPPROTO_TCP };
	/* step 1: the element as found stays one consistent version (no prealloc: an update
	 * replaces it, the old one is freed after an RCU grace period) */
	const struct ksvc_value *s = bpf_map_lookup_elem(&ulvs_ksvcs, &sk);

	if (!s)
		return TCX_NEXT;
	__u32 caddr = bpf_ntohl(p->saddr), cport = bpf_ntohs(p->sport), size = s->size;
	__s64 idx = kindex(s, caddr, cport, bpf_ntohl(p->daddr));

	if (idx < 0 || size == 0 || idx >= size)
		return kcount(KS_USER);
	__u32 at = s->base + (__u32)idx, zero = 0;
	const struct kdest *d = bpf_map_lookup_elem(&ulvs_ktab, &at);
	if (!d)
		return kcount(KS_USER);
	__u8 dir = d->dir;
	if (dir != FLOW_REQUEST && dir != FLOW_DR && dir != FLOW_TUN)
		return kcount(KS_USER);	/* KDEST_USER (or nothing the program can do) */
	struct kscratch *e = bpf_map_lookup_elem(&ulvs_kscratch, &zero);
	if (!e)
		return kcount(KS_USER);
	__be16 rport = d->rport;
	__builtin_memset(e, 0, offsetof(struct kscratch, unused));
	e->req.saddr = p->saddr;
	e->req.daddr = p->daddr;
	e->req.sport = p->sport;
	e->req.dport = p->dport;
	e->req.proto = IPPROTO_TCP;
	e->rv.addr = d->addr;
	e->rv.port = d->port;
	e->rv.dir = dir;
	e->rv.tun_type = d->tun_type;
	e->rv.kflags = KF_MADE | KF_ACK;
	e->rep.saddr = d->addr;
	e->rep.daddr = p->saddr;
	e->rep.sport = d->port;
	e->rep.dport = p->sport;
	e->rep.proto = IPPROTO_TCP;
	e->pv.addr = p->daddr;
	e->pv.port = p->dport;
	e->pv.dir = FLOW_REPLY;
	e->pv.kflags = KF_MADE;

	int stale = 0;
	void *ring = kring_of(s, caddr, cport, &stale);	/* step 3 */
	if (!ring)
		return kcount(KS_NO_WORKER);
	if (stale)
		return kcount(KS_STALE);
	struct kreport *r = bpf_ringbuf_reserve(ring, sizeof(*r), 0);
	if (!r)
		return kcount(KS_RING_FULL);

	__u32 slot;	/* step 5 */
	if (bpf_map_pop_elem(&ulvs_kslot_free, &slot)) {
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		return kcount(KS_NO_SLOT);
	}
	struct slot *sl = bpf_map_lookup_elem(&ulvs_slots, &slot);
	if (sl) {
		sl->packets[0] = 0;
		sl->packets[1] = 0;
		sl->bytes[0] = 0;
		sl->bytes[1] = 0;
		sl->last_ns = 0;
	}
	e->rv.slot = slot;
	e->pv.slot = slot;

	/* step 6: the request entry (NAT: and the reply entry), first come first served */
	int nat = dir == FLOW_REQUEST;
	if (bpf_map_update_elem(&ulvs_flows, &e->req, &e->rv, BPF_NOEXIST)) {
		bpf_map_push_elem(&ulvs_kslot_free, &slot, 0);
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		return kcount(KS_RACE);
	}
	if (nat && bpf_map_update_elem(&ulvs_flows, &e->rep, &e->pv, BPF_NOEXIST)) {
		kundo(&e->req, NULL, slot);
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		return kcount(KS_RACE);
	}

	__u32 ip_len = skb->len - ETH_HLEN, segs = skb->gso_segs ? skb->gso_segs : 1;
	int rc = kforward(skb, p, &e->rv);	/* steps 4 and 7 */
	if (rc != TC_ACT_REDIRECT) {
		kundo(&e->req, nat ? &e->rep : NULL, slot);
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		kcount(KS_NO_ROUTE);
		return rc == TC_ACT_SHOT ? TC_ACT_SHOT : TCX_NEXT;	/* SHOT: changed half-way */
	}
	kreport_fill(r, p, KREPORT_NEW, p->saddr, p->sport, p->daddr, p->dport, e->rv.addr, rport, 0, dir, slot, ip_len, segs);
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);	/* the worker polls its ring (before each batch, on its timer): no wake-up */
	kcount(KS_MADE);
	return rc;
}

/* Set KF_ALL on the other entry of a NAT connection (v: this entry of the packet p). */
static __always_inline void kmark_peer(const struct pkt *p, const struct flow_value *v)
{
	struct flow_key k = { .proto = p->proto };

	if (v->dir == FLOW_REQUEST) {	/* the reply entry: RIP:rport -> client */
		k.saddr = v->addr;
		k.daddr = p->saddr;
		k.sport = v->port;
		k.dport = p->sport;
	} else if (v->dir == FLOW_REPLY) {	/* the request entry: client -> VIP:vport */
		k.saddr = p->daddr;
		k.daddr = v->addr;
		k.sport = p->dport;
		k.dport = v->port;
	} else {
		return;	/* DR, TUN: one entry */
	}
	struct flow_value *o = bpf_map_lookup_elem(&ulvs_flows, &k);
	if (o && (o->kflags & KF_MADE))
		__sync_fetch_and_or(&o->kflags, KF_ALL);
}

/*
 * A segment of an entry `v` with KF_MADE. KSEG_PLAIN when it is an ordinary one (the caller
 * forwards and counts it as for any offloaded connection); else it is forwarded here without
 * counting and reported (KREPORT_SEGMENT), and what the forwarder returned is returned; no
 * room in the owner's ring (or no ring, or the service gone): TCX_NEXT, to ulvsd.
 */
static __noinline int ksetup_segment(struct __sk_buff *skb, const struct pkt *p, struct flow_value *v)
{
	__u8 f = p->tcp_flags;
	int closing = f & (KTCP_FIN | KTCP_RST);
	int ack_step = !(f & (KTCP_SYN | KTCP_FIN | KTCP_RST)) && (v->kflags & KF_ACK) && v->dir != FLOW_REPLY;

	if (!(f & (KTCP_SYN | KTCP_FIN | KTCP_RST)) && !ack_step && !(v->kflags & KF_ALL))
		return KSEG_PLAIN;
	if (closing) {	/* IPVS's closing states move on plain ACKs: report all from now on */
		__sync_fetch_and_or(&v->kflags, KF_ALL);
		kmark_peer(p, v);
	}
	int reply = v->dir == FLOW_REPLY;
	struct ksvc_key sk = { .addr = reply ? v->addr : p->daddr, .port = reply ? v->port : p->dport, .proto = p->proto };
	struct ksvc_value *s = bpf_map_lookup_elem(&ulvs_ksvcs, &sk);
	__be32 caddr = reply ? p->daddr : p->saddr;
	__be16 cport = reply ? p->dport : p->sport;
	void *ring = s ? kring_of(s, bpf_ntohl(caddr), bpf_ntohs(cport), NULL) : NULL;

	if (!ring)
		return kcount(KS_SEGMENT_NO_OWNER);
	struct kreport *r = bpf_ringbuf_reserve(ring, sizeof(*r), 0);
	if (!r)
		return kcount(KS_SEGMENT_RING_FULL);
	__u32 ip_len = skb->len - ETH_HLEN, segs = skb->gso_segs ? skb->gso_segs : 1;
	int rc = kforward(skb, p, v);
	if (rc != TC_ACT_REDIRECT) {
		bpf_ringbuf_discard(r, BPF_RB_NO_WAKEUP);
		return rc == TC_ACT_SHOT ? TC_ACT_SHOT : TCX_NEXT;
	}
	if (ack_step)
		__sync_fetch_and_and(&v->kflags, ~KF_ACK);
	if (reply)
		kreport_fill(r, p, KREPORT_SEGMENT, caddr, cport, v->addr, v->port, p->saddr, p->sport, 1, FLOW_REQUEST, v->slot, ip_len, segs);
	else	/* DR, TUN: the entry has no rport; the real server's port is the service's (IPVS) */
		kreport_fill(r, p, KREPORT_SEGMENT, caddr, cport, p->daddr, p->dport, v->addr, v->dir == FLOW_REQUEST ? v->port : p->dport, 0, v->dir, v->slot, ip_len, segs);
	bpf_ringbuf_submit(r, BPF_RB_NO_WAKEUP);	/* the worker polls its ring (before each batch, on its timer): no wake-up */
	kcount(KS_SEGMENTS);
	return rc;
}

#endif
