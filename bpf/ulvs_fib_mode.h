/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * How the fast path looks up routes (fastpath.bpf.c; ulvsd's side: src/datapath/tun/fib-mode.ts
 * and src/daemon/fib-lease.ts, docs/fib-direct.md).
 *
 * A director running ulvs has policy rules (its own: src/datapath/tun/routing.ts), and with any
 * rule besides the kernel's three the kernel walks them all on every route lookup
 * (fib_rules_lookup): measured at 3.9 us per short connection and 18 us per MB of a 4-stream
 * transfer on the bench machine (BENCHMARKS.md, 2026-12-02), while nftables' director, which has
 * no rules, looks up its merged main table directly. None of ulvs's own rules can match a
 * lookup the fast path makes (docs/fib-direct.md says why, rule by rule), so while the
 * namespace has no other rules the main table alone gives the same answer, except for a local
 * destination, which the unmerged main table does not hold. ulvsd grants that as a lease:
 *
 *   ulvs_fib_mode[0].direct_until_ns   CLOCK_MONOTONIC ns until which the lookup may be
 *                                      BPF_FIB_LOOKUP_DIRECT (0: never; ulvsd renews it while
 *                                      its check holds, sets 0 at once when the rules or the
 *                                      addresses change, and stops renewing when it dies)
 *   ulvs_local4                        the namespace's IPv4 addresses: a destination among them
 *                                      is looked up through the rules, as before
 *
 * Both are the program's own (a new program starts them empty: rules, until its ulvsd checks).
 */
#ifndef ULVS_FIB_MODE_H
#define ULVS_FIB_MODE_H

#define FIB_LOCAL4_MAX 1024

struct fib_mode {
	__u64 direct_until_ns;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fib_mode);
} ulvs_fib_mode SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, FIB_LOCAL4_MAX);
	__type(key, __be32);
	__type(value, __u8);
} ulvs_local4 SEC(".maps");

/* the array's one key, in .rodata: a map value the verifier takes as a key, no stack (the
 * program and kernel set-up's segment call share a 512-byte stack, nearly all of it in use) */
static const __u32 fib_mode_key = 0;

/* The bpf_fib_lookup flags for a lookup to `*dst` (a pointer to a stack slot or a map value,
 * for the same reason): BPF_FIB_LOOKUP_DIRECT while the lease holds and it is not a local
 * address, else 0 (the policy rules). */
static __always_inline __u32 fib_flags(const __be32 *dst)
{
	struct fib_mode *m = bpf_map_lookup_elem(&ulvs_fib_mode, &fib_mode_key);

	if (!m || bpf_ktime_get_ns() >= m->direct_until_ns)
		return 0;
	if (bpf_map_lookup_elem(&ulvs_local4, dst))
		return 0;
	return BPF_FIB_LOOKUP_DIRECT;
}

#endif
