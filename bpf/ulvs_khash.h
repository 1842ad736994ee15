/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The hashes of kernel connection set-up (ulvs_ksetup.h), exactly those of IPVS's schedulers
 * and of ulvs's queue steering, so the program picks the element the engine's scheduler would:
 *
 *   khash_32        include/linux/hash.h hash_32 (ip_vs_sh_hashkey, ip_vs_dh_hashkey);
 *                   src/sched/common.ts hash32 is the same function
 *   khsiphash_u32   lib/siphash.c hsiphash on 64-bit kernels (SipHash-1-3, 128-bit key, result
 *                   truncated to 32 bits) of one u32 message, as ip_vs_mh_hashkey calls it;
 *                   src/sched/hsiphash.ts hsiphashU32 is the same function
 *   kowner          the worker (TUN queue) steer.bpf.c sends a connection's packets to;
 *                   src/datapath/tun/steering.ts queueOf is the same function
 *
 * All in host order; straight-line code (no loops) for the verifier.
 */
#ifndef ULVS_KHASH_H
#define ULVS_KHASH_H

#include <linux/types.h>

/* hash_32(val, bits): val times GOLDEN_RATIO_32, the top `bits` bits (1..31). */
static __always_inline __u32 khash_32(__u32 val, __u32 bits)
{
	return (val * 0x61C88647u) >> (32 - bits);
}

#define KSIP_ROTL(x, b) (((x) << (b)) | ((x) >> (64 - (b))))
#define KSIP_ROUND(v0, v1, v2, v3) do {					\
		v0 += v1; v1 = KSIP_ROTL(v1, 13); v1 ^= v0; v0 = KSIP_ROTL(v0, 32); \
		v2 += v3; v3 = KSIP_ROTL(v3, 16); v3 ^= v2;			\
		v0 += v3; v3 = KSIP_ROTL(v3, 21); v3 ^= v0;			\
		v2 += v1; v1 = KSIP_ROTL(v1, 17); v1 ^= v2; v2 = KSIP_ROTL(v2, 32); \
	} while (0)

/*
 * hsiphash(&v, 4, key) with key = { k0, k1 } (hsiphash_key_t's two unsigned longs): the four
 * state words start as the ASCII "somepseudorandomlygeneratedbytes" xor the key, the message
 * is one final block (length 4 in the top byte, v in the low 32 bits), one compression round,
 * three finalisation rounds (lib/siphash.c HSIPHASH_PERMUTATION, BITS_PER_LONG == 64).
 */
static __always_inline __u32 khsiphash_u32(__u32 v, __u64 k0, __u64 k1)
{
	__u64 v0 = 0x736f6d6570736575ULL ^ k0;
	__u64 v1 = 0x646f72616e646f6dULL ^ k1;
	__u64 v2 = 0x6c7967656e657261ULL ^ k0;
	__u64 v3 = 0x7465646279746573ULL ^ k1;
	__u64 b = ((__u64)4 << 56) | v;

	v3 ^= b;
	KSIP_ROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	KSIP_ROUND(v0, v1, v2, v3);
	KSIP_ROUND(v0, v1, v2, v3);
	KSIP_ROUND(v0, v1, v2, v3);
	return (__u32)((v0 ^ v1) ^ (v2 ^ v3));
}

/*
 * The worker that owns a connection from caddr:cport (host order): key = caddr & steer_mask
 * (a masked service), or caddr ^ cport (steer_mask 0); worker = ((key * 0x9E3779B1) >> 16) %
 * workers (steer.bpf.c's hash, then the TUN's queue choice). workers >= 1.
 */
static __always_inline __u32 kowner(__u32 caddr, __u32 cport, __u32 steer_mask, __u32 workers)
{
	__u32 key = steer_mask ? caddr & steer_mask : caddr ^ cport;

	return ((key * 0x9E3779B1u) >> 16) % workers;
}

#endif
